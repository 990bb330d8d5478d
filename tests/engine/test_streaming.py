"""Streaming is correct by construction: what was sent is never taken back nor sent again, and the pieces
always add up to the answer — whatever the model writes and whatever the final guard would drop.

Fast: a fake chat model, a hashing embedder and one hand-made passage; no model, no index.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from bot.content.documents import Chunk, Sentence
from bot.contract import Answer, Status
from bot.engine.chain import AnswerChain
from bot.policy import DISCLAIMER
from bot.stages.compose import not_found_reply
from bot.stages.finish import Finish
from bot.stages.generate import Generate
from bot.stages.guard import Guard, GuardSettings
from bot.stages.state import AnswerState, Claim, Query, RankedPassage, Support, Verdict
from bot.stages.triage import NarrowToNotFound

SENTENCES = [
    "Place your feet shoulder-width apart on the platform.",
    "Keep your toes pointing forward or slightly outward.",
    "Press through the heels and mid-foot rather than the toes.",
    "Do not lock your knees at the top of the movement.",
]
TEXT = " ".join(SENTENCES)
STARTS = [TEXT.index(s) for s in SENTENCES]
CHUNK = Chunk(
    chunk_id="feet#1",
    doc_id="feet",
    title="Feet",
    section=("Foot Placement",),
    text=TEXT,
    start=0,
    end=len(TEXT),
    sentences=tuple(Sentence(start, start + len(s)) for start, s in zip(STARTS, SENTENCES, strict=True)),
)
FACTS = tuple(
    Claim(s, (Support(CHUNK.chunk_id, start, start + len(s)),)) for start, s in zip(STARTS, SENTENCES, strict=True)
)
MARKER = re.compile(r"\[(\d+)\]")


def embed(text: str) -> np.ndarray:
    """A bag of hashed words: the same words, the same direction (enough for the guard's closeness test)."""
    vector = np.zeros(64, dtype=np.float32)
    for word in re.findall(r"[a-z]+", text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % 64] += 1.0
    return vector / (np.linalg.norm(vector) or 1.0)


def state() -> AnswerState:
    question = "Where should my feet go on the leg press?"
    return AnswerState(
        question=question,
        history=[],
        verdict=Verdict(Status.answered, "answered"),
        query=Query(question=question, asked=question, standalone=question, search_text=question),
        passages=[RankedPassage(CHUNK, 1.0, 0.9, 1.0)],
        sentence_vectors={(CHUNK.chunk_id, i): embed(s) for i, s in enumerate(SENTENCES)},
        facts=FACTS,
    )


def chain(model_reply: str, final_guard_keeps) -> AnswerChain:
    model = GenericFakeChatModel(messages=iter([AIMessage(content=model_reply)]))
    generate = Generate(model, composer="fake", embed=embed, guard=GuardSettings(), timeout=30)
    judge = Guard(GuardSettings(), supports=lambda claim, passages, settings: final_guard_keeps(claim))
    return AnswerChain([generate, judge, NarrowToNotFound(not_found_reply)], Finish(top_k=5))


# A model's sentence: one of the passage's (cited right or wrong), or something the passage never says.
written_sentence = st.one_of(
    st.builds(lambda s, n: f"{s} [{n}]", st.sampled_from(SENTENCES), st.integers(1, 5)),
    st.sampled_from(["Squat on a bosu ball every day. [1]", "Take 800 mg of ibuprofen. [2]", "Great question!"]),
)


@settings(max_examples=200, deadline=None)
@given(
    written=st.lists(written_sentence, max_size=6),
    dropped=st.sets(st.sampled_from(SENTENCES), max_size=len(SENTENCES)),
)
def test_streamed_pieces_are_final_and_add_up_to_the_answer(written: list[str], dropped: set[str]) -> None:
    # The final guard would drop these sentences, including ones already sent as the model wrote them.
    pieces = list(chain(" ".join(written), lambda claim: claim.text not in dropped).stream(state()))
    *deltas, answer = pieces
    assert isinstance(answer, Answer) and all(isinstance(d, str) for d in deltas)
    assert "".join(deltas) == answer.answer  # nothing repeated, nothing taken back
    assert answer.answer.endswith(DISCLAIMER)
    cited = {c.n for c in answer.citations}
    assert {int(n) for n in MARKER.findall(answer.answer)} <= cited  # every marker still resolves
    for citation in answer.citations:
        assert citation.quote in citation.text


def test_a_sentence_sent_before_the_final_guard_is_kept_in_the_answer() -> None:
    first = f"{SENTENCES[0]} [1]"
    pieces = list(chain(f"{first} {SENTENCES[1]} [2]", lambda claim: False).stream(state()))
    *deltas, answer = pieces
    assert isinstance(answer, Answer) and answer.status is Status.answered
    assert deltas[0] == first and "".join(deltas) == answer.answer
    assert answer.answer.count(SENTENCES[0]) == 1


def test_with_nothing_verified_the_extractive_answer_is_streamed_once() -> None:
    pieces = list(chain("Great question! Squat on a bosu ball every day. [1]", lambda claim: True).stream(state()))
    *deltas, answer = pieces
    assert isinstance(answer, Answer) and answer.fallback == "no generated sentence passed the grounding guard"
    assert "".join(deltas) == answer.answer and answer.answer.startswith(SENTENCES[0])
