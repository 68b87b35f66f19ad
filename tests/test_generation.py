"""Generators: loading (full precision and 4-bit), streaming, reasoning hidden, errors a person can act on,
batches; one contract suite over the `transformers` backend (tiny checkpoint) and the `openai` backend (a
deterministic fake OpenAI-compatible server started here: the only fake, at the HTTP boundary)."""

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from inference.errors import InferenceError
from inference.factory import BACKENDS, make_generator, resolve_backend
from inference.generator import GeneratorConfig, Generator, TextStream
from inference.sampling import sampling_from_config
from inference.transformers_backend import TransformersGenerator

QUESTION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How much is shipping?"}]


def tiny(tiny_checkpoint, tiny_model, **overrides) -> TransformersGenerator:
    model, tokenizer = tiny_model
    settings = {"temperature": 0, "max_new_tokens": 16, **overrides}
    config = GeneratorConfig(backend="transformers", model=str(tiny_checkpoint), **settings)
    return TransformersGenerator(config, model, tokenizer)


# -- a deterministic OpenAI-compatible server -------------------------------------------------------------


class FakeOpenAI(BaseHTTPRequestHandler):
    """Answers every chat completion with reasoning and a fixed text, as vLLM does (streamed as SSE)."""

    requests: list[dict] = []
    REASONING = "<think>The customer wants the price.</think>\n\n"
    ANSWER = "Standard shipping costs $4.99 [1]."

    def log_message(self, *args):  # keep test output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.requests.append({"body": body, "auth": self.headers.get("Authorization")})
        if self.path != "/v1/chat/completions" or body["model"] != "kefu-test":
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b'{"error": "model not found"}')
            return
        text = self.REASONING + self.ANSWER
        if not body.get("stream"):
            payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(b'data: {"choices": [{"delta": {"reasoning_content": "hidden by the server"}}]}\n\n')
        for i in range(0, len(text), 5):  # tags split across events
            event = {"choices": [{"delta": {"content": text[i : i + 5]}}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture(scope="module")
def openai_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def openai(url: str, **overrides) -> Generator:
    config = GeneratorConfig(backend="openai", openai_base_url=url, openai_model="kefu-test", openai_api_key="sk-test", **overrides)
    return make_generator(config)


@pytest.fixture(params=["transformers", "openai"])
def generator(request, tiny_checkpoint, tiny_model, openai_server) -> Generator:
    if request.param == "transformers":
        return tiny(tiny_checkpoint, tiny_model)
    return openai(openai_server)


# -- the contract every backend keeps ---------------------------------------------------------------------


def test_contract_streams_visible_text_and_its_stats(generator):
    assert isinstance(generator, Generator)
    stream = generator.stream(QUESTION)
    assert isinstance(stream, TextStream)
    pieces = list(stream)
    assert pieces and all(isinstance(p, str) and p for p in pieces)
    text = "".join(pieces)
    assert "<think>" not in text and "</think>" not in text
    assert stream.stats.generated_tokens > 0 and stream.stats.first_text_s is not None
    assert generator.describe().startswith(generator.name)


def test_contract_batch_matches_streaming(generator):
    streamed = generator.stream(QUESTION).text().strip()
    other = [{"role": "user", "content": "Do you ship to Hong Kong?"}]
    batch = generator.generate_batch([QUESTION, other])
    assert len(batch) == 2 and batch[0] == streamed  # greedy / deterministic


def test_contract_counts_tokens_and_rejects_malformed_messages(generator):
    assert 0 < generator.count_tokens("How much is shipping?") < 40
    with pytest.raises(InferenceError, match="must end with a user message"):
        generator.stream([{"role": "assistant", "content": "hi"}])
    with pytest.raises(InferenceError, match="role"):
        generator.stream([{"role": "robot", "content": "hi"}])


# -- the OpenAI-compatible backend ------------------------------------------------------------------------


def test_openai_hides_reasoning_and_sends_model_key_and_limits(openai_server):
    FakeOpenAI.requests.clear()
    stream = openai(openai_server, max_new_tokens=33, temperature=0.2).stream(QUESTION)
    assert stream.text() == FakeOpenAI.ANSWER
    assert stream.stats.hidden_chars > len("The customer wants the price.")
    sent = FakeOpenAI.requests[-1]
    assert sent["auth"] == "Bearer sk-test"
    assert sent["body"]["max_tokens"] == 33 and sent["body"]["temperature"] == 0.2 and sent["body"]["stream"]


def test_openai_errors_say_what_to_fix(openai_server):
    wrong_model = make_generator(GeneratorConfig(backend="openai", openai_base_url=openai_server, openai_model="nope"))
    with pytest.raises(InferenceError, match="answered 404.*KEFU_OPENAI_MODEL"):
        wrong_model.stream(QUESTION).text()
    nobody = make_generator(GeneratorConfig(backend="openai", openai_base_url="http://127.0.0.1:9/v1", openai_timeout=2))
    with pytest.raises(InferenceError, match="cannot reach.*KEFU_OPENAI_BASE_URL"):
        nobody.stream(QUESTION).text()


# -- the transformers backend -----------------------------------------------------------------------------


def test_full_precision_and_4bit_nf4_load_and_generate(tiny_checkpoint):
    import bitsandbytes as bnb

    full = make_generator(GeneratorConfig(backend="transformers", model=str(tiny_checkpoint), quantization="none", temperature=0))
    nf4 = make_generator(GeneratorConfig(backend="transformers", model=str(tiny_checkpoint), quantization="nf4", temperature=0))
    layer = nf4.model.model.layers[0].self_attn.q_proj
    assert isinstance(layer, bnb.nn.Linear4bit) and layer.weight.quant_type == "nf4"
    assert not isinstance(nf4.model.lm_head, bnb.nn.Linear4bit)  # lm_head stays in full precision
    assert nf4.model.get_memory_footprint() < 0.7 * full.model.get_memory_footprint()
    for g in (full, nf4):
        stream = g.stream(QUESTION, max_new_tokens=8)
        stream.text()  # read to its end: the batching worker is done with this request
        assert stream.stats.generated_tokens > 0
        with g.exclusive() if hasattr(g, "exclusive") else contextlib.nullcontext():  # no batch runs meanwhile
            assert len(list(g.engine.stream(g.render(QUESTION)[0], 8, g.sampling))) == 8
    assert "quantization nf4" in nf4.describe()


def test_a_failing_forward_pass_raises_through_the_stream_and_never_hangs(tiny_checkpoint, tiny_model, monkeypatch):
    g = tiny(tiny_checkpoint, tiny_model)
    calls = {"n": 0}
    real = g.engine._forward

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("CUDA error: device-side assert triggered")
        return real(*args, **kwargs)

    monkeypatch.setattr(g.engine, "_forward", failing)
    outcome = {}

    def consume():
        try:
            outcome["text"] = g.stream(QUESTION).text()
        except Exception as exc:  # what the consumer sees
            outcome["error"] = exc

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the stream hung after the model failed"
    assert "device-side assert" in str(outcome.get("error"))

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(g.engine, "_forward", out_of_memory)
    with pytest.raises(InferenceError, match="out of cpu memory.*KEFU_QUANTIZATION=nf4"):
        g.stream(QUESTION).text()


def test_think_mode_hides_reasoning_and_fast_mode_prefills_an_empty_block(tiny_checkpoint, tiny_model):
    fast, think = tiny(tiny_checkpoint, tiny_model), tiny(tiny_checkpoint, tiny_model, reasoning="think")
    fast_prompt, fast_inside = fast.render(QUESTION)
    think_prompt, think_inside = think.render(QUESTION)
    decode = fast.tokenizer.decode
    assert decode(think_prompt).endswith("<｜Assistant｜><think>\n") and think_inside
    assert decode(fast_prompt).endswith("<｜Assistant｜><think>\n\n</think>\n\n") and not fast_inside
    # The random model never closes its reasoning: in think mode nothing at all may be shown.
    stream = think.stream(QUESTION, max_new_tokens=40)
    assert stream.text() == "" and stream.stats.hidden_chars > 0 and stream.stats.generated_tokens == 40
    assert fast.stream(QUESTION, max_new_tokens=40).text() != ""


def test_sampling_defaults_come_from_the_generation_config(tiny_checkpoint, tiny_model):
    model, _ = tiny_model
    assert sampling_from_config(model.generation_config).temperature == 0.6  # as R1 ships
    assert sampling_from_config(model.generation_config).top_p == 0.95
    assert sampling_from_config(model.generation_config, temperature=0).greedy
    g = tiny(tiny_checkpoint, tiny_model, temperature=None, seed=3)
    assert g.sampling.describe() == "temperature 0.6, top_p 0.95"
    assert g.stream(QUESTION).text() == g.stream(QUESTION).text()  # a seed makes sampling repeatable


def test_streaming_never_breaks_a_chinese_character(tiny_checkpoint, tiny_model):
    from inference.detokenize import IncrementalDetokenizer

    _, tokenizer = tiny_model
    text = "退货需要 30 天，运费 4.99 美元。"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    d = IncrementalDetokenizer(tokenizer)
    pieces = [d.feed(i) for i in ids] + [d.flush()]
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)


# -- loading errors and the factory -----------------------------------------------------------------------


def test_missing_weights_say_how_to_download_them():
    with pytest.raises(InferenceError) as err:
        make_generator(GeneratorConfig(backend="transformers", model="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"))
    assert "hf download deepseek-ai/DeepSeek-R1-Distill-Qwen-7B --local-dir" in str(err.value)
    with pytest.raises(InferenceError, match="no model weights at /nowhere/model.gguf"):
        make_generator(GeneratorConfig(backend="transformers", model="/nowhere/model.gguf"))


def test_auto_picks_transformers_only_when_weights_are_here(tiny_checkpoint):
    backend, why = resolve_backend(GeneratorConfig(model=str(tiny_checkpoint)))
    assert backend == "transformers" and str(tiny_checkpoint) in why
    backend, why = resolve_backend(GeneratorConfig())
    assert backend == "extractive" and "hf download" in why
    assert make_generator(GeneratorConfig(backend="extractive")) is None


def test_unknown_backend_lists_the_choices():
    with pytest.raises(InferenceError, match="choose one of: auto, transformers, openai, extractive"):
        make_generator(GeneratorConfig(backend="llamacpp"))
    assert set(BACKENDS) == {"transformers", "openai", "extractive"}


def test_no_gpu_and_missing_bitsandbytes_are_explained(tiny_checkpoint, monkeypatch):
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        with pytest.raises(InferenceError, match="no CUDA GPU.*KEFU_DEVICE=cpu"):
            make_generator(GeneratorConfig(backend="transformers", model=str(tiny_checkpoint), device="cuda"))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    with pytest.raises(InferenceError, match=r"needs bitsandbytes: pip install 'kefu\[llm\]'"):
        make_generator(GeneratorConfig(backend="transformers", model=str(tiny_checkpoint), quantization="nf4"))


@pytest.mark.gpu
def test_nf4_on_the_gpu_streams(tiny_checkpoint):
    g = make_generator(GeneratorConfig(backend="transformers", model=str(tiny_checkpoint), device="cuda", temperature=0))
    assert g.quantization == "nf4" and g.model.device.type == "cuda"
    stream = g.stream(QUESTION, max_new_tokens=8)
    stream.text()
    assert stream.stats.generated_tokens > 0
    with g.exclusive():  # the batching worker and this thread never run the engine at once
        assert len(list(g.engine.stream(g.render(QUESTION)[0], 8, g.sampling))) == 8
