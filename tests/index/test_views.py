from bot.index import VECTOR_VIEWS, View
from bot.index.store import collection_names
from bot.settings import Settings


def test_the_views_and_the_names_they_stand_for() -> None:
    assert [view.value for view in View] == ["text", "sentences", "lexical"]
    assert list(VECTOR_VIEWS) == [View.text, View.sentences]  # BM25 is not in the vector store
    assert [view.score_key for view in View] == ["text_score", "sentences_score", "lexical_score"]
    assert list(collection_names(Settings()).values()) == ["knee-text", "knee-sentences"]  # as on disk


def test_a_view_is_its_name_as_a_string() -> None:
    # keys written as plain strings (JSON, an older caller) find the view's entry
    weights = {View.text: 1.0, View.lexical: 0.25}
    assert weights["text"] == 1.0 and View("lexical") is View.lexical and View.sentences == "sentences"
