"""Screening: input no answer should be attempted for (empty, too long, hidden characters, markup) is invalid."""

from __future__ import annotations

import re
import unicodedata

from bot.contract import Status
from bot.stages.state import AnswerState, Verdict

# HTML or template syntax in a question: never answered, so never echoed into a page.
_MARKUP_OR_TEMPLATE = re.compile(
    r"<\s*/?\s*[a-zA-Z][\w:-]*(\s[^<>]*)?/?\s*>"  # HTML/XML tags
    r"|<!--|\]\]>|javascript\s*:|\bon\w+\s*=\s*['\"]?\w"  # comments, CDATA, script URLs, event handlers
    r"|\{\{.*?\}\}|\$\{.*?\}",  # template expressions
    re.IGNORECASE | re.DOTALL,
)


def _has_control_characters(text: str) -> bool:
    # Newlines and tabs are how people type; every other control or format character is not.
    return any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co"} and ch not in "\n\t\r" for ch in text)


def screen_input(question: str, *, max_chars: int) -> Verdict | None:
    """An ``invalid`` verdict for input no answer should be attempted for, else ``None``."""
    if not question or not question.strip():
        return Verdict(Status.invalid, "empty")
    if len(question) > max_chars:
        return Verdict(Status.invalid, "too_long", str(max_chars))
    if _has_control_characters(question):
        return Verdict(Status.invalid, "control_characters")
    if _MARKUP_OR_TEMPLATE.search(question):
        return Verdict(Status.invalid, "markup")
    return None


class Screen:
    """Rejects unusable input before anything is searched (a shell may have rejected the request already)."""

    name = "screen"

    def __init__(self, *, max_chars: int) -> None:
        self.max_chars = max_chars

    def applies(self, state: AnswerState) -> bool:
        """Always: screening is the first step."""
        return True

    def run(self, state: AnswerState) -> AnswerState:
        """Set an ``invalid`` verdict for unusable input."""
        if state.verdict is None:
            state.verdict = screen_input(state.question, max_chars=self.max_chars)
        return state
