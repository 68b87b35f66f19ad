"""The one generator factory: `KEFU_LLM` in, a `Generator` (or None for extractive answers) out.

`BACKENDS` lists the valid choices; `resolve_backend` says what `auto` becomes on this machine and why, without
loading anything; `make_generator` builds the backend. Backends are imported only when chosen, so the factory
costs nothing for an extractive deployment. Kept apart from `inference.generator` (the protocol), which the
backends import.
"""

from __future__ import annotations

from collections.abc import Callable

from inference.errors import InferenceError
from inference.generator import Generator, GeneratorConfig


def _transformers(config: GeneratorConfig) -> Generator:
    """Local weights behind the request batcher (`inference.scheduler`): concurrent streams share batches."""
    from inference.scheduler import BatchingGenerator
    from inference.transformers_backend import TransformersGenerator

    inner = TransformersGenerator(config)
    return BatchingGenerator(inner, config.batch_window_ms, config.batch_size or None, config.queue)


def _openai(config: GeneratorConfig) -> Generator:
    from inference.openai_backend import OpenAIGenerator

    return OpenAIGenerator(config)


BACKENDS: dict[str, Callable[[GeneratorConfig], Generator] | None] = {
    "transformers": _transformers,
    "openai": _openai,
    "extractive": None,  # no model: the caller answers by quoting passages
}


def resolve_backend(config: GeneratorConfig) -> tuple[str, str]:
    """(backend, why): what `auto` becomes on this machine, in words a person can act on."""
    if config.backend != "auto":
        if config.backend not in BACKENDS:
            raise InferenceError(f"unknown KEFU_LLM {config.backend!r}; choose one of: auto, {', '.join(BACKENDS)}")
        return config.backend, f"KEFU_LLM={config.backend}"
    from inference.loading import locate, missing_weights_message

    source = locate(config.model)
    if source is not None:
        return "transformers", f"KEFU_LLM=auto found {config.model} at {source.describe()}"
    return "extractive", f"KEFU_LLM=auto answers extractively: {missing_weights_message(config.model)}"


def make_generator(config: GeneratorConfig) -> Generator | None:
    """The configured generator, or None for extractive answers. Raises InferenceError listing the valid
    choices for an unknown backend, or saying what to fix when a backend cannot start."""
    backend, _ = resolve_backend(config)
    factory = BACKENDS[backend]
    return None if factory is None else factory(config)
