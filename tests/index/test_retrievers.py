import threading
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ValidationError

from bot.content.chunking import chunk_document
from bot.content.corpus import article_paths, load_document
from bot.content.documents import Chunk
from bot.engine.engine import RETRIEVER_WEIGHTS
from bot.index import PassageTable, View, quotable_sentences, sentence_id
from bot.index.fusion import linear_fusion
from bot.index.lexical import LexicalIndex
from bot.index.records import encode_passage, sentence_record
from bot.index.retrievers import DenseRetriever, HybridRetriever, LexicalRetriever, SentenceRetriever
from bot.index.store import ChromaStore
from tests.conftest import CORPUS
from tests.fakes import HashEmbeddings, InMemoryStore

# -- a hybrid retriever over the real corpus, with fakes for the model and the vector store ------------------


@pytest.fixture(scope="module")
def fake_hybrid(tmp_path_factory: pytest.TempPathFactory) -> HybridRetriever:
    """The engine's retrievers over the corpus's passages: hashed bag-of-words vectors in memory, real BM25."""
    chunks = [c for path in article_paths(CORPUS) for c in chunk_document(load_document(path, CORPUS))]
    embeddings = HashEmbeddings()
    text, sentences = InMemoryStore(), InMemoryStore()
    text.upsert([c.chunk_id for c in chunks], embeddings.embed_documents([c.plain_text for c in chunks]),
                [c.plain_text for c in chunks], [encode_passage(c) for c in chunks])  # fmt: skip
    rows = [
        (sentence_id(c.chunk_id, at), c.sentence_text(s), c.chunk_id) for c in chunks for at, s in quotable_sentences(c)
    ]
    sentences.upsert([sid for sid, _, _ in rows], embeddings.embed_documents([t for _, t, _ in rows]),
                     [t for _, t, _ in rows], [sentence_record(c) for _, _, c in rows])  # fmt: skip
    lexical = LexicalIndex(tmp_path_factory.mktemp("lexical"))
    lexical.update(remove=[], add=[(c.chunk_id, c.headed_text) for c in chunks])
    return HybridRetriever(
        retrievers={
            View.text: DenseRetriever(store=text, embeddings=embeddings, k=20),
            View.sentences: SentenceRetriever(store=sentences, embeddings=embeddings, k=20),
            View.lexical: LexicalRetriever(index=lexical, k=20),
        },
        passages=PassageTable([c.chunk_id for c in chunks], text),
        weights=RETRIEVER_WEIGHTS,
        k=10,
    )


@pytest.fixture(params=[pytest.param("real", marks=pytest.mark.integration), "fake"])
def hybrid(request) -> HybridRetriever:
    """The engine's hybrid retriever (real model and Chroma), or the same one over fakes."""
    if request.param == "real":
        return request.getfixturevalue("engine").versions.current.retriever
    return request.getfixturevalue("fake_hybrid")


# -- one contract for every retriever -------------------------------------------------------------

RETRIEVERS = [View.text, View.sentences, View.lexical, "hybrid"]


def retriever(hybrid: HybridRetriever, name: View | str) -> BaseRetriever:
    return hybrid if name == "hybrid" else hybrid.retrievers[View(name)]


@pytest.mark.parametrize("name", RETRIEVERS)
def test_retriever_contract(hybrid: HybridRetriever, name) -> None:
    found = retriever(hybrid, name).invoke("where should my feet go on the leg press platform")
    assert 0 < len(found) <= retriever(hybrid, name).k
    ids = [doc.id for doc in found]
    assert len(set(ids)) == len(ids) and all(i in hybrid.passages for i in ids)
    scores = [doc.metadata["score"] for doc in found]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("name", RETRIEVERS)
def test_retriever_respects_k(hybrid: HybridRetriever, name) -> None:
    narrowed = retriever(hybrid, name).model_copy(update={"k": 2})
    assert len(narrowed.invoke("knee pain")) <= 2


def test_hybrid_returns_each_passage_with_its_text(hybrid: HybridRetriever) -> None:
    found = hybrid.invoke("where should my feet go on the leg press platform")
    assert found and all(doc.page_content == hybrid.passages[doc.id].text for doc in found)


def test_hybrid_exposes_each_retrievers_score(hybrid: HybridRetriever) -> None:
    [best, *_] = hybrid.invoke("how many reps for hypertrophy")
    assert {"text_score", "sentences_score", "lexical_score"} <= best.metadata.keys()
    assert {view.score_key for view in View} == {"text_score", "sentences_score", "lexical_score"}


