from pathlib import Path

import pytest

from bot.content.corpus import CorpusError, corpus_fingerprint, load_corpus
from bot.settings import PROJECT_ROOT
from tests.conftest import CORPUS


def test_article_front_matter_is_read() -> None:
    [article] = load_corpus(CORPUS)
    assert article.doc_id == "leg-press-knee-pain"
    assert article.title == "Knee Pain After Leg Press"
    assert article.site == "Good Mind + Body"
    assert "no responsibility or liability" in article.disclaimer
    assert article.source


@pytest.mark.parametrize(
    "boilerplate",
    ["Author Info", "Leave a Comment", "Please read my full disclosure here", "Have you battled", "licensed Physical"],
)
def test_boilerplate_is_not_retrievable_text(boilerplate: str) -> None:
    [article] = load_corpus(CORPUS)
    assert boilerplate not in article.text


def test_section_headings_are_restored() -> None:
    [article] = load_corpus(CORPUS)
    assert "## Common Causes of Knee Pain from the Leg Press" in article.text
    assert "### Incorrect Foot Position Causing Knee Pain After Leg Press" in article.text
    assert "#### Frequency" in article.text


def test_article_wording_is_unchanged_from_the_source() -> None:
    [article] = load_corpus(CORPUS)
    seed = PROJECT_ROOT.parent / "shared" / "seed" / "leg-press-knee-pain.txt"
    if not seed.exists():
        pytest.skip("the original article is not beside this checkout")
    for sentence in (
        "Position your feet about shoulder-width apart in the center of the platform.",
        "Ensure you have at least 48 hours of rest between leg press sessions",
    ):
        assert sentence in seed.read_text(encoding="utf-8") and sentence in article.text


def test_any_number_of_markdown_files_are_loaded(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("---\ntitle: A\n---\nSquats are fine.\n", encoding="utf-8")
    (tmp_path / "gym").mkdir()
    (tmp_path / "gym" / "b.md").write_text("# Heading Title\n\nLunges too.\n", encoding="utf-8")
    (tmp_path / "README.md").write_text("not an article", encoding="utf-8")
    documents = load_corpus(tmp_path)
    assert [(d.doc_id, d.title) for d in documents] == [("a", "A"), ("gym/b", "Heading Title")]


def test_an_empty_corpus_is_an_error_naming_the_folder(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=str(tmp_path)):
        load_corpus(tmp_path)


def test_a_broken_article_is_an_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.md").write_text("---\ntitle: [unclosed\n---\ntext\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"broken\.md"):
        load_corpus(tmp_path)


def test_fingerprint_changes_only_with_content(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("Knees.\n", encoding="utf-8")
    before = corpus_fingerprint(tmp_path)
    assert corpus_fingerprint(tmp_path) == before
    (tmp_path / "a.md").write_text("Knees!\n", encoding="utf-8")
    assert corpus_fingerprint(tmp_path) != before


def test_requiring_articles_lists_them_without_parsing_and_refuses_an_empty_folder(tmp_path: Path) -> None:
    from bot.content.corpus import require_articles

    with pytest.raises(CorpusError, match="no Markdown"):
        require_articles(tmp_path)
    (tmp_path / "broken.md").write_text("---\ntitle: [unclosed\n---\ntext\n", encoding="utf-8")
    assert require_articles(tmp_path) == [tmp_path / "broken.md"]  # parsed only when the index is rebuilt
