import threading
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from bot.index.retrievers import linear_fusion, reciprocal_rank_fusion


def test_rank_fusion_rewards_agreement() -> None:
    fused = reciprocal_rank_fusion({"dense": [("a", 0.9), ("b", 0.8)], "lexical": [("b", 9.0), ("c", 5.0)]})
    assert [item for item, _ in fused] == ["b", "a", "c"]


def test_linear_fusion_normalises_unbounded_scores() -> None:
    fused = linear_fusion(
        {"dense": [("a", 0.60), ("b", 0.55)], "lexical": [("b", 12.0), ("a", 3.0)]},
        weights={"lexical": 0.5},
        normalize=frozenset({"lexical"}),
    )
    # b: 0.55 + 0.5 * 1.0 beats a: 0.60 + 0.5 * 0.25
    assert [item for item, _ in fused] == ["b", "a"]
    assert fused[0][1] == pytest.approx(1.05)


def test_linear_fusion_gives_a_missing_dense_score_the_lists_floor_and_a_missing_lexical_one_zero() -> None:
    fused = dict(
        linear_fusion({"dense": [("a", 0.7), ("b", 0.4)], "lexical": [("c", 2.0)]}, normalize=frozenset({"lexical"}))
    )
    assert fused == pytest.approx({"a": 0.7, "b": 0.4, "c": 0.4 + 1.0})


def test_fusion_breaks_ties_by_id() -> None:
    assert [i for i, _ in linear_fusion({"x": [("b", 1.0), ("a", 1.0)]})] == ["a", "b"]


# -- one contract for every retriever -------------------------------------------------------------

RETRIEVERS = ["text", "sentences", "lexical", "hybrid"]


def retriever(engine, name: str) -> BaseRetriever:
    return engine.versions.current.retriever if name == "hybrid" else engine.versions.current.retriever.retrievers[name]


@pytest.mark.integration
@pytest.mark.parametrize("name", RETRIEVERS)
def test_retriever_contract(engine, name: str) -> None:
    found = retriever(engine, name).invoke("where should my feet go on the leg press platform")
    assert 0 < len(found) <= retriever(engine, name).k
    ids = [doc.id for doc in found]
    assert len(set(ids)) == len(ids) and all(i in engine.index.chunks for i in ids)
    scores = [doc.metadata["score"] for doc in found]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.integration
@pytest.mark.parametrize("name", RETRIEVERS)
def test_retriever_respects_k(engine, name: str) -> None:
    narrowed = retriever(engine, name).model_copy(update={"k": 2})
    assert len(narrowed.invoke("knee pain")) <= 2


@pytest.mark.integration
def test_hybrid_returns_each_passage_with_its_text(engine) -> None:
    found = engine.versions.current.retriever.invoke("where should my feet go on the leg press platform")
    assert found and all(doc.page_content == engine.index.chunks[doc.id].text for doc in found)


class FixedRetriever(BaseRetriever):
    ranking: list[tuple[str, float]]

    def _get_relevant_documents(self, query: str, *, run_manager) -> list[Document]:
        return [Document(id=item, page_content="", metadata={"score": score}) for item, score in self.ranking]


@pytest.mark.integration
def test_hybrid_skips_passages_the_served_version_does_not_list_before_cutting_to_k(engine) -> None:
    first, second = list(engine.index.chunks)[:2]
    ranking = [("written-by-a-newer-build", 0.9), (first, 0.8), (second, 0.7)]
    hybrid = engine.versions.current.retriever.model_copy(
        update={"retrievers": {"text": FixedRetriever(ranking=ranking)}, "k": 2}
    )
    assert [doc.id for doc in hybrid.invoke("anything")] == [first, second]


class WaitingRetriever(BaseRetriever):
    meeting: Any

    def _get_relevant_documents(self, query: str, *, run_manager) -> list[Document]:
        self.meeting.wait()  # breaks (raises) unless the other retriever is running at the same time
        return []


@pytest.mark.integration
def test_hybrid_runs_its_retrievers_side_by_side(engine) -> None:
    meeting = threading.Barrier(2, timeout=5)
    both = {name: WaitingRetriever(meeting=meeting) for name in ("text", "lexical")}
    assert engine.versions.current.retriever.model_copy(update={"retrievers": both}).invoke("knee pain") == []


class RecordingCollection:
    def __init__(self, collection) -> None:
        self.collection = collection
        self.includes: list[list[str]] = []

    def query(self, **kwargs):
        self.includes.append(kwargs["include"])
        return self.collection.query(**kwargs)


@pytest.mark.integration
@pytest.mark.parametrize("name", ["text", "sentences"])
def test_vector_retrievers_ask_the_store_for_ids_and_distances_only(engine, name: str) -> None:
    recording = RecordingCollection(engine.index.collections[name])
    retriever(engine, name).model_copy(update={"collection": recording}).invoke("knee pain")
    assert recording.includes == [["distances"]]  # documents and metadata tripled a query's cost at 40k passages


@pytest.mark.integration
def test_hybrid_exposes_each_retrievers_score(engine) -> None:
    [best, *_] = engine.versions.current.retriever.invoke("how many reps for hypertrophy")
    assert {"text_score", "sentences_score", "lexical_score"} <= best.metadata.keys()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("question", "article_text"),
    [
        ("is the sled bad for my knees?", "leg press"),
        ("should I lock out at the top?", "do not lock your knees at the top"),
        ("what do my thigh muscles do?", "Quadriceps muscles"),
        ("why does my kneecap hurt?", "knee cap"),
    ],
)
def test_gym_words_find_the_articles_words(engine, question: str, article_text: str) -> None:
    top = engine.ask(question).passages[:3]
    assert any(article_text in passage.text for passage in top)
