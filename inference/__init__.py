"""Generators: chat messages in, text out. Called by `app/` only; knows nothing about retrieval.

- `generator`: the `Generator` protocol and its options.
- `factory`: the one factory (`make_generator`, `resolve_backend`) over the backends `transformers` (local
  weights), `openai` (an OpenAI-compatible server) and `extractive` (no model).
- `loading`: finding weights on this machine and loading them (quantization, device), with actionable errors.
- `engine`: Kefu's own decode loop over token ids (prefill, one token at a time, batches with left padding).
- `kv_cache`: the attention-sink + recent-window KV cache (StreamingLLM) that bounds memory.
- `sampling`, `thinking`, `detokenize`, `batching`: one concept each.
"""
