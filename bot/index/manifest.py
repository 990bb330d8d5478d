"""The files of the index under ``BOT_INDEX_DIR``: the manifest naming the live version, and the pending-build record.

Layout::

    manifest.json      the live version: what it was built from (model, chunker, each article's hash and passages)
    lexical-v<N>/      that version's BM25 index (tantivy)
    chroma/            the vectors and passage records (embedded mode; with BOT_CHROMA_URL, a Chroma server)
    pending.json       passages written by a build that has not switched yet
    build.lock         held by the build running now
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from bot.content.chunking import CHUNKER_VERSION
from bot.settings import Settings


class DocumentEntry(BaseModel):
    """One article as indexed: its content hash and its passages."""

    sha256: str
    chunk_ids: list[str]


class Manifest(BaseModel):
    """The live version of the index and what it was built from; replaced atomically by each build."""

    version: int
    embedding_model: str
    embedding_dim: int
    chunker: str
    documents: dict[str, DocumentEntry]
    chunk_count: int
    built_at: str

    @property
    def chunk_ids(self) -> list[str]:
        """Every passage of this version, article by article."""
        return [i for entry in self.documents.values() for i in entry.chunk_ids]


@dataclass(frozen=True)
class IndexFiles:
    """Where each part of the index lives under ``BOT_INDEX_DIR``."""

    root: Path

    @property
    def manifest(self) -> Path:
        """The pointer to the live version."""
        return self.root / "manifest.json"

    @property
    def chroma(self) -> Path:
        """The embedded Chroma store."""
        return self.root / "chroma"

    @property
    def pending(self) -> Path:
        """Passages written to the store by a build that has not switched yet."""
        return self.root / "pending.json"

    @property
    def lock(self) -> Path:
        """Held by the build running now."""
        return self.root / "build.lock"

    def lexical(self, version: int) -> Path:
        """One version's BM25 index."""
        return self.root / f"lexical-v{version}"

    def lexical_folders(self) -> list[Path]:
        """Every version's BM25 folder on disk."""
        return list(self.root.glob("lexical-v*"))


def chunker_id(settings: Settings) -> str:
    """The chunking rules and passage size a manifest records (a change means a rebuild)."""
    return f"{CHUNKER_VERSION}/{settings.chunk_max_chars}"


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename: a reader sees the old file or the new one, never half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(index_dir: Path) -> Manifest | None:
    """The live manifest, or ``None`` when it is missing or unreadable."""
    try:
        return Manifest.model_validate_json(IndexFiles(index_dir).manifest.read_bytes())
    except (OSError, ValidationError, ValueError):
        return None


def read_pending(files: IndexFiles, model: str, dim: int) -> set[str]:
    """Passages an unfinished build wrote with this same model (empty if none, or another model's)."""
    try:
        data = json.loads(files.pending.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if data.get("embedding_model") != model or data.get("embedding_dim") != dim:
        return set()
    return set(data.get("chunk_ids", []))


def write_pending(files: IndexFiles, model: str, dim: int, chunk_ids: set[str]) -> None:
    """Record the passages a build is about to write, so a killed build's work is found and reused."""
    if chunk_ids:
        record = {"embedding_model": model, "embedding_dim": dim, "chunk_ids": sorted(chunk_ids)}
        write_atomically(files.pending, json.dumps(record))
