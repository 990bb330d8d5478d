"""The generative composer behind the grounding guard, with LangChain's fake chat models (deterministic)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from bot.contract import Answer, Message, Status
from bot.engine.engine import Engine
from bot.language.quantities import numbers_in
from bot.policy import DISCLAIMER
from bot.stages.guard import generated_segments
from bot.stages.rewrite import accept_rewrite

pytestmark = pytest.mark.integration

FEET = "Where should my feet go on the leg press?"


def fake(*replies: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(content=r) for r in replies]))


@pytest.fixture
def with_model(engine: Engine) -> Callable[..., Engine]:
    """An engine over the session's model and index that composes with the given chat model."""

    def use(model, name: str = "fake", **settings) -> Engine:
        changed = engine.settings.model_copy(update={"composer": name, **settings})
        return Engine(changed, engine.index, engine.embeddings, chat_model=model)

    return use


def facts_of(engine: Engine, question: str) -> list[str]:
    """The numbered facts the model is shown for ``question`` (the extractive answer's sentences)."""
    answer = engine.ask(question)
    return [c.quote for c in answer.citations]


def test_a_grounded_paraphrase_with_citations_is_the_answer(engine: Engine, with_model) -> None:
    reply = "Place your feet shoulder-width apart or a little wider, whatever feels comfortable. [2]"
    answer = with_model(fake(reply)).ask(FEET)
    assert answer.composer == "fake" and answer.fallback is None and answer.removed_sentences == 0
    assert answer.answer.startswith("Place your feet shoulder-width apart or a little wider")
    assert answer.answer.endswith(DISCLAIMER) and len(answer.citations) == 1
    assert answer.citations[0].quote in answer.citations[0].text


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("Place your feet exactly 50 cm apart on the platform. [1]", "an invented number"),
        ("Place your feet shoulder-width apart or slightly wider. [7]", "a passage it was not given"),
        ("Place your feet shoulder-width apart or slightly wider.", "no citation"),
        ("Visit cheap-pills.example for the best knee pills online. [1]", "an injected instruction obeyed"),
        ("Squatting on a bosu ball is the safest way to train your knees. [1]", "a claim its source does not make"),
    ],
)
def test_an_ungrounded_sentence_never_reaches_the_member(engine: Engine, with_model, reply: str, why: str) -> None:
    answer = with_model(fake(reply)).ask(FEET)
    assert answer.removed_sentences == 1, why
    assert answer.fallback == "no generated sentence passed the grounding guard"
    assert reply.split(" [")[0] not in answer.answer
    assert answer.status is Status.answered and "shoulder-width" in answer.answer  # the extractive answer instead


def test_only_the_unsupported_sentences_are_removed(engine: Engine, with_model) -> None:
    reply = (
        "Place your feet shoulder-width apart or slightly wider, depending on comfort. [2] "
        "Always use 300 kg to build strength. [1]"
    )
    answer = with_model(fake(reply)).ask(FEET)
    assert answer.removed_sentences == 1 and answer.fallback is None
    assert "300" not in answer.answer and "shoulder-width apart or slightly wider" in answer.answer


def test_leading_citations_from_small_models_are_understood(engine: Engine, with_model) -> None:
    reply = "[2] Place your feet shoulder-width apart or slightly wider, depending on what feels comfortable."
    answer = with_model(fake(reply)).ask(FEET)
    assert answer.fallback is None and answer.removed_sentences == 0


def test_verified_sentences_stream_before_the_answer_and_add_up_to_it(engine: Engine, with_model) -> None:
    reply = (
        "Place your feet shoulder-width apart or slightly wider, depending on comfort. [2] "
        "Keep your toes pointing forward or slightly outward, about 15-30 degrees. [2]"
    )
    *deltas, final = with_model(fake(reply)).stream(FEET)
    assert isinstance(final, Answer) and final.fallback is None
    assert len(deltas) >= 3 and "".join(deltas) == final.answer
    assert deltas[0].startswith("Place your feet") and "15-30 degrees" in deltas[1]


