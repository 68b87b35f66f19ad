"""Kefu's decode loop: token ids in, token ids out. Prefill the prompt (in chunks where the cache needs it),
then one token at a time with a KV cache, stopping at a stop token or the token limit.

`stream` serves one conversation and yields each token as it is chosen; `stream_batch` runs many prompts
together, left-padded (each row's positions count from its own first real token, so a batch gives the same
tokens as one-by-one generation), one decode step at a time, so each row's reader gets its tokens as they are
chosen (what `inference.scheduler` serves concurrent requests with); `generate_batch` collects them; `score` returns the log-probability of every token of a text, for
perplexity. The cache is `inference.kv_cache`'s sink window (bounded memory) or transformers' full cache.
The start that Kefu's prompts share is prefilled once and reused (`inference.prefix_cache`).

The engine knows nothing about tokenization, chat templates or text: it is purely token id sequences.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from transformers.cache_utils import Cache, DynamicCache

from inference.kv_cache import SinkWindowCache, make_cache
from inference.prefix_cache import KV, PrefixStore
from inference.sampling import SamplingParams, next_tokens


class Engine:
    def __init__(
        self,
        model,
        stop_ids: Sequence[int],
        kv_cache: str = "sink",
        sinks: int = 4,
        window: int = 4096,
        prefill_chunk: int | None = None,
        evict_block: int | None = None,
        prefix_tokens: int = 32,
    ):
        self.model = model
        self.stop_ids = frozenset(int(i) for i in stop_ids)
        self.kv_cache = kv_cache
        self.sinks = sinks
        self.window = window
        self.prefill_chunk = prefill_chunk
        self.evict_block = evict_block
        make_cache(kv_cache, model, sinks, window)  # reject an unusable choice now, not at the first question
        # the shared start of Kefu's prompts, prefilled once (`inference.prefix_cache`); 0 turns it off
        self.prefixes = PrefixStore(self._prefix_kv, prefix_tokens) if prefix_tokens > 0 else None

    @property
    def device(self) -> torch.device:
        return self.model.device

    def new_cache(self) -> Cache:
        return make_cache(self.kv_cache, self.model, self.sinks, self.window, self.evict_block)

    # -- one forward pass ---------------------------------------------------------------------------------

    def _forward(
        self,
        ids: torch.Tensor,
        cache: Cache,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        all_logits: bool = False,
    ) -> torch.Tensor:
        """Run `ids` [batch, n] through the model on top of `cache`; logits of the last position [batch, vocab]
        (or of every position with `all_logits`). Without explicit positions, the new tokens continue the cache."""
        n = ids.shape[1]
        if isinstance(cache, SinkWindowCache):
            cache.make_room(n)
        if position_ids is None:
            start = cache.get_seq_length()
            position_ids = torch.arange(start, start + n, device=ids.device).unsqueeze(0).expand(ids.shape[0], -1)
        out = self.model(
            input_ids=ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=0 if all_logits else 1,
        )
        return out.logits if all_logits else out.logits[:, -1, :]

    def _chunk_size(self, cache: Cache) -> int | None:
        if isinstance(cache, SinkWindowCache):
            return min(self.prefill_chunk or cache.window, cache.window)
        return self.prefill_chunk

    def prefill(self, ids: torch.Tensor, cache: Cache) -> torch.Tensor:
        """Feed a whole prompt [batch, n] (in chunks where needed); logits of its last position."""
        chunk = self._chunk_size(cache) or ids.shape[1]
        logits = None
        for start in range(0, ids.shape[1], chunk):
            logits = self._forward(ids[:, start : start + chunk], cache)
        assert logits is not None, "prefill needs at least one token"
        return logits

    # -- generation ---------------------------------------------------------------------------------------

    @torch.inference_mode()
    def stream(self, prompt: Sequence[int], max_new_tokens: int, sampling: SamplingParams, cache: Cache | None = None) -> Iterator[int]:
        """Generate for one prompt, yielding each token id as it is chosen (stop tokens are not yielded)."""
        if not prompt:
            raise ValueError("the prompt has no tokens")
        skip = 0
        if cache is None:
            cache = self.new_cache()
            skip = self._reuse_prefix([prompt], cache)
        generator = self._generator(sampling)
        logits = self.prefill(torch.tensor([list(prompt)[skip:]], device=self.device), cache)
        generated: list[int] = []
        for step in range(max_new_tokens):
            previous = torch.tensor([generated], device=self.device) if sampling.repetition_penalty != 1.0 else None
            token = next_tokens(logits, sampling, generator, previous)
            token_id = int(token[0])
            if token_id in self.stop_ids:
                return
            generated.append(token_id)
            yield token_id
            if step + 1 < max_new_tokens:
                logits = self._forward(token.view(1, 1), cache)

    def generate_batch(
        self, prompts: Sequence[Sequence[int]], max_new_tokens: int, sampling: SamplingParams, pad_id: int
    ) -> list[list[int]]:
        """Generate for several prompts at once, left-padded; one list of token ids per prompt."""
        outputs: list[list[int]] = [[] for _ in prompts]
        for step in self.stream_batch(prompts, max_new_tokens, sampling, pad_id):
            for row, token_id in step:
                outputs[row].append(token_id)
        return outputs

    @torch.inference_mode()
    def stream_batch(
        self,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int | Sequence[int],
        sampling: SamplingParams,
        pad_id: int,
        cancelled: Callable[[int], bool] | None = None,
        finished: Callable[[int], None] | None = None,
    ) -> Iterator[list[tuple[int, int]]]:
        """Generate for several prompts at once, left-padded, one decode step at a time: each step yields
        (row, token id) for every row that chose a token (stop tokens are not yielded). A row ends at a stop
        token, at its own token limit (`max_new_tokens` may be one per row), or when `cancelled(row)` says so
        (its reader has gone), and `finished(row)` is told at once; the batch ends with its last row. Greedy
        rows get the tokens `stream` gives."""
        if not prompts or any(len(p) == 0 for p in prompts):
            raise ValueError("every prompt in a batch needs at least one token")
        batch = len(prompts)
        limits = [max_new_tokens] * batch if isinstance(max_new_tokens, int) else list(max_new_tokens)
        if len(limits) != batch:
            raise ValueError("give one token limit per prompt")
        padded = len({len(p) for p in prompts}) > 1
        generator = self._generator(sampling)
        if padded:
            # Sinks must be every row's first real tokens, which padding pushes away: padded batches keep the full
            # cache (their prompts are budgeted, and answers are bounded). Each row is prefilled alone, so no
            # compute goes to padding, and the rows' caches are joined, left-padded, for the batched decode.
            cache, mask, logits = self._prefill_rows(prompts)
            next_position = torch.tensor([[len(p)] for p in prompts], device=self.device)
        else:
            cache = self.new_cache()
            skip = self._reuse_prefix(prompts, cache)  # the shared prefix once, then each row's rest
            logits = self.prefill(torch.tensor([list(p)[skip:] for p in prompts], device=self.device), cache)
        outputs: list[list[int]] = [[] for _ in prompts]
        done = [False] * batch

        def end(row: int) -> None:
            done[row] = True
            if finished is not None:
                finished(row)

        for row, limit in enumerate(limits):
            if limit <= 0:
                end(row)
        active = list(range(batch))  # the rows still decoding; the tensors and the cache hold only them
        while not all(done):
            previous = None
            if sampling.repetition_penalty != 1.0 and any(outputs[row] for row in active):
                width = max(len(outputs[row]) for row in active)
                previous = torch.tensor([outputs[row] + [-1] * (width - len(outputs[row])) for row in active], device=self.device)
            tokens = next_tokens(logits, sampling, generator, previous)
            chosen: list[tuple[int, int]] = []
            for row, token_id in zip(active, tokens.tolist()):  # one device-to-host copy per step
                if done[row]:
                    continue
                if token_id in self.stop_ids:
                    end(row)
                    continue
                outputs[row].append(token_id)
                chosen.append((row, token_id))
            if chosen:
                yield chosen
            for row in active:
                if not done[row] and (len(outputs[row]) >= limits[row] or (cancelled is not None and cancelled(row))):
                    end(row)
            if all(done):
                break
            keep = [i for i, row in enumerate(active) if not done[row]]
            if len(keep) < len(active):  # drop ended rows: later steps compute only for the rows still going
                index = torch.tensor(keep, device=self.device)
                _select_rows(cache, index)
                tokens = tokens.index_select(0, index)
                if padded:
                    mask, next_position = mask.index_select(0, index), next_position.index_select(0, index)
                active = [active[i] for i in keep]
            tokens = tokens.view(len(active), 1)
            if padded:
                mask = torch.cat((mask, torch.ones((len(active), 1), dtype=mask.dtype, device=self.device)), dim=1)
                logits = self._forward(tokens, cache, attention_mask=mask, position_ids=next_position)
                next_position = next_position + 1
            else:
                logits = self._forward(tokens, cache)

    def _prefill_rows(self, prompts: Sequence[Sequence[int]]) -> tuple[Cache, torch.Tensor, torch.Tensor]:
        """Prefill prompts of different lengths one by one (each from the shared prefix when it applies) and join
        their caches, left-padded with zeros: (the batch's cache, its attention mask, last-position logits)."""
        rows, logits = [], []
        for prompt in prompts:
            row = DynamicCache(config=self.model.config)
            skip = self._reuse_prefix([prompt], row)
            logits.append(self.prefill(torch.tensor([list(prompt)[skip:]], device=self.device), row))
            rows.append(row)
        longest = max(len(p) for p in prompts)
        cache = DynamicCache(config=self.model.config)
        for layer in range(len(rows[0].layers)):
            keys = [torch.nn.functional.pad(r.layers[layer].keys, (0, 0, longest - len(p), 0)) for r, p in zip(rows, prompts)]
            values = [torch.nn.functional.pad(r.layers[layer].values, (0, 0, longest - len(p), 0)) for r, p in zip(rows, prompts)]
            cache.update(torch.cat(keys), torch.cat(values), layer)
        mask = torch.zeros((len(prompts), longest), dtype=torch.long, device=self.device)
        for i, prompt in enumerate(prompts):
            mask[i, longest - len(prompt) :] = 1
        return cache, mask, torch.cat(logits)

    def _reuse_prefix(self, prompts: Sequence[Sequence[int]], cache: Cache) -> int:
        """Seed an empty `cache` with the stored shared prefix when every prompt starts with it (learning it from
        these prompts first); how many tokens of each prompt that covers (0: none)."""
        if self.prefixes is None:
            return 0
        for prompt in prompts:
            self.prefixes.learn(prompt)
        skip = min(self.prefixes.match(p) for p in prompts)
        if skip == 0 or (isinstance(cache, SinkWindowCache) and max(len(p) for p in prompts) > cache.capacity):
            return 0  # a prompt longer than the sink window is prefilled in chunks, evicting as it goes
        self.prefixes.seed(cache, len(prompts))
        return skip

    def _prefix_kv(self, tokens: Sequence[int]) -> KV:
        """Keys and values of `tokens` at positions 0…n-1, for `PrefixStore`."""
        cache = DynamicCache(config=self.model.config)
        with torch.inference_mode():
            self._forward(torch.tensor([list(tokens)], device=self.device), cache)
        return [(layer.keys, layer.values) for layer in cache.layers]

    @torch.inference_mode()
    def score(self, ids: Sequence[int], chunk: int = 64, cache: Cache | None = None) -> torch.Tensor:
        """Log-probability of each token after the first, feeding the text `chunk` tokens at a time through
        this engine's cache (how perplexity under a bounded cache is measured)."""
        cache = cache if cache is not None else self.new_cache()
        tokens = torch.tensor([list(ids)], device=self.device)
        if isinstance(cache, SinkWindowCache):
            chunk = min(chunk, cache.window)
        logprobs = []
        for start in range(0, tokens.shape[1] - 1, chunk):
            piece = tokens[:, start : start + chunk]
            targets = tokens[:, start + 1 : start + 1 + piece.shape[1]]
            logits = self._forward(piece, cache, all_logits=True)[:, : targets.shape[1]]
            lp = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            logprobs.append(lp[0])
        return torch.cat(logprobs)

    def _generator(self, sampling: SamplingParams) -> torch.Generator | None:
        if sampling.greedy or sampling.seed is None:
            return None
        return torch.Generator(device=self.device).manual_seed(sampling.seed)


def _select_rows(cache: Cache, index: torch.Tensor) -> None:
    """Keep only the batch rows `index` of every layer of `cache`."""
    for layer in cache.layers:
        if getattr(layer, "keys", None) is not None and layer.keys.numel():
            layer.keys = layer.keys.index_select(0, index)
            layer.values = layer.values.index_select(0, index)
