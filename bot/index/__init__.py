"""The index: passages and sentences in a vector store, BM25 beside them, and a manifest naming the live version.

``build_index`` brings it in line with the corpus (embedding only what changed) and switches atomically;
``open_index`` checks the live version, building or repairing it first when needed; ``load_index`` opens a
given version (a running engine moves to a newer one with it). The retrievers over an index are in
``bot.index.retrievers``.
"""

from bot.index.build import BuildReport, build_index
from bot.index.manifest import IndexFiles, Manifest, read_manifest
from bot.index.open import Index, IndexUnavailable, discard_index, load_index, open_index, stale_reasons
from bot.index.records import PassageTable, chunk_of_sentence, quotable_sentences, sentence_id
from bot.index.store import VectorStore, import_client, store_description, store_reachable, store_unreachable
from bot.index.views import VECTOR_VIEWS, View

__all__ = [
    "VECTOR_VIEWS",
    "BuildReport",
    "Index",
    "IndexFiles",
    "IndexUnavailable",
    "Manifest",
    "PassageTable",
    "VectorStore",
    "View",
    "build_index",
    "chunk_of_sentence",
    "discard_index",
    "import_client",
    "load_index",
    "open_index",
    "quotable_sentences",
    "read_manifest",
    "sentence_id",
    "stale_reasons",
    "store_description",
    "store_reachable",
    "store_unreachable",
]
