"""A chat model's standalone version of a follow-up, searched for instead of the engine's own reading.

It runs only after triage has decided the follow-up is answerable, and never changes a status.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import replace

from langchain_core.language_models import BaseChatModel

from bot.content.synonyms import Synonyms
from bot.contract import Message, Status
from bot.stages.prompts import rewrite_messages
from bot.stages.query import substantive_words
from bot.stages.retrieve import Retrieve
from bot.stages.state import AnswerState

log = logging.getLogger(__name__)

_ANSWERISH = re.compile(r"\[\d+\]|^(sure|yes|no|here|the answer)\b", re.IGNORECASE)


def accept_rewrite(rewrite: str, question: str, history: Sequence[Message]) -> str | None:
    """The model's standalone question if it reads as one and carries the conversation, else ``None``.

    It must be a single question that keeps the follow-up's own subject (when it has one) and brings in
    something from the earlier question(s) that the follow-up leaves unsaid; otherwise — a small model
    echoing the follow-up or drifting off — the engine's own follow-up handling stays.
    """
    text = " ".join(rewrite.strip().strip('"').split())
    if not text or len(text.split()) > 40 or _ANSWERISH.search(text) or not text.endswith("?"):
        return None
    words = substantive_words(text)
    own = substantive_words(question)
    carried = words & substantive_words(" ".join(m.content for m in history if m.role == "user")) - own
    if not carried or (own and not words & own):
        return None
    return text


class RewriteFollowUp:
    """Asks the chat model for a standalone follow-up and, if its rewrite is usable, searches for that instead."""

    name = "rewrite"

    def __init__(self, chat_model: BaseChatModel | None, retrieve: Retrieve, synonyms: Synonyms) -> None:
        self.chat_model = chat_model
        self.retrieve = retrieve
        self.synonyms = synonyms

    def applies(self, state: AnswerState) -> bool:
        """With a chat model, for a follow-up triage decided to answer."""
        return (
            self.chat_model is not None
            and state.status is Status.answered
            and state.query is not None
            and state.query.is_follow_up
        )

    def run(self, state: AnswerState) -> AnswerState:
        """Rewrite the follow-up, and search again for the rewrite when it is accepted."""
        assert self.chat_model is not None and state.query is not None
        history = state.history
        try:
            reply = self.chat_model.invoke(rewrite_messages(state.query.asked, history), stop=["\n"])
            rewrite = accept_rewrite(str(reply.content), state.query.asked, history)
        except Exception as error:  # the engine's own follow-up handling stays
            log.warning("The chat model could not rewrite a follow-up (%s).", error)
            rewrite = None
        if rewrite is not None:
            state.query = replace(state.query, rewritten=rewrite, search_text=self.synonyms.expand(rewrite))
            state = self.retrieve.run(state)
        return state
