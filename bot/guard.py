"""The grounding guard: every claim must rest on a retrieved passage, or it does not reach the user."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from bot.compose import Claim, Draft
from bot.types import Chunk

_MARKUP = re.compile(r"(^|\n)\s*[-*+]\s+|\*\*|__")
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Text with list markers, emphasis and runs of whitespace removed, for verbatim comparison."""
    return _SPACE.sub(" ", _MARKUP.sub(" ", text)).strip()


def is_supported(claim: Claim, passages: Mapping[str, Chunk]) -> bool:
    """Whether every span behind ``claim`` lies in a retrieved passage and the claim quotes them verbatim."""
    if not claim.support:
        return False
    quoted = []
    for support in claim.support:
        chunk = passages.get(support.chunk_id)
        if chunk is None or not (chunk.start <= support.start < support.end <= chunk.end):
            return False
        quoted.append(normalize(chunk.text[support.start - chunk.start : support.end - chunk.start]))
    return normalize(claim.text) in " ".join(quoted)


def guard(draft: Draft, passages: Mapping[str, Chunk]) -> Draft:
    """The draft without the claims that are not backed by the retrieved passages (counted in the result)."""
    kept = tuple(claim for claim in draft.claims if is_supported(claim, passages))
    removed = len(draft.claims) - len(kept)
    return replace(draft, claims=kept, removed_claims=draft.removed_claims + removed) if removed else draft
