import numpy as np
import pytest

from bot.stages.compose.coverage import compared_terms, makes_comparison, saliences, unknown_words


def test_a_comparison_the_articles_never_weigh_is_not_answered_by_a_sentence_naming_one_side() -> None:
    terms = compared_terms("Is leg press or squat better for bad knees?")
    assert terms is not None
    sentence = "Incorporate alternative exercises like leg extensions, hack squats, and seated leg press."
    assert not makes_comparison(terms, [sentence])


def test_a_comparison_is_answered_by_a_sentence_that_weighs_one_of_the_two() -> None:
    terms = compared_terms("narrow stance or wide stance, which is easier on the knees?")
    assert terms is not None
    assert makes_comparison(terms, ["A wide stance or misalignment can lead to outside of the knee pain."])


def test_asking_about_two_things_without_weighing_them_is_no_comparison() -> None:
    assert compared_terms("quads vs hammies, which one straightens my leg?") is None


def test_typos_and_the_articles_own_words_are_not_unknown() -> None:
    corpus = {"feet", "platform", "while", "lock", "knee"}
    known = corpus.__contains__
    assert unknown_words("wher shoud my feet go on the platform", known, lambda word: False) == []
    assert unknown_words("can i leg press while pregnant", known, lambda word: False) == ["pregnant"]
    assert unknown_words("hit the sled", known, lambda word: word == "sled") == []  # a synonym covers it


def test_salience_is_how_far_a_word_moves_the_question() -> None:
    def embed(text: str) -> np.ndarray:  # one dimension per word: removing a word removes its dimension
        words = ["can", "i", "leg", "press", "while", "pregnant", "actually"]
        return np.array([float(w in text.split()) for w in words])

    calls: list[list[str]] = []

    def embed_many(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return np.array([embed(text) for text in texts])

    moved = saliences("can i leg press while pregnant", ["pregnant", "banana"], embed_many)
    assert moved == pytest.approx([1 - np.sqrt(5 / 6), 0.0])
    assert len(calls) == 1  # the question and both questions-without-a-word in one call of the model
