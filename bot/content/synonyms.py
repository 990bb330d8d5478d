"""Gym words → the article's words (``corpus/synonyms.yaml``): "sled" also searches for "leg press"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Synonyms:
    """User words → the article's words, compiled once."""

    rules: tuple[tuple[str, re.Pattern[str]], ...] = ()

    @cached_property
    def _any_rule(self) -> re.Pattern[str] | None:
        """Matches where some rule does: most texts (a question's single words, when composing) match none."""
        if not self.rules:
            return None
        return re.compile("|".join(f"(?:{pattern.pattern})" for _, pattern in self.rules), re.IGNORECASE)

    def expand(self, text: str) -> str:
        """``text`` followed by the article's word for every user word it contains."""
        if (any_rule := self._any_rule) is None or any_rule.search(text) is None:
            return text
        lowered = text.lower()
        additions = [
            article_words
            for article_words, pattern in self.rules
            if pattern.search(text) and article_words.lower() not in lowered
        ]
        return f"{text} ({'; '.join(additions)})" if additions else text


@lru_cache(maxsize=8)
def load_synonyms(path: Path) -> Synonyms:
    """Read a synonyms YAML file (``article words: [user words, …]``); a missing file means none."""
    if not path.is_file():
        return Synonyms()
    mapping = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(mapping, dict):
        raise ValueError(f"{path.name}: expected 'article words: [user words, ...]' lines.")
    rules = []
    for article_words, user_words in mapping.items():
        variants = [user_words] if isinstance(user_words, str) else list(user_words or [])
        alternatives = "|".join(re.escape(str(v)).replace(r"\ ", r"[\s-]+") for v in variants)
        if alternatives:
            pattern = rf"(?<!\w)({alternatives})(e?s)?(?!\w)"  # plural-tolerant, whole words only
            rules.append((str(article_words), re.compile(pattern, re.IGNORECASE)))
    return Synonyms(tuple(rules))
