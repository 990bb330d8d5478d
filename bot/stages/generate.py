"""A chat model writes the answer from the extractive facts, sentence by sentence through the grounding guard.

Each sentence the guard accepts is final at once: it goes to the reader and stays in the reply. If no
sentence survives (or the model fails or is too slow), the extractive answer is the reply and the reason
is recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing
from typing import cast

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, BaseMessageChunk

from bot.contract import Status
from bot.stages.finish import citation_numbers, prose_sentence
from bot.stages.guard import GuardSettings, check_generated_sentence, generated_segments
from bot.stages.prompts import build_messages
from bot.stages.state import AnswerState, Claim, Draft

log = logging.getLogger(__name__)


class Generate:
    """Streams the chat model's answer through the guard; the extractive facts are its material and its fallback."""

    name = "generate"

    def __init__(
        self,
        chat_model: BaseChatModel | None,
        *,
        composer: str,
        embed: Callable[[str], np.ndarray],
        guard: GuardSettings,
        timeout: float,
    ) -> None:
        self.chat_model = chat_model
        self.composer = composer
        self.embed = embed
        self.guard = guard
        #: A member never waits on a model for longer than this: a slow one is cut off at a sentence boundary.
        self.timeout = timeout

    def applies(self, state: AnswerState) -> bool:
        """With a chat model, for an answered question the extractive composer found facts for.

        An overview keeps the article's own structure (one cited line per item): it is not rewritten as prose.
        """
        return (
            self.chat_model is not None
            and state.status is Status.answered
            and bool(state.facts)
            and not state.draft.outline
        )

    def run(self, state: AnswerState) -> AnswerState:
        """Generate without a reader: the same steps, the pieces dropped."""
        pieces = self.stream(state)
        while True:
            try:
                next(pieces)
            except StopIteration as done:
                return cast("AnswerState", done.value)

    def stream(self, state: AnswerState) -> Generator[str, None, AnswerState]:
        """Yield each verified sentence as it is written; the draft is the verified sentences (or the facts)."""
        assert state.query is not None
        state.composer = self.composer
        facts = state.facts
        messages = build_messages(state.query.rewritten or state.query.standalone, [f.text for f in facts])
        passages = state.chunks()
        kept: list[Claim] = []
        checked = 0
        started = time.perf_counter()
        for sentence in self._sentences(state, messages):
            checked += 1
            check = check_generated_sentence(sentence, facts, passages, state.sentence_vectors, self.embed, self.guard)
            if check.claim is None:
                log.info("guard removed %r: %s", sentence, check.reason)
                continue
            kept.append(check.claim)
            # Numbers follow first use, so what was already sent keeps its numbers as the answer grows.
            piece = ("" if len(kept) == 1 else " ") + prose_sentence(check.claim, citation_numbers(kept))
            state.draft, state.committed = Draft(claims=tuple(kept)), len(kept)
            state.sent.append(piece)
            state.timings.setdefault("first_text", state.elapsed_ms())
            yield piece
        state.timings["generate"] = round((time.perf_counter() - started) * 1000, 3)
        state.removed_sentences = checked - len(kept)
        if kept:  # verified sentences stand even if the model failed later (the reader has them already)
            state.fallback = None
        else:
            state.fallback = state.fallback or "no generated sentence passed the grounding guard"
            state.draft = Draft(claims=facts)
        return state

    def _sentences(self, state: AnswerState, messages: Sequence[BaseMessage]) -> Iterator[str]:
        """The model's answer as finished sentences, as they are written; failures end it with a recorded reason."""
        assert self.chat_model is not None
        deadline = time.perf_counter() + self.timeout
        written = ""
        judged = 0
        try:
            # ``BaseChatModel.stream`` is a generator: closing it stops the model mid-answer.
            stream = cast("Generator[BaseMessageChunk, None, None]", self.chat_model.stream(list(messages)))
            with closing(stream):
                for chunk in stream:
                    token = chunk.content if isinstance(chunk.content, str) else ""
                    if token:
                        state.timings.setdefault("first_token", state.elapsed_ms())
                    written += token
                    finished = generated_segments(written)[:-1]  # the last one may still be growing
                    yield from (segment for segment in finished[judged:] if segment.strip())
                    judged = max(judged, len(finished))
                    if time.perf_counter() > deadline:
                        log.warning("The chat model %s took over %s s; it was stopped.", self.composer, self.timeout)
                        state.fallback = f"the chat model took longer than {self.timeout:g} s"
                        return  # its unfinished sentence is not judged
        except Exception as error:  # an unreachable or failing model must not fail the member
            log.warning("The chat model %s failed (%s); answering extractively.", self.composer, error)
            state.fallback = f"the chat model failed ({error.__class__.__name__})"
            return
        yield from (segment for segment in generated_segments(written)[judged:] if segment.strip())
