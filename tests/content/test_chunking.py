import re

import pytest

from bot.content.chunking import chunk_document, split_sentences
from bot.content.corpus import load_corpus
from bot.content.documents import Article
from tests.conftest import CORPUS


@pytest.fixture(scope="module")
def article() -> Article:
    return load_corpus(CORPUS)[0]


@pytest.fixture(scope="module")
def chunks(article: Article):
    return chunk_document(article, 450)


def test_every_chunk_is_the_exact_source_span_it_claims(article, chunks) -> None:
    for chunk in chunks:
        assert article.text[chunk.start : chunk.end] == chunk.text


def test_chunks_respect_the_size_limit(chunks) -> None:
    assert max(len(c.text) for c in chunks) <= 450


def test_chunks_cover_the_whole_body_except_headings(article, chunks) -> None:
    covered = [False] * len(article.text)
    for chunk in chunks:
        covered[chunk.start : chunk.end] = [True] * (chunk.end - chunk.start)
    offset = 0
    for line in article.text.splitlines(keepends=True):
        if not line.startswith("#"):
            assert all(covered[offset + i] for i, ch in enumerate(line) if not ch.isspace()), line
        offset += len(line)


def test_no_sentence_is_cut(article, chunks) -> None:
    sentences = split_sentences(article.text.replace("\n", " "))
    flat = article.text.replace("\n", " ")
    for sentence in sentences:
        text = flat[sentence.start : sentence.end]
        if text.startswith("#") or "- " in text:
            continue  # headings and lists are checked by structure, not prose segmentation
        assert any(text in c.text.replace("\n", " ") for c in chunks), text


def test_a_chunk_never_crosses_a_heading(chunks) -> None:
    assert not any(re.search(r"^#", c.text, re.MULTILINE) for c in chunks)


def test_section_paths_follow_the_heading_levels(chunks) -> None:
    sections = {c.section for c in chunks}
    assert (
        "Common Causes of Knee Pain from the Leg Press",
        "Lack of Recovery and Overuse Injuries",
        "Frequency",
    ) in sections
    assert ("How to Prevent Knee Pain from Leg Press", "Wear Knee Sleeves for Support") in sections
    assert () in sections  # the introduction, before the first heading


def test_a_list_stays_with_its_lead_in(chunks) -> None:
    [chunk] = [c for c in chunks if "Key muscle groups involved" in c.text]
    assert "- Glutes: Help with overall muscle strength and balance." in chunk.text


def test_a_long_list_is_split_between_items_and_keeps_its_lead_in_as_context(chunks) -> None:
    parts = [c for c in chunks if "Here’s how to do it correctly" in c.text + c.context]
    assert len(parts) > 1
    assert all(c.context.startswith("Here’s how to do it correctly") for c in parts[1:])
    assert all(not c.text.startswith("  -") for c in parts)  # never a nested item without its label


def test_lead_ins_and_labels_are_not_quotable(chunks) -> None:
    for chunk in chunks:
        for sentence in chunk.sentences:
            text = chunk.sentence_text(sentence)
            if text.endswith(":") or text.startswith("**"):
                assert not sentence.quotable, text


def test_a_list_of_fragments_is_quotable_only_as_a_whole(chunks) -> None:
    [chunk] = [c for c in chunks if "- deadlifts" in c.text]
    quotable = [chunk.sentence_text(s) for s in chunk.sentences if s.quotable]
    assert len(quotable) == 1 and quotable[0].startswith("If leg presses continue") and "deadlifts" in quotable[0]


def test_ids_are_stable_and_unique(article) -> None:
    first, second = chunk_document(article), chunk_document(article)
    assert [c.chunk_id for c in first] == [c.chunk_id for c in second]
    assert len({c.chunk_id for c in first}) == len(first)


def test_ids_survive_an_edit_elsewhere_in_the_document(article) -> None:
    before = {c.text: c.chunk_id for c in chunk_document(article)}
    edited = Article(doc_id=article.doc_id, title=article.title, text="Intro sentence added.\n\n" + article.text)
    after = {c.text: c.chunk_id for c in chunk_document(edited)}
    unchanged = [text for text in before if text in after]
    assert len(unchanged) >= len(before) - 2
    assert all(before[text] == after[text] for text in unchanged)


def test_a_single_overlong_sentence_becomes_its_own_chunk() -> None:
    long_sentence = "Knees " + "really " * 120 + "hurt."
    document = Article(doc_id="d", title="T", text=f"## S\n\nShort one. {long_sentence} Another short one.")
    chunks = chunk_document(document, 200)
    assert any(c.text == long_sentence for c in chunks)
