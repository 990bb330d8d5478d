import numpy as np
import pytest

from bot.content.documents import Chunk, Sentence
from bot.contract import Status
from bot.language.questions import asked_for
from bot.policy import EXAMPLE_QUESTIONS
from bot.stages.compose import ComposeSettings, Evidence, Question, fixed_reply, select, select_claims
from bot.stages.finish import render_markdown as render
from bot.stages.guard import guard, is_supported
from bot.stages.state import Claim, Draft, RankedPassage, Support, Verdict

TEXT = "Keep your knees aligned. This prevents strain. Lift slowly and carefully every time."
CHUNK = Chunk(
    chunk_id="doc#1",
    doc_id="doc",
    title="T",
    section=("S",),
    text=TEXT,
    start=100,
    end=100 + len(TEXT),
    sentences=(Sentence(100, 124), Sentence(125, 146), Sentence(147, 100 + len(TEXT))),
)
OTHER = Chunk(
    chunk_id="doc#2",
    doc_id="doc",
    title="T",
    section=("S2",),
    text="Rest 48 hours.",
    start=300,
    end=314,
    sentences=(Sentence(300, 314),),
)


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def evidence(vectors: dict) -> Evidence:
    return Evidence([RankedPassage(CHUNK, 1.0), RankedPassage(OTHER, 0.5)], vectors, {})


def test_the_most_relevant_sentence_leads() -> None:
    vectors = {
        ("doc#1", 0): unit(1, 0),
        ("doc#1", 2): unit(0.8, 0.6),
        ("doc#1", 1): unit(0, 1),
        ("doc#2", 0): unit(0, 1),
    }
    claims = select_claims(unit(0.7, 0.7), set(), evidence(vectors), ComposeSettings())
    assert claims[0].text == "Lift slowly and carefully every time."


def test_an_anaphoric_sentence_is_quoted_with_the_sentence_it_points_to() -> None:
    vectors = {("doc#1", 1): unit(1, 0), ("doc#1", 0): unit(0, 1), ("doc#1", 2): unit(0, 1)}
    claims = select_claims(unit(1, 0), set(), evidence(vectors), ComposeSettings(points=0))
    assert claims == (Claim("Keep your knees aligned. This prevents strain.", (Support("doc#1", 100, 146),)),)


def test_irrelevant_sentences_are_left_out() -> None:
    vectors = {("doc#1", 0): unit(1, 0), ("doc#1", 2): unit(0, 1), ("doc#2", 0): unit(-1, 0.1)}
    claims = select_claims(unit(1, 0), set(), evidence(vectors), ComposeSettings())
    assert [c.text for c in claims] == ["Keep your knees aligned."]


def test_render_numbers_sources_in_order_of_first_use_and_spans_their_quotes() -> None:
    draft = Draft(
        claims=(
            Claim("Rest 48 hours.", (Support("doc#2", 300, 314),)),
            Claim("Keep your knees aligned.", (Support("doc#1", 100, 124),)),
            Claim("Lift slowly and carefully every time.", (Support("doc#1", 147, 184),)),
        )
    )
    markdown, citations = render(draft, {"doc#1": CHUNK, "doc#2": OTHER})
    assert markdown == (
        "Rest 48 hours. [1]\n\n- Keep your knees aligned. [2]\n- Lift slowly and carefully every time. [2]"
    )
    assert [(n, c.chunk_id, start, end) for n, c, start, end in citations] == [
        (1, "doc#2", 300, 314),
        (2, "doc#1", 100, 184),
    ]


def test_a_list_claim_renders_as_a_list_and_keeps_points_apart() -> None:
    listing = Claim("Try these:\n\n- wall sits\n- deadlifts", (Support("doc#1", 100, 124),), is_list=True)
    markdown, _ = render(
        Draft(claims=(listing, Claim("Rest 48 hours.", (Support("doc#2", 300, 314),)))),
        {"doc#1": CHUNK, "doc#2": OTHER},
    )
    assert markdown == "Try these: [1]\n\n- wall sits\n- deadlifts\n\nAlso worth knowing:\n\n- Rest 48 hours. [2]"


@pytest.mark.parametrize("status", [Status.invalid, Status.out_of_scope, Status.not_found])
def test_fixed_replies_cite_nothing(status: Status) -> None:
    draft = fixed_reply(Verdict(status, "off_topic" if status is Status.out_of_scope else "empty"))
    assert draft.intro and not draft.claims


def test_out_of_scope_replies_offer_example_questions() -> None:
    assert all(q in fixed_reply(Verdict(Status.out_of_scope, "off_topic")).intro for q in EXAMPLE_QUESTIONS)


def test_not_found_never_mentions_a_dose() -> None:
    reply = fixed_reply(Verdict(Status.not_found, "not_covered:medication", "medication")).intro
    assert "mg" not in reply and "doctor" in reply


# -- the guard ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "supported"),
    [
        (Claim("Keep your knees aligned.", (Support("doc#1", 100, 124),)), True),
        (Claim("Keep your knees locked.", (Support("doc#1", 100, 124),)), False),  # not what the passage says
        (Claim("Keep your knees aligned.", (Support("doc#9", 100, 124),)), False),  # a passage not retrieved
        (Claim("Keep your knees aligned.", (Support("doc#1", 90, 124),)), False),  # a span outside the passage
        (Claim("Keep your knees aligned.", ()), False),  # no citation at all
    ],
)
def test_guard_keeps_only_claims_quoted_from_retrieved_passages(claim: Claim, supported: bool) -> None:
    assert is_supported(claim, {"doc#1": CHUNK}) is supported


def test_guard_removes_unsupported_claims_and_keeps_the_rest() -> None:
    good = Claim("Keep your knees aligned.", (Support("doc#1", 100, 124),))
    bad = Claim("Take 800 mg of ibuprofen.", (Support("doc#1", 100, 124),))
    guarded = guard(Draft(claims=(good, bad)), {"doc#1": CHUNK})
    assert guarded.claims == (good,)


def test_guard_never_drops_claims_already_sent_to_the_reader() -> None:
    sent = Claim("Take 800 mg of ibuprofen.", (Support("doc#1", 100, 124),), generated=True)
    later = Claim("Take 800 mg of ibuprofen.", (Support("doc#1", 100, 124),))
    guarded = guard(Draft(claims=(sent, later)), {"doc#1": CHUNK}, keep=1)
    assert guarded.claims == (sent,)


FRAMING_TEXT = (
    "Understanding the causes of knee pain can help prevent damage and ensure safe workouts. Weak quads cause it."
)
FRAMED = Chunk(
    chunk_id="doc#3",
    doc_id="doc",
    title="T",
    section=("Causes",),
    text=FRAMING_TEXT,
    start=400,
    end=400 + len(FRAMING_TEXT),
    sentences=(Sentence(400, 487), Sentence(488, 400 + len(FRAMING_TEXT))),
)


@pytest.mark.parametrize(
    ("question", "lead"),
    [
        ("why do my knees hurt?", "Weak quads cause it."),  # a cause is never said by framing
        ("does it matter?", "Understanding the causes"),  # whether something matters may be
    ],
)
def test_framing_leads_only_a_question_it_can_answer(question: str, lead: str) -> None:
    vectors = {("doc#3", 0): unit(1, 0), ("doc#3", 1): unit(0.6, 0.8)}
    asked = Question(words=set(), own=set(), asked=asked_for(question), text=question)
    found = Evidence([RankedPassage(FRAMED, 1.0)], vectors, {})
    claims = select(unit(1, 0), asked, found, ComposeSettings(points=0)).claims
    assert claims[0].text.startswith(lead)
