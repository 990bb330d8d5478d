from hypothesis import given
from hypothesis import strategies as st

from bot.cache import CountingLRU
from bot.content.documents import Chunk, Sentence
from bot.index import PassageTable, chunk_of_sentence, quotable_sentences, sentence_id
from bot.index.records import decode_passage, encode_passage, fetch_passages, sentence_record
from tests.fakes import InMemoryStore

sentences = st.builds(Sentence, st.integers(0, 10_000), st.integers(0, 10_000), st.booleans(), st.booleans())
chunks = st.builds(
    Chunk,
    chunk_id=st.from_regex(r"[a-z-]{1,12}#[0-9a-f]{16}", fullmatch=True),
    doc_id=st.text(min_size=1, max_size=20),
    title=st.text(max_size=40),
    section=st.lists(st.text(max_size=30), max_size=4).map(tuple),
    text=st.text(max_size=200),
    start=st.integers(0, 10_000),
    end=st.integers(0, 10_000),
    context=st.text(max_size=60),
    sentences=st.lists(sentences, max_size=5).map(tuple),
)


@given(chunks)
def test_a_passage_survives_its_record_and_the_record_holds_only_what_chroma_stores(chunk: Chunk) -> None:
    record = encode_passage(chunk)
    assert decode_passage(chunk.chunk_id, record) == chunk
    assert all(type(value) in (str, int) for value in record.values())  # Chroma metadata: scalars only


def test_the_record_format_is_the_one_on_disk() -> None:
    chunk = Chunk("doc#0123456789abcdef", "doc", "Title", ("Causes", "Form"), "Keep your feet flat.", 10, 30,
                  "Lead-in:", (Sentence(10, 30), Sentence(31, 40, False, True)))  # fmt: skip
    assert encode_passage(chunk) == {
        "doc_id": "doc",
        "title": "Title",
        "section": '["Causes", "Form"]',
        "text": "Keep your feet flat.",
        "start": 10,
        "end": 30,
        "context": "Lead-in:",
        "sentences": "[[10, 30, true, false], [31, 40, false, true]]",
    }
    assert sentence_record("doc#0123456789abcdef") == {"chunk_id": "doc#0123456789abcdef"}


@given(st.from_regex(r"[a-z/#-]{1,20}", fullmatch=True), st.integers(0, 500))
def test_a_sentence_id_names_its_chunk_and_position(chunk_id: str, position: int) -> None:
    sid = sentence_id(chunk_id, position)
    assert sid == f"{chunk_id}/{position}" and chunk_of_sentence(sid) == chunk_id


def test_only_quotable_sentences_are_listed_with_their_positions() -> None:
    chunk = Chunk("c", "d", "T", (), "x" * 30, 0, 30, sentences=(Sentence(0, 9), Sentence(10, 19, False),
                                                                 Sentence(20, 30)))  # fmt: skip
    assert [position for position, _ in quotable_sentences(chunk)] == [0, 2]


def passage(chunk_id: str) -> Chunk:
    return Chunk(chunk_id, "doc", "T", ("S",), f"text of {chunk_id}", 0, 10)


def table_store(ids: str = "abcd") -> InMemoryStore:
    store = InMemoryStore()
    store.upsert(list(ids), [[1.0, 0.0]] * len(ids), [""] * len(ids), [encode_passage(passage(i)) for i in ids])
    return store


def test_a_passage_table_lists_only_its_versions_passages() -> None:
    table = PassageTable(["b", "a", "c"], table_store())  # "d" is in the store, written by a newer build
    assert list(table) == ["b", "a", "c"] and len(table) == 3
    assert "a" in table and "d" not in table
    assert table["a"] == passage("a")
    try:
        table["d"]
    except KeyError:
        pass
    else:
        raise AssertionError("a passage of another version was served")
    assert table.fetch(["d", "c"]) == {"c": passage("c")}
    assert table.values() == [passage("b"), passage("a"), passage("c")]


def test_a_passage_table_reads_what_it_lacks_in_one_round_trip_and_remembers_it() -> None:
    store = table_store()
    table = PassageTable(["a", "b", "c"], store)
    assert list(table.fetch(["c", "a"])) == ["c", "a"]
    assert list(table.fetch(["a", "b", "c"])) == ["a", "b", "c"]
    assert store.reads == [["c", "a"], ["b"]]
    # content-addressed: a newer version's table shares the cache, and reads nothing it has
    newer = PassageTable(["a", "b", "d"], store, table.cache)
    assert list(newer.fetch(["a", "d"])) == ["a", "d"] and store.reads[-1] == ["d"]
    assert isinstance(newer.cache, CountingLRU) and newer.cache is table.cache


def test_passages_of_any_mapping_are_fetched_by_lookup_and_of_a_table_in_one_fetch() -> None:
    plain = {"a": passage("a"), "b": passage("b")}
    assert fetch_passages(plain, ["b", "zz", "a"]) == {"b": passage("b"), "a": passage("a")}
    store = table_store()
    assert list(fetch_passages(PassageTable(["a", "b"], store), ["b", "a", "c"])) == ["b", "a"]
    assert store.reads == [["b", "a"]]