class FixedRetriever(BaseRetriever):
    ranking: list[tuple[str, float]]

    def _get_relevant_documents(self, query: str, *, run_manager) -> list[Document]:
        return [Document(id=item, page_content="", metadata={"score": score}) for item, score in self.ranking]


def test_hybrid_skips_passages_the_served_version_does_not_list_before_cutting_to_k(hybrid) -> None:
    first, second = list(hybrid.passages)[:2]
    ranking = [("written-by-a-newer-build", 0.9), (first, 0.8), (second, 0.7)]
    narrowed = hybrid.model_copy(update={"retrievers": {View.text: FixedRetriever(ranking=ranking)}, "k": 2})
    assert [doc.id for doc in narrowed.invoke("anything")] == [first, second]


class WaitingRetriever(BaseRetriever):
    meeting: Any

    def _get_relevant_documents(self, query: str, *, run_manager) -> list[Document]:
        self.meeting.wait()  # breaks (raises) unless the other retriever is running at the same time
        return []


def test_hybrid_runs_its_retrievers_side_by_side(fake_hybrid: HybridRetriever) -> None:
    meeting = threading.Barrier(2, timeout=5)
    both = {view: WaitingRetriever(meeting=meeting) for view in (View.text, View.lexical)}
    assert fake_hybrid.model_copy(update={"retrievers": both}).invoke("knee pain") == []


class RecordingCollection:
    def __init__(self, collection) -> None:
        self.collection = collection
        self.includes: list[list[str]] = []

    def query(self, **kwargs):
        self.includes.append(kwargs["include"])
        return self.collection.query(**kwargs)


@pytest.mark.integration
@pytest.mark.parametrize("view", [View.text, View.sentences])
def test_vector_retrievers_ask_the_store_for_ids_and_distances_only(engine, view: View) -> None:
    store = engine.index.stores[view]
    assert isinstance(store, ChromaStore)
    recording = RecordingCollection(store.collection)
    retriever(engine.versions.current.retriever, view).model_copy(update={"store": ChromaStore(recording)}).invoke(
        "knee pain"
    )
    assert recording.includes == [["distances"]]  # documents and metadata tripled a query's cost at 40k passages


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


# -- the hybrid retriever on its own: fixed rankings, plain passages, no store and no model ------------------


def chunk(chunk_id: str) -> Chunk:
    return Chunk(chunk_id=chunk_id, doc_id="doc", title="T", section=(), text=f"text of {chunk_id}", start=0, end=10)


RANKINGS = {
    View.text: [("a", 0.62), ("b", 0.60), ("c", 0.41)],
    View.sentences: [("b", 0.70), ("a", 0.55)],
    View.lexical: [("c", 9.0), ("b", 3.0)],
}


def fixed_hybrid(passages, k: int = 5) -> HybridRetriever:
    retrievers = {view: FixedRetriever(ranking=ranking) for view, ranking in RANKINGS.items()}
    return HybridRetriever(retrievers=retrievers, passages=passages, weights=RETRIEVER_WEIGHTS, k=k)


def test_hybrid_ranks_by_the_weighted_fusion_of_its_retrievers_with_bm25_normalised() -> None:
    found = fixed_hybrid({i: chunk(i) for i in "abc"}).invoke("anything")
    expected = linear_fusion(RANKINGS, weights=RETRIEVER_WEIGHTS, normalize=frozenset({View.lexical}))
    assert [(doc.id, doc.metadata["score"]) for doc in found] == expected
    # b: 0.60 + 0.4 * 0.70 + 0.25 * 3/9 beats a: 0.62 + 0.4 * 0.55 + 0 and c: 0.41 + 0.4 * 0.55 + 0.25
    assert [doc.id for doc in found] == ["b", "c", "a"]
    assert found[0].metadata == pytest.approx(
        {"score": 0.60 + 0.4 * 0.70 + 0.25 / 3, "text_score": 0.60, "sentences_score": 0.70, "lexical_score": 3.0}
    )
    assert "lexical_score" not in found[2].metadata  # a retriever that did not find it reports no score


def test_hybrid_takes_any_mapping_of_passages() -> None:
    found = fixed_hybrid({"a": chunk("a"), "c": chunk("c")}, k=2).invoke("anything")
    assert [(doc.id, doc.page_content) for doc in found] == [("c", "text of c"), ("a", "text of a")]


