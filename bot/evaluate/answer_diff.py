"""Answer by answer: is each case's reply — status, text, citations — exactly what an earlier run recorded?

Cases are matched by ``set/id`` between two lists of ``results.jsonl`` records. A reply is identical when its
status, its text and its citations (``n``, ``chunk_id``, ``quote``, ``start``, ``end``, in order) all are; any
other difference is a change, shown as a unified diff of the two replies (see ``ReplyView.lines``). This is
what proves a refactoring left every answer unchanged.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The citation fields compared (the passage's title, section and text follow from ``chunk_id``).
CITATION_FIELDS = ("n", "chunk_id", "quote", "start", "end")
#: The status shown for a case that crashed (its record has no answer).
NO_REPLY = "crashed"
#: Changed answers shown on the console; the reports show all of them.
CONSOLE_DIFFS = 3


def read_results(path: Path) -> list[dict[str, Any]]:
    r"""The records of a ``results.jsonl``, one per line.

    The text is split on ``"\n"`` only: ``str.splitlines()`` would also cut at U+2028 and U+2029, which
    ``json.dumps(..., ensure_ascii=False)`` leaves unescaped inside a string, and so break a record in two.
    """
    text = path.read_bytes().decode("utf-8")
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def record_name(record: Mapping[str, Any]) -> str:
    """``set/id``: how every report names a case."""
    return f"{record['set']}/{record['id']}"


def visible(line: str) -> str:
    r"""``line`` with what a terminal wouldn't show made visible, so no changed line looks unchanged.

    Characters that aren't printable (tab, carriage return, U+2028, no-break and zero-width spaces …) become
    ``\t``, ``\r`` or ``\uXXXX``; trailing spaces become ``␠``.
    """
    escaped = "".join(ch if ch.isprintable() else _escape(ch) for ch in line)
    body = escaped.rstrip(" ")
    return body + "␠" * (len(escaped) - len(body))


def _escape(ch: str) -> str:
    if ord(ch) < 0x20:
        return json.dumps(ch)[1:-1]  # the JSON escapes: \t, \r, \u001b …
    return f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"


@dataclass(frozen=True)
class ReplyView:
    """What is compared of one case's reply: its status, its text and its citations."""

    status: str
    text: str
    citations: tuple[tuple[Any, ...], ...]

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> ReplyView:
        """The reply recorded in a ``results.jsonl`` record (a crash: status ``crashed`` and the error)."""
        answer = record.get("answer")
        if not answer:
            error = (record.get("metrics") or {}).get("error")
            return cls(NO_REPLY, f"(no reply: {error})" if error else "(no reply)", ())
        citations = tuple(tuple(c.get(f) for f in CITATION_FIELDS) for c in answer.get("citations") or [])
        return cls(str(answer.get("status")), str(answer.get("answer", "")), citations)

    def lines(self) -> list[str]:
        """The reply as the diff shows it: ``status:``, the text indented line by line, one line per citation.

        Every line of the text is indented (an empty one stays empty), so no reply can pass for the other parts.
        """
        lines = [f"status: {self.status}", "reply:"]
        lines += [f"  {visible(line)}" if line else "" for line in self.text.split("\n")]
        lines.append("citations:" if self.citations else "citations: none")
        for n, chunk_id, quote, start, end in self.citations:
            quoted = json.dumps(quote, ensure_ascii=False)
            lines.append(visible(f"  [{n}] chunk {chunk_id} at {start}-{end}: {quoted}"))
        return lines


@dataclass(frozen=True)
class AnswerChange:
    """A case whose reply differs from the earlier run's."""

    name: str
    before: ReplyView
    after: ReplyView

    def what(self) -> str:
        """What changed, in words: ``status (answered → not_found), text, citations``."""
        parts = []
        if self.before.status != self.after.status:
            parts.append(f"status ({self.before.status} → {self.after.status})")
        if self.before.text != self.after.text:
            parts.append("text")
        if self.before.citations != self.after.citations:
            parts.append("citations")
        return ", ".join(parts)

    def diff(self, earlier: str = "earlier run") -> list[str]:
        """The unified diff of the two replies (``---`` the earlier run, ``+++`` this run)."""
        lines = list(difflib.unified_diff(self.before.lines(), self.after.lines(), fromfile=f"{self.name} ({earlier})",
                                          tofile=f"{self.name} (this run)", lineterm=""))  # fmt: skip
        # Only text that imitates an escape (a literal "\\u2028", "␠") can look the same as what it differs from.
        return lines or [f"(the {self.what()} differ only in characters that look alike here; see results.jsonl)"]


@dataclass(frozen=True)
class AnswerDiff:
    """Every case of two runs: identical, changed, only in this run, or only in the earlier one."""

    identical: tuple[str, ...]
    changed: tuple[AnswerChange, ...]
    only_here: tuple[str, ...]
    only_there: tuple[str, ...]

    @property
    def unchanged(self) -> bool:
        """Whether both runs have the same cases with the same replies."""
        return not (self.changed or self.only_here or self.only_there)

    def count_line(self) -> str:
        """``answers: 224 identical, 3 changed, 0 only here, 0 only there``."""
        return (f"answers: {len(self.identical)} identical, {len(self.changed)} changed, "
                f"{len(self.only_here)} only here, {len(self.only_there)} only there")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The counts and the cases that changed or are in one run only, as JSON-ready data."""
        return {
            "identical": len(self.identical),
            "changed": len(self.changed),
            "only_here": len(self.only_here),
            "only_there": len(self.only_there),
            "changed_ids": [c.name for c in self.changed],
            "only_here_ids": list(self.only_here),
            "only_there_ids": list(self.only_there),
        }

    def lines(self, earlier: str = "earlier run", *, limit: int | None = None) -> list[str]:
        """Each changed case (the first ``limit`` of them): what changed, then its diff indented."""
        lines = []
        for change in self.changed[:limit]:
            lines.append(f"  {change.name}: {change.what()} changed")
            lines += [f"    {line}" for line in change.diff(earlier)]
        hidden = len(self.changed) - len(self.changed[:limit])
        if hidden:
            noun = "answer" if hidden == 1 else "answers"
            lines.append(f"  … and {hidden} more changed {noun} (report.md and report.html show every diff)")
        return lines


def diff_answers(earlier: Sequence[Mapping[str, Any]], current: Sequence[Mapping[str, Any]]) -> AnswerDiff:
    """Match the two runs' records by ``set/id`` and compare each pair's reply, in this run's order."""
    before = {record_name(r): ReplyView.of(r) for r in earlier}
    identical, changed, only_here = [], [], []
    for record in current:
        name, after = record_name(record), ReplyView.of(record)
        if name not in before:
            only_here.append(name)
        elif before[name] == after:
            identical.append(name)
        else:
            changed.append(AnswerChange(name, before[name], after))
    here = {record_name(r) for r in current}
    return AnswerDiff(
        identical=tuple(identical),
        changed=tuple(changed),
        only_here=tuple(only_here),
        only_there=tuple(name for name in before if name not in here),
    )