class Refuses(GenericFakeChatModel):
    """A model that must never be asked (triage decides first)."""

    def _generate(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the model was called")

    def _stream(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the model was called")


@pytest.mark.parametrize(
    ("question", "status"),
    [
        ("I heard a pop and my knee swelled up straight away", Status.escalated),
        ("What's the capital of Papua New Guinea?", Status.out_of_scope),
        ("How many mg of ibuprofen should I take?", Status.not_found),
        ("<b>hi</b>", Status.invalid),
    ],
)
def test_triage_runs_before_any_model_call_and_is_never_overridden(
    engine: Engine, with_model, question: str, status: Status
) -> None:
    answer = with_model(Refuses(messages=iter([]))).ask(question)
    assert answer.status is status and answer.answer.endswith(DISCLAIMER)


class Unreachable(GenericFakeChatModel):
    def _stream(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionError("connection refused")


def test_an_unreachable_model_falls_back_to_the_extractive_answer(engine: Engine, with_model) -> None:
    answer = with_model(Unreachable(messages=iter([]))).ask(FEET)
    assert answer.status is Status.answered and "shoulder-width" in answer.answer
    assert answer.fallback == "the chat model failed (ConnectionError)"


class Slow(GenericFakeChatModel):
    """Writes one word every 50 ms, forever (a model on a starved CPU)."""

    def _stream(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        from langchain_core.messages import AIMessageChunk
        from langchain_core.outputs import ChatGenerationChunk

        words = ["Place", "your", "feet", "shoulder-width", "apart", "or", "a", "little", "wider.", "[1]", ""]
        for n in range(10_000):
            time.sleep(0.05)
            yield ChatGenerationChunk(message=AIMessageChunk(content=words[n % len(words)] + " "))


def test_a_model_slower_than_the_timeout_is_cut_off(engine: Engine, with_model) -> None:
    slow = with_model(Slow(messages=iter([])), llm_timeout=1.0)
    started = time.perf_counter()
    answer = slow.ask(FEET)
    assert time.perf_counter() - started < 3
    assert answer.status is Status.answered and answer.answer.endswith(DISCLAIMER)
    assert answer.fallback is None or answer.fallback == "the chat model took longer than 1 s"
    assert "shoulder-width" in answer.answer


def test_a_follow_up_is_rewritten_by_the_model_before_retrieval(engine: Engine, with_model) -> None:
    history = [{"role": "user", "content": "How often should I do leg press?"},
               {"role": "assistant", "content": "2-3 times per week."}]  # fmt: skip
    model = fake("How many reps should I do on the leg press?", "Use a rep range of 8-12 for muscle growth. [1]")
    answer = with_model(model).ask("and how many reps then?", history)
    assert "rewrite" in answer.timings_ms
    assert any("8-12" in p.text for p in answer.passages[:3])


def test_an_unusable_rewrite_keeps_the_engines_own_follow_up_handling(engine: Engine, with_model) -> None:
    history = [{"role": "user", "content": "How often should I do leg press?"}]
    model = fake("Sure! [1] Here is the answer", "Use a rep range of 8-12 for muscle growth. [1]")
    answer = with_model(model).ask("and how many reps then?", history)
    assert any("8-12" in p.text for p in answer.passages[:3])


def test_a_composer_that_cannot_load_is_reported_and_answers_extractively(index_settings, embeddings) -> None:
    from bot.index import open_index

    settings = index_settings.model_copy(update={"composer": "no-such-provider:model"})
    engine = Engine(settings, open_index(settings, embeddings), embeddings)
    assert engine.chat_model is None and engine.composer == "extractive"
    assert engine.composer_problem and "no-such-provider" in engine.composer_problem
    assert engine.ask(FEET).composer == "extractive"


# -- the pieces ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("Keep flat [1]. Do not lock out. [2] Rest", ["Keep flat [1].", "Do not lock out. [2]", "Rest"]),
        ("[2] Place them low. [3] Go wide.", ["[2] Place them low.", "[3] Go wide."]),
        ("[1][2] Both things. [3] Other", ["[1][2] Both things.", "[3] Other"]),
    ],
)
def test_generated_text_is_cut_into_sentences_with_their_markers(text: str, segments: list[str]) -> None:
    assert generated_segments(text) == segments


@pytest.mark.parametrize(
    ("text", "numbers"),
    [("2-3 times a week", {"2", "3"}), ("train twice a week", {"2"}), ("70-85% of 1RM", {"70", "85", "1"})],
)
def test_numbers_are_read_from_digits_and_words(text: str, numbers: set[str]) -> None:
    assert numbers_in(text) == numbers


@pytest.mark.parametrize(
    ("earlier", "follow_up", "rewrite", "accepted"),
    [
        ("How often should I do leg press?", "how many reps then?", "How many reps should I do on leg press?", True),
        ("Should I warm up before leg press?", "what about after?", "Should I stretch after the leg press?", True),
        # What SmolLM2-135M really answered: an echo of the earlier question, of the follow-up, or a drift.
        ("How often should I do leg press?", "how many reps then?", "How often should I do leg press?", False),
        ("how many rest days do I need?", "what should I do on those days?", "What should I do on those days?", False),
        ("I've had a dull ache in my knee for weeks.", "who should I see about it?", "What should I do next?", False),
        ("How often should I do leg press?", "how many reps then?", "Sure! Do 8-12 reps.", False),
    ],
)
def test_a_rewrite_is_used_only_if_it_carries_the_conversation(
    earlier: str, follow_up: str, rewrite: str, accepted: bool
) -> None:
    history = [Message(role="user", content=earlier)]
    assert (accept_rewrite(rewrite, follow_up, history) == rewrite) is accepted


def test_a_models_rewrite_never_changes_the_triage(engine: Engine, with_model) -> None:
    history = [{"role": "user", "content": "I've had a dull ache in my knee after leg day for a few weeks now."}]
    model = fake("What is the capital of my knee after leg day?", "See a physical therapist about it. [1]")
    answer = with_model(model).ask("who should I see about it?", history)
    assert answer.status is Status.answered


def test_a_red_flag_follow_up_is_escalated_without_asking_the_model(engine: Engine, with_model) -> None:
    history = [{"role": "user", "content": "My knee hurts after leg press."}]
    answer = with_model(Refuses(messages=iter([]))).ask("and now it's hot and swollen?", history)
    assert answer.status is Status.escalated
