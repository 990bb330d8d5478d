import pytest

from bot.language.discourse import answers_kind, is_framing
from bot.language.questions import Asked, Kind, Unit, asked_for, asked_in_continuation, states_unit


@pytest.mark.parametrize(
    ("question", "kind", "unit"),
    [
        ("How often should I do leg press?", Kind.number, Unit.frequency),
        ("how long should I rest between sessions", Kind.number, Unit.duration),
        ("how many reps per set for size?", Kind.number, Unit.repetitions),
        ("what percentage of my max should I lift", Kind.number, Unit.share),
        ("Where should my feet go on the leg press?", Kind.place, None),
        ("why do my knees hurt after leg day?", Kind.cause, None),
        ("what are some alternative exercises", Kind.listing, None),
        ("how can i prevent knee pain", Kind.listing, None),
        ("how do i stop my knees hurting on leg press", Kind.listing, None),
        ("how do i stop my knees caving in", Kind.instruction, None),  # one fix, not the ways to prevent pain
        ("how do I set up the machine?", Kind.instruction, None),
        ("is it bad to lock my knees at the top?", Kind.stance, None),
        ("what does the IT band do?", Kind.definition, None),
    ],
)
def test_the_kind_of_answer_a_question_asks_for(question: str, kind: Kind, unit: Unit | None) -> None:
    asked = asked_for(question)
    assert (asked.kind, asked.unit) == (kind, unit)


def test_by_how_much_after_a_direction_asks_for_its_angle() -> None:
    toes = asked_for("should my toes point out")
    assert asked_in_continuation("by how much?", toes) == Asked(Kind.number, Unit.angle)
    assert asked_in_continuation("by how much?", toes).strict  # then only a sentence stating degrees answers
    assert asked_in_continuation("and the heels?", toes) is None
    assert asked_in_continuation("by how much?", asked_for("how heavy should i go")) is None


def test_only_a_stated_number_answers_how_often_or_how_long() -> None:
    assert asked_for("how often should i train legs").strict
    assert states_unit("2-3 times per week is generally ideal", Unit.frequency)
    assert not states_unit("it's important to balance frequency, intensity, and recovery", Unit.frequency)
    assert states_unit("at least 48 hours of rest between sessions", Unit.duration)


@pytest.mark.parametrize(
    "sentence",
    [
        "Understanding the common causes of knee pain associated with leg press exercises can help prevent long-term "
        "damage and ensure safe, effective workouts.",
        "Here’s how to approach it:",
        "The correct foot position on the leg press is key to maximizing effectiveness and preventing injury.",
        "Your lower body muscles will thank you.",
        "However, many fitness enthusiasts experience knee pain after leg press, which can range from mild discomfort "
        "to serious injuries.",
    ],
)
def test_sentences_that_frame_rather_than_say_are_recognised(sentence: str) -> None:
    assert is_framing(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "2-3 times per week is generally ideal for most individuals.",
        "Placing your feet too low shifts pressure onto the knee joint.",
        "Start with a lighter weight to perfect your form before gradually increasing the heavy load.",
    ],
)
def test_sentences_that_say_something_are_not_framing(sentence: str) -> None:
    assert not is_framing(sentence)


def test_a_cause_an_instruction_and_a_place_each_have_their_cue() -> None:
    assert answers_kind("Placing your feet too low shifts pressure onto the knee joint.", Kind.cause)
    assert answers_kind("Keep your knees aligned with your toes throughout the movement.", Kind.instruction)
    assert answers_kind("Position your feet about shoulder-width apart in the center of the platform.", Kind.place)
    assert not answers_kind("Adequate recovery is key.", Kind.cause)
