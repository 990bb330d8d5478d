"""Numbers in text: what a "how many …?" question counts, whether a sentence states it, every number a text states."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

_HOW_MANY = re.compile(r"\bhow many\s+(\w+)", re.IGNORECASE)
_COUNT_WORD = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a few|several)\b", re.I)
_TIME_UNITS = {"second", "minute", "hour", "day", "week", "month"}


def counted_thing(question: str) -> str | None:
    """The thing a "how many …?" question counts ("sets", "reps", "times"), singular; else ``None``."""
    match = _HOW_MANY.search(question)
    return match.group(1).lower().rstrip("s") if match else None


def _same_word(word: str, thing: str) -> bool:
    """The same word, or a typo of it ("degress" for "degree")."""
    return word == thing or (len(thing) >= 5 and SequenceMatcher(None, word, thing).ratio() >= 0.85)


def states_count(text: str, thing: str) -> bool:
    """Whether ``text`` puts a number on ``thing`` (within three words of it; time units stand in for each other)."""
    words = re.findall(r"[\w%-]+", text.lower())
    targets = _TIME_UNITS if thing in _TIME_UNITS else {thing}
    for i, word in enumerate(words):
        if any(_same_word(word.rstrip("s"), target) for target in targets) and any(
            _COUNT_WORD.search(w) for w in words[max(0, i - 3) : i + 4]
        ):
            return True
    return False


_NUMERAL = re.compile(r"\d+(?:[.,]\d+)?")
_NUMBER_WORDS = {
    "once": "1", "one": "1", "twice": "2", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "dozen": "12",
}  # fmt: skip
_LETTERS = re.compile(r"[a-z]+")


def numbers_in(text: str) -> set[str]:
    """Every number ``text`` states, digits or words ("twice" → "2")."""
    found = set(_NUMERAL.findall(text))
    found |= {_NUMBER_WORDS[w] for w in _LETTERS.findall(text.lower()) if w in _NUMBER_WORDS}
    return found
