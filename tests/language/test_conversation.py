import pytest

from bot.language.conversation import Intent, intent_of


@pytest.mark.parametrize(
    ("message", "intent"),
    [
        ("hey", Intent.greeting),
        ("Hello coach!", Intent.greeting),
        ("thanks!", Intent.thanks),
        ("thank u that helped", Intent.thanks),
        ("ok thanks, bye!", Intent.thanks),  # the first social phrase wins; nothing else is said
        ("bye", Intent.goodbye),
        ("what can you do?", Intent.capabilities),
        ("help", Intent.capabilities),
        ("who are you?", Intent.identity),
        ("is this a real doctor?", Intent.identity),
        ("who wrote this?", Intent.sources),
        ("where is this info from", Intent.sources),
        ("what are your sources", Intent.sources),
        ("what sources do you use?", Intent.sources),
        ("where does this info come from?", Intent.sources),
        ("is this information reliable?", Intent.sources),  # how far to trust it is about the sources
        ("can i trust this advice?", Intent.sources),
        ("can you help me?", Intent.capabilities),
        ("hey, quick question", Intent.greeting),  # announces the question still to come
        ("tell me more", Intent.more),
        ("and?", Intent.more),
    ],
)
def test_a_message_made_only_of_conversational_phrases_is_that_turn(message: str, intent: Intent) -> None:
    assert intent_of(message) is intent


@pytest.mark.parametrize(
    "message",
    [
        "hi, why do my knees hurt?",  # a greeting with a question is a question
        "help my knee hurts",
        "what is leg press",
        "where is the center of the platform",
        "thanks but my knee still hurts after leg day",
        "can you help me with my knee pain after leg press",
        "quick question: is it bad to lock my knees?",
        "",
    ],
)
def test_a_message_that_says_anything_else_is_a_question(message: str) -> None:
    assert intent_of(message) is Intent.question
