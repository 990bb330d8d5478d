"""Load the Markdown articles of the corpus (front matter + body)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import frontmatter
import yaml

from bot.content.documents import Article


class CorpusError(ValueError):
    """The corpus folder or one of its articles cannot be used; the message names the file."""


def article_paths(corpus_dir: Path) -> list[Path]:
    """Every article in the corpus, in a stable order (any ``*.md`` below the folder, README excluded)."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"The corpus folder {corpus_dir} does not exist.")
    return sorted(p for p in corpus_dir.rglob("*.md") if p.name.lower() != "readme.md")


def load_document(path: Path, corpus_dir: Path) -> Article:
    """Parse one article; the document id is its path inside the corpus without the suffix."""
    try:
        post = frontmatter.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        raise CorpusError(f"{path.name}: cannot read the article ({error.__class__.__name__}).") from error
    body = post.content
    if not body.strip():
        raise CorpusError(f"{path.name}: the article has no text.")
    meta = post.metadata

    def field(name: str) -> str:
        return str(meta.get(name) or "").strip()

    first_heading = re.search(r"^#\s+(.+)$", body, flags=re.MULTILINE)
    title = field("title") or (first_heading.group(1).strip() if first_heading else path.stem)
    return Article(
        doc_id=doc_id(path, corpus_dir),
        title=title,
        text=body,
        site=field("site"),
        author=field("author"),
        source=field("source"),
        disclaimer=field("disclaimer"),
    )


def doc_id(path: Path, corpus_dir: Path) -> str:
    """An article's id: its path below the corpus folder, without ``.md`` (e.g. ``gym/knees``)."""
    return path.relative_to(corpus_dir).with_suffix("").as_posix()


def require_articles(corpus_dir: Path) -> list[Path]:
    """The corpus's article paths; a missing or empty corpus is an error, not an empty index."""
    paths = article_paths(corpus_dir)
    if not paths:
        raise CorpusError(f"The corpus folder {corpus_dir} has no Markdown (.md) articles.")
    return paths


def load_corpus(corpus_dir: Path) -> list[Article]:
    """All articles of the corpus (at least one)."""
    return [load_document(path, corpus_dir) for path in require_articles(corpus_dir)]


def corpus_fingerprint(corpus_dir: Path) -> dict[str, str]:
    """Content hash of every article, keyed by document id: cheap enough to check at every start."""
    return {
        doc_id(path, corpus_dir): hashlib.sha256(path.read_bytes()).hexdigest() for path in article_paths(corpus_dir)
    }
