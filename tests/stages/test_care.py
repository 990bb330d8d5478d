"""An escalation's guidance: only the articles' advice to have the knee seen to, never training tips."""

from __future__ import annotations

from bot.content.chunking import chunk_document
from bot.content.documents import Article
from bot.stages.compose.care import care_guidance
from bot.stages.state import RankedPassage

ARTICLE = Article(
    doc_id="gym",
    title="Rowing Without Back Pain",
    text="""# Rowing Without Back Pain

## Technique

Keep a neutral spine. If pain persists, ask a physical therapist to check your form.

## Seek Physical Therapy if Needed

Understanding your pain can help prevent long-term damage and ensure safe workouts.
If your back keeps hurting, a physiotherapist can design a treatment plan for you.

## Final Thoughts

Use lighter weights and row often.
""",
)
CHUNKS = chunk_document(ARTICLE, 200)


def chunks_of(doc_id: str) -> list:
    return CHUNKS


def test_guidance_quotes_the_advice_to_see_a_professional_under_such_a_heading_first() -> None:
    technique = [RankedPassage(c, 1.0) for c in CHUNKS if c.section[-1:] == ("Technique",)]
    guidance = care_guidance(technique, chunks_of)
    assert [claim.text for claim in guidance] == [
        "If your back keeps hurting, a physiotherapist can design a treatment plan for you.",
        "If pain persists, ask a physical therapist to check your form.",
    ]
    assert care_guidance(technique, chunks_of, limit=1) == guidance[:1]
    # Every quote is cited to the very text of its passage.
    by_id = {c.chunk_id: c for c in CHUNKS}
    for claim in guidance:
        (support,) = claim.support
        chunk = by_id[support.chunk_id]
        assert chunk.text[support.start - chunk.start : support.end - chunk.start] == claim.text


def test_an_article_that_never_names_a_professional_gives_no_guidance() -> None:
    article = Article(doc_id="tips", title="Rowing Tips", text="# Rowing Tips\n\nUse lighter weights. Row often.\n")
    chunks = chunk_document(article, 200)
    assert care_guidance([RankedPassage(chunks[0], 1.0)], lambda doc_id: chunks) == ()
