"""Chat front-ends' housekeeping requests, recognised cheaply: Open WebUI's title, tag, follow-up, query prompts.

Open WebUI sends them to the chat model itself, each as one user message: a ``### Task:`` prompt, then the
chat so far inside ``<chat_history>``, asking for a JSON object (``{ "title": ... }``, ``{ "tags": [...] }``,
``{ "follow_ups": [...] }``, ``{ "queries": [...] }``, autocomplete's ``{ "text": ... }``). They are not
questions, so the coach replies with a short neutral JSON object of the form asked
(``policy.HOUSEKEEPING_REPLIES``), reads no article, and counts the request against no limit. Recognising one
takes a few string checks of the last message; a prompt changed so that it no longer looks like this is
treated as a question (and mostly refused as markup). How to turn them off in Open WebUI: ``docs/openai.md``.
"""

from __future__ import annotations

import re

from bot import policy

_TASK = "### Task:"
_HISTORY = "<chat_history>"
#: A JSON key in the prompt's instructions: ``"title":``.
_KEY = re.compile(r'"(\w+)"\s*:')


def housekeeping_reply(question: str) -> str | None:
    """The neutral reply to a front-end's housekeeping prompt, or ``None`` for anything else (a question)."""
    text = question.lstrip()
    if not text.startswith(_TASK):
        return None
    instructions, found, _history = text.partition(_HISTORY)
    if not found:
        return None
    for key in _KEY.findall(instructions):  # the form the prompt asks for comes first
        if key in policy.HOUSEKEEPING_REPLIES:
            return policy.HOUSEKEEPING_REPLIES[key]
    return None
