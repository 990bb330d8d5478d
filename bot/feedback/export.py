"""Thumbs-down ratings exported as eval cases for the QA team, their markup escaped."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import yaml

from bot.feedback.records import EXPECT, StoredFeedback

#: Markup: HTML/XML tags, comments and CDATA (template syntax is inert in YAML and in the eval reports).
_MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z!?][^<>]*>|<!--|\]\]>")


def defang(text: str) -> tuple[str, bool]:
    """``text`` with its markup escaped (``<b>`` → ``&lt;b&gt;``), and whether there was any."""
    escaped, found = _MARKUP.subn(lambda match: html.escape(match.group(0), quote=False), text)
    return escaped, found > 0


def eval_cases(rows: Sequence[StoredFeedback]) -> dict[str, Any]:
    """Thumbs-down ratings as an eval question set (the format of ``eval/sets/*.yaml``).

    ``expect`` records what the bot did; the QA team corrects it (and adds ``gold_spans``) when they adopt
    a case. The user's comment and the reply they rated travel along under ``feedback``. Markup anywhere in
    them is escaped (tagged ``markup-escaped``); a rating whose answer wasn't verified is tagged ``unverified``.
    """
    cases = []
    for row in rows:
        escaped: list[bool] = []

        def clean(text: str, escaped: list[bool] = escaped) -> str:
            safe, found = defang(text)
            escaped.append(found)
            return safe

        earlier = [clean(m["content"]) for m in row.history if m.get("role") == "user"]
        case: dict[str, Any] = {"id": f"feedback-{row.id}"}
        if earlier:
            case["turns"] = [*earlier, clean(row.question)]
        else:
            case["question"] = clean(row.question)
        case["expect"] = {status.value: expect for status, expect in EXPECT.items()}.get(row.status, row.status)
        case["tags"] = ["feedback", "thumbs-down", "needs-review"]
        case["feedback"] = {
            "comment": clean(row.comment),
            "status": row.status,
            "reason": row.reason,
            "answer": clean(row.answer),
            "rated_at": row.created_at,
            "engine_version": row.engine_version,
        }
        case["tags"] += ["markup-escaped"] if any(escaped) else []
        case["tags"] += [] if row.verified else ["unverified"]
        cases.append(case)
    return {
        "name": "feedback",
        "description": (
            "Answers people rated thumbs-down, exported from the feedback store. `expect` is what the bot did, "
            "not what it should do: review each case, correct `expect`, add gold_spans/must_include, then move "
            "it into a set under eval/sets/. Markup in them is escaped; `unverified` ones may not be this bot's."
        ),
        "cases": cases,
    }


def export_yaml(rows: Sequence[StoredFeedback]) -> str:
    """``eval_cases`` as YAML text."""
    return yaml.safe_dump(eval_cases(rows), sort_keys=False, allow_unicode=True, width=110)
