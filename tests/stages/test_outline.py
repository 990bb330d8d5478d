"""Overviews: a question asking for a list is answered with the article's own outline, one line per item."""

from __future__ import annotations

from bot.content.chunking import chunk_document
from bot.content.documents import Article
from bot.language.questions import asked_for
from bot.language.words import content_words
from bot.stages.compose.candidates import GENERIC_WORDS, Question, lemma_words, lemmas
from bot.stages.compose.outline import outline, wants_outline
from bot.stages.query import substantive_words
from bot.stages.state import RankedPassage

ARTICLE = Article(
    doc_id="gym",
    title="Rowing Without Back Pain",
    text="""# Rowing Without Back Pain

## Common Causes of Back Pain from Rowing

### Rounding the Back

Rowing with a rounded back puts excessive stress on the spinal discs. Keep a neutral spine instead.

### Pulling Too Hard Causes Back Pain After Rowing

Understanding this mistake can help prevent long-term damage and ensure safe workouts.
Pulling with the arms before the legs shifts the load onto the lower back.

## Best Alternative Exercises

If rowing continues to cause pain, consider alternative movements like:

- Cycling on a stationary bike
- Swimming laps
- Walking on an incline

## Final Thoughts

Your back will thank you.
""",
)
CHUNKS = chunk_document(ARTICLE, 450)


def question(text: str) -> Question:
    """The question as the composer sees it: the article's title is its subject."""
    generic = frozenset(GENERIC_WORDS | lemma_words(ARTICLE.title))
    own = lemmas(substantive_words(text))
    return Question(words=lemmas(content_words(text)), own=own, asked=asked_for(text), text=text, generic=generic)


def ranked(*sections: str) -> list[RankedPassage]:
    return [RankedPassage(c, 1.0) for c in CHUNKS if c.section and c.section[0] in sections]


def chunks_of(doc_id: str) -> list:
    return CHUNKS


def test_a_general_why_is_answered_with_every_cause_under_its_heading_in_the_articles_order() -> None:
    lines = outline(
        question("why does my back hurt after rowing?"), ranked("Common Causes of Back Pain from Rowing"), chunks_of
    )
    assert [c.label for c in lines] == ["Rounding the Back", "Pulling Too Hard"]  # "… Causes Back Pain …" trimmed
    assert lines[0].text.startswith("Rowing with a rounded back puts excessive stress")
    # the framing sentence is skipped for the one that says the cause
    assert lines[1].text.startswith("Pulling with the arms before the legs shifts the load")


def test_a_list_question_is_answered_with_the_lists_items() -> None:
    lines = outline(question("what are some alternative exercises?"), ranked("Best Alternative Exercises"), chunks_of)
    assert [c.text for c in lines] == ["Cycling on a stationary bike", "Swimming laps", "Walking on an incline"]
    for claim in lines:  # each line is a verbatim span of its passage
        [support] = claim.support
        chunk = next(c for c in CHUNKS if c.chunk_id == support.chunk_id)
        assert chunk.text[support.start - chunk.start : support.end - chunk.start] == claim.text


def test_a_specific_question_gets_no_overview() -> None:
    assert not wants_outline(question("why does rounding my back hurt when I row?"))
    assert (
        outline(question("how often should I row?"), ranked("Common Causes of Back Pain from Rowing"), chunks_of) == ()
    )


def test_a_follow_up_why_is_about_the_turn_it_follows() -> None:
    asked = question("why not?")
    follow_up = Question(
        words=asked.words, own=asked.own, asked=asked.asked, text=asked.text, follow_up=True, generic=asked.generic
    )
    assert not wants_outline(follow_up)