class FetchingPassages(dict):
    """A mapping with ``fetch``, as the index's passage table: the hybrid retriever reads it in one call."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.fetched: list[list[str]] = []

    def fetch(self, ids) -> dict[str, Chunk]:
        ids = list(ids)
        self.fetched.append(ids)
        return {i: dict.__getitem__(self, i) for i in ids}

    def __getitem__(self, key):
        raise AssertionError("looked up one by one")


def test_hybrid_reads_passages_with_one_fetch_when_the_mapping_has_one() -> None:
    passages = FetchingPassages({i: chunk(i) for i in "abc"})
    assert [doc.id for doc in fixed_hybrid(passages, k=2).invoke("anything")] == ["b", "c"]
    assert passages.fetched == [["b", "c"]]


def test_hybrid_reads_a_passage_table_in_one_store_round_trip() -> None:
    store = InMemoryStore()
    store.upsert(["a", "b", "c"], [[1.0, 0.0]] * 3, ["", "", ""], [encode_passage(chunk(i)) for i in "abc"])
    found = fixed_hybrid(PassageTable(["a", "b", "c"], store)).invoke("anything")
    assert [doc.page_content for doc in found] == ["text of b", "text of c", "text of a"]
    assert store.reads == [["b", "c", "a"]]


def test_the_sentence_retriever_ranks_each_chunk_by_its_best_sentence() -> None:
    store, embeddings = InMemoryStore(), HashEmbeddings()
    texts = {"p/0": "knee pain on the sled", "p/1": "knee pain", "q/0": "foot placement", "q/3": "knee"}
    store.upsert(list(texts), embeddings.embed_documents(list(texts.values())), list(texts.values()),
                 [{"chunk_id": sid.split("/")[0]} for sid in texts])  # fmt: skip
    found = SentenceRetriever(store=store, embeddings=embeddings, k=5, sentences=4).invoke("knee pain")
    assert [(doc.id, doc.metadata["sentence_id"]) for doc in found] == [("p", "p/1"), ("q", "q/3")]
    assert found[0].metadata["score"] == pytest.approx(1.0)
    assert len(SentenceRetriever(store=store, embeddings=embeddings, k=1).invoke("knee pain")) == 1


@pytest.mark.parametrize(
    "update",
    [
        {"k": 0},  # at least one passage
        {"retrievers": {"dense": FixedRetriever(ranking=[])}},  # retrievers are named by their view
        {"weights": {"bm25": 1.0}},  # and so are their weights
    ],
)
def test_the_hybrid_retriever_refuses_bad_settings_when_made(update: dict) -> None:
    settings = {"retrievers": {}, "passages": {}, "k": 5, **update}
    with pytest.raises(ValidationError):
        HybridRetriever(**settings)


def test_a_vector_retriever_refuses_what_is_not_a_vector_store() -> None:
    with pytest.raises(ValidationError):
        DenseRetriever(store=object(), embeddings=HashEmbeddings())
    assert DenseRetriever(store=InMemoryStore(), embeddings=HashEmbeddings()).k == 20


@pytest.mark.parametrize("question", ["Where should my feet go?", "knee pain after the sled", "how deep"])
def test_the_answer_paths_search_finds_what_invoke_finds(hybrid: HybridRetriever, question: str) -> None:
    found = hybrid.search(question)
    docs = hybrid.invoke(question)
    assert [(chunk_id, score) for chunk_id, score, _ in found] == [(d.id, d.metadata["score"]) for d in docs]
    assert [own for _, _, own in found] == [{k: v for k, v in d.metadata.items() if k != "score"} for d in docs]


def test_the_answer_paths_search_takes_any_retriever() -> None:
    passages = {i: chunk(i) for i in ("a", "b", "c")}
    retrievers = {view: FixedRetriever(ranking=[("c", 0.9), ("a", 0.5)]) for view in (View.text, View.sentences)}
    retrievers[View.lexical] = FixedRetriever(ranking=[("b", 3.0)])
    hybrid = HybridRetriever(retrievers=retrievers, passages=passages, weights=RETRIEVER_WEIGHTS, k=3)
    assert [chunk_id for chunk_id, _, _ in hybrid.search("q")] == [d.id for d in hybrid.invoke("q")]
