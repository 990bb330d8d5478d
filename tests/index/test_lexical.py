from pathlib import Path

import pytest

from bot.index.lexical import LexicalIndex

PASSAGES = [
    ("feet", "Place your feet shoulder-width apart on the platform."),
    ("lock", "Do not lock your knees at the top of the press."),
    ("sleeves", "Knee sleeves can help keep the knee warm."),
]


@pytest.fixture
def index(tmp_path: Path) -> LexicalIndex:
    lexical = LexicalIndex(tmp_path / "lexical-v1")
    lexical.update(remove=[], add=PASSAGES)
    return lexical


def test_a_search_finds_passages_by_their_stemmed_words_best_first(index: LexicalIndex) -> None:
    found = index.search("locking my knee", 5)
    assert [chunk_id for chunk_id, _, _ in found] == ["lock", "sleeves"]  # "locking" → lock, "knee(s)" → knee
    assert found[0][2] == PASSAGES[1][1] and found[0][1] > found[1][1] > 0
    assert len(index.search("knee", 1)) == 1 and index.search("knee", 0) == []
    assert index.search("the and of", 5) == []  # stop words only


@pytest.mark.parametrize("query", ['knee AND "(', "feet:* OR [", "-knee +lock~2 ^"])
def test_any_text_is_safe_as_a_query(index: LexicalIndex, query: str) -> None:
    assert isinstance(index.search(query, 5), list)


def test_an_update_removes_and_adds_in_one_commit_and_redoing_it_changes_nothing(index: LexicalIndex) -> None:
    index.update(remove=["feet"], add=[("calves", "Calf raises on the leg press.")])
    assert len(index) == 3 and index.search("feet", 5) == []
    index.update(remove=[], add=[("calves", "Calf raises on the leg press.")])  # a killed build redone
    assert len(index) == 3 and [c for c, _, _ in index.search("calf", 5)] == ["calves"]


def test_a_copy_is_updated_without_touching_the_original(index: LexicalIndex, tmp_path: Path) -> None:
    copy = LexicalIndex.copy(index.folder, tmp_path / "lexical-v2")
    copy.update(remove=["sleeves"], add=[])
    assert len(copy) == 2 and len(LexicalIndex(index.folder)) == 3


def test_idf_weighs_rarer_words_higher_and_skips_unknown_ones(index: LexicalIndex) -> None:
    weights = index.idf(["knee", "platform", "unheard"])
    assert set(weights) == {"knee", "platform"} and weights["platform"] > weights["knee"] > 0
