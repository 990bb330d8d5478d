"""The answer chain: screen → retrieve → triage → compose → guard → disclaimer, as one LangChain runnable.

Each stage is a thin step over a pure function of its own module; this file only wires them and adds the
disclaimer — in ``_finish``, the one step every path goes through.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from threading import Lock, Thread
from typing import Any, cast

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessageChunk
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import ValidationError

from bot import policy
from bot.cache import CountingLRU
from bot.content.documents import Chunk
from bot.contract import Answer, Citation, Message, Passage, Status
from bot.index import (
    VECTOR_VIEWS,
    Index,
    IndexFiles,
    View,
    load_index,
    open_index,
    quotable_sentences,
    read_manifest,
    sentence_id,
)
from bot.index.retrievers import DenseRetriever, HybridRetriever, LexicalRetriever, SentenceRetriever
from bot.language.words import content_words
from bot.models.chat import (
    EXTRACTIVE,
    ComposerUnavailable,
    accept_rewrite,
    build_messages,
    load_chat_model,
    rewrite_messages,
)
from bot.settings import Settings, get_settings
from bot.stages.compose import (
    Claim,
    ComposeSettings,
    Draft,
    Evidence,
    RankedPassage,
    citation_numbers,
    escalation_intro,
    fixed_reply,
    prose_sentence,
    render,
    select_claims,
)
from bot.stages.guard import GuardSettings, check_generated_sentence, generated_segments, guard
from bot.stages.query import Query, build_query, load_synonyms
from bot.stages.triage import Verdict, classify, counted_thing, screen_input, states_count

log = logging.getLogger("bot.engine.engine")
_CANDIDATES_PER_RETRIEVER = 20
#: Passage similarity counts fully, the best sentence's similarity and BM25 (normalised to its best match)
#: less; chosen from a stable plateau on eval/sets core + conversations (see README, "Quality and speed").
RETRIEVER_WEIGHTS = {View.text: 1.0, View.sentences: 0.4, View.lexical: 0.25}


@dataclass
class Turn:
    """Everything the chain knows about one question as it moves through the stages."""

    question: str
    history: list[Message]
    started: float = field(default_factory=time.perf_counter)
    verdict: Verdict | None = None
    query: Query | None = None
    passages: list[RankedPassage] = field(default_factory=list)
    query_vector: np.ndarray | None = None
    sentence_vectors: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    draft: Draft = field(default_factory=Draft)
    timings: dict[str, float] = field(default_factory=dict)
    #: The index version this question is answered from, fixed when it arrives.
    resources: Resources | None = None
    #: Receives the reply text piece by piece as it becomes final (``Engine.stream`` listens here).
    on_delta: Callable[[str], None] | None = None
    #: Reply text already handed to ``on_delta`` before the final step (a model's verified sentences).
    streamed: str = ""
    composer: str = "extractive"
    removed_sentences: int = 0
    fallback: str | None = None

    def chunks(self) -> dict[str, Chunk]:
        """The retrieved passages by chunk id (what the guard and the renderer check claims against)."""
        return {p.chunk.chunk_id: p.chunk for p in self.passages}


class Stage(Runnable[Turn, Turn]):
    """One step of the chain: a function of the turn, timed into ``Turn.timings`` under the stage's name."""

    name: str

    def __init__(self, name: str, step: Callable[[Turn], Turn]) -> None:
        self.name = name
        self._step = step

    def invoke(self, input: Turn, config: RunnableConfig | None = None, **kwargs: Any) -> Turn:
        """Run the step on the turn."""
        started = time.perf_counter()
        turn = self._step(input)
        turn.timings[self.name] = round((time.perf_counter() - started) * 1000, 3)
        return turn


class AnswerChain(Runnable[Turn, Answer]):
    """Screen; then retrieve → triage → compose → guard, unless screening already decided the reply; then finish.

    The stages are called directly. LangChain's ``RunnableSequence`` and ``RunnableLambda`` set up callback
    managers and inspect each function's signature on every call, which on a remembered question cost
    twice the stages' own work (3.2 ms against 1.1 ms an answer). Callbacks passed in ``config`` (a
    tracer) still see the chain as one run.
    """

    name = "answer"

    def __init__(
        self, screen: Stage, passages: Sequence[Stage], screened: Sequence[Stage], finish: Callable[[Turn], Answer]
    ) -> None:
        self.screen = screen
        self.passages = tuple(passages)
        self.screened = tuple(screened)
        self.finish = finish

    def _run(self, turn: Turn) -> Answer:
        turn = self.screen.invoke(turn)
        for stage in self.screened if turn.verdict is not None else self.passages:
            turn = stage.invoke(turn)
        return self.finish(turn)

    def invoke(self, input: Turn, config: RunnableConfig | None = None, **kwargs: Any) -> Answer:
        """Answer the turn."""
        if config and config.get("callbacks"):
            return self._call_with_config(self._run, input, config)
        return self._run(input)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _chat_model(settings: Settings) -> tuple[BaseChatModel | None, str, str | None]:
    """The configured chat model, its name, and why it is not used if it can't be (then: extractive)."""
    try:
        model = load_chat_model(settings)
    except ComposerUnavailable as error:
        log.error("%s Answering extractively.", error)
        return None, EXTRACTIVE, str(error)
    return model, (settings.composer if model is not None else EXTRACTIVE), None


def answer_deltas(text: str) -> Iterator[str]:
    """The reply text in the pieces a reader sees arrive: one line (a claim, a point) at a time.

    Blank lines travel with the line before them, so the pieces concatenate to exactly ``text``.
    """
    piece = ""
    for line in text.splitlines(keepends=True):
        if piece and line.strip():
            yield piece
            piece = ""
        piece += line
    if piece:
        yield piece


def parse_history(history: Iterable[Any] | None) -> list[Message] | None:
    """Conversation turns as messages, or ``None`` when they are not in the documented form."""
    if history is None:
        return []
    try:
        return [m if isinstance(m, Message) else Message.model_validate(m) for m in history]
    except (ValidationError, TypeError):
        return None


@dataclass(frozen=True)
class Resources:
    """One version of the index with the retrievers over it; swapped whole when a newer version appears."""

    index: Index
    retriever: HybridRetriever
    #: Retrieval results by query text, valid for this version only.
    results: CountingLRU[tuple[list[RankedPassage], dict[tuple[str, int], np.ndarray]]]

    @property
    def version(self) -> int:
        """The index version these resources serve."""
        return self.index.manifest.version


class Engine:
    """Loaded resources (model, index, retrievers) and the chain that answers with them."""

    def __init__(self, settings: Settings, index: Index, embeddings: Any) -> None:
        self.settings = settings
        self.embeddings = embeddings
        self.synonyms = load_synonyms(settings.resolved_synonyms_file)
        self.compose_settings = ComposeSettings(points=settings.answer_points)
        # Content-addressed (chunk id, sentence position): never stale, so shared by every index version.
        self._sentence_words: CountingLRU[set[str]] = CountingLRU(8192)
        self._sentence_vectors: CountingLRU[np.ndarray] = CountingLRU(8192)
        self._resources = self._resources_for(index)
        self.guard_settings = GuardSettings(settings.guard_min_similarity, settings.guard_min_overlap)
        self.chat_model, self.composer, self.composer_problem = _chat_model(settings)
        self._manifest_mtime = _mtime(IndexFiles(settings.index_dir).manifest)
        self._next_version_check = 0.0
        self._swap_lock = Lock()
        self.chain = self._build_chain()

    def _resources_for(self, index: Index) -> Resources:
        candidates = _CANDIDATES_PER_RETRIEVER
        retriever = HybridRetriever(
            retrievers={
                View.text: DenseRetriever(store=index.stores[View.text], embeddings=self.embeddings, k=candidates),
                View.sentences: SentenceRetriever(
                    store=index.stores[View.sentences], embeddings=self.embeddings, k=candidates
                ),
                View.lexical: LexicalRetriever(index=index.lexical, k=candidates),
            },
            passages=index.passages,
            weights=RETRIEVER_WEIGHTS,
            # A few more than are shown or quoted: triage weighs the closest of them all.
            k=max(self.settings.top_k, self.compose_settings.depth) + 5,
        )
        return Resources(index, retriever, CountingLRU(self.settings.cache_size))

    @property
    def index(self) -> Index:
        """The index version currently served."""
        return self._resources.index

    @property
    def retriever(self) -> HybridRetriever:
        """The hybrid retriever over the current index version."""
        return self._resources.retriever

    def refresh(self, *, force: bool = False) -> bool:
        """Switch to a newer index version if a build has produced one; cheap, and throttled to once a second.

        Returns whether the served version changed. Requests in flight finish on the version they started with.
        """
        now = time.monotonic()
        if not force and now < self._next_version_check:
            return False
        self._next_version_check = now + 1.0
        files = IndexFiles(self.settings.index_dir)
        mtime = _mtime(files.manifest)
        if mtime == self._manifest_mtime and not force:
            return False
        with self._swap_lock:
            manifest = read_manifest(self.settings.index_dir)
            if manifest is None or manifest.version == self._resources.version:
                self._manifest_mtime = mtime
                return False
            index = load_index(self.settings, manifest, previous=self._resources.index)
            self._resources = self._resources_for(index)
            self._manifest_mtime = mtime
            log.info("Now serving index v%d.", manifest.version)
            return True

    @classmethod
    def load(cls, settings: Settings | None = None, *, embeddings: Any = None, show_progress: bool = False) -> Engine:
        """Load the model and open (building or refreshing if needed) the index: seconds, so do it once.

        ``embeddings``: an already loaded embedding model (the app loads it first, so that retries while the
        Chroma server is unreachable reuse it).
        """
        from bot.content.corpus import require_articles
        from bot.models.embedding import load_embeddings

        settings = settings or get_settings()
        # A missing or empty corpus fails before seconds of model loading. Articles are only parsed if the
        # index is out of date: parsing 1,000 of them at every start cost half a second.
        require_articles(settings.corpus_dir)
        if embeddings is None:
            embeddings = load_embeddings(settings.embedding_model, threads=settings.torch_threads)
        return cls(settings, open_index(settings, embeddings, show_progress=show_progress), embeddings)

    def _build_chain(self) -> AnswerChain:
        compose = Stage("compose", self._compose)
        return AnswerChain(
            screen=Stage("screen", self._screen),
            passages=[
                Stage("retrieve", self._retrieve),
                Stage("triage", self._triage),
                compose,
                Stage("guard", self._guard),
            ],
            screened=[compose],
            finish=self._finish,
        )

    # -- stages ---------------------------------------------------------------------------------

    def _screen(self, turn: Turn) -> Turn:
        if turn.verdict is None:  # a shell may already have rejected the request itself
            turn.verdict = screen_input(turn.question, max_chars=self.settings.max_question_chars)
        return turn

    def _retrieve(self, turn: Turn) -> Turn:
        resources = turn.resources or self._resources
        history = turn.history[-self.settings.max_history_messages :] if self.settings.max_history_messages else []
        turn.query = build_query(turn.question, history, self.synonyms)
        # A model may only rewrite a follow-up that triage would let it answer: no model call comes first.
        if (
            self.chat_model is not None
            and turn.query.is_follow_up
            and classify(turn.query, best_similarity=1.0).status is Status.answered
        ):
            turn.query = self._rewrite_follow_up(turn, history)
        if not turn.query.search_text:  # nothing but instructions to the bot: nothing to search for
            return turn
        passages, turn.sentence_vectors = resources.results.get_or_compute(
            turn.query.search_text, partial(self._search, resources, turn.query.search_text)
        )
        turn.passages = list(passages)
        turn.query_vector = self._query_vector(turn.query)
        return turn

    def _triage(self, turn: Turn) -> Turn:
        assert turn.query is not None
        best = max((p.dense_score or 0.0 for p in turn.passages), default=0.0)  # closest sentence or passage
        turn.verdict = classify(turn.query, best_similarity=best)
        return turn

    def _compose(self, turn: Turn) -> Turn:
        verdict = turn.verdict
        assert verdict is not None
        if verdict.status not in {Status.answered, Status.escalated}:
            turn.draft = fixed_reply(verdict)
            return turn
        claims = self._claims(turn, limit=2 if verdict.status is Status.escalated else None)
        if verdict.status is Status.escalated:
            turn.draft = Draft(
                intro=escalation_intro(verdict),
                claims=claims,
                claims_heading=policy.ESCALATION_GUIDANCE_HEADING,
            )
        elif claims and self._answers_count(turn, claims):
            turn.draft = self._generate(turn, claims) if self.chat_model is not None else Draft(claims=claims)
        else:
            turn.verdict = Verdict(Status.not_found, "low_relevance")
            turn.draft = fixed_reply(turn.verdict)
        return turn

    def _guard(self, turn: Turn) -> Turn:
        turn.draft = guard(turn.draft, turn.chunks(), self.guard_settings)
        if turn.verdict is not None and turn.verdict.status is Status.answered and not turn.draft.claims:
            turn.verdict = Verdict(Status.not_found, "unsupported")
            turn.draft = fixed_reply(turn.verdict)
        return turn

    def _finish(self, turn: Turn) -> Answer:
        assert turn.verdict is not None
        body, cited = render(turn.draft, turn.chunks())
        citations = [
            Citation(
                n=n,
                chunk_id=chunk.chunk_id,
                doc_id=chunk.doc_id,
                title=chunk.title,
                section=chunk.section_path,
                text=chunk.text,
                quote=chunk.text[start - chunk.start : end - chunk.start],
                start=start,
                end=end,
            )
            for n, chunk, start, end in cited
        ]
        passages = [
            Passage(
                chunk_id=p.chunk.chunk_id,
                doc_id=p.chunk.doc_id,
                section=p.chunk.section_path,
                text=p.chunk.text,
                score=round(p.score, 6),
                dense_score=p.dense_score,
                lexical_score=p.lexical_score,
                start=p.chunk.start,
                end=p.chunk.end,
            )
            for p in turn.passages[: self.settings.top_k]
        ]
        text = f"{body}\n\n---\n{policy.DISCLAIMER}"
        if turn.on_delta is not None:
            # Verified sentences already went out as the model wrote them; the rest follows now.
            rest = text[len(turn.streamed) :] if text.startswith(turn.streamed) else text
            for delta in answer_deltas(rest):
                turn.on_delta(delta)
        turn.timings["total"] = round((time.perf_counter() - turn.started) * 1000, 3)
        for stage in ("retrieve", "compose"):
            turn.timings.setdefault(stage, 0.0)
        return Answer(
            question=turn.question,
            status=turn.verdict.status,
            answer=text,
            disclaimer=policy.DISCLAIMER,
            citations=citations,
            passages=passages,
            timings_ms=turn.timings,
            reason=turn.verdict.reason,
            composer=turn.composer,
            removed_sentences=turn.removed_sentences,
            fallback=turn.fallback,
        )

    # -- helpers --------------------------------------------------------------------------------

    def _search(self, resources: Resources, text: str) -> tuple[list[RankedPassage], dict[tuple[str, int], np.ndarray]]:
        """The fused passages for a search text and their sentences' vectors (remembered per index version).

        The vector-store queries are most of an answer's cost; a question asked again (the page's examples,
        the common ones) reuses the result.
        """
        documents = resources.retriever.invoke(text)
        chunks = resources.index.passages.fetch(doc.id for doc in documents if doc.id)
        passages = [
            RankedPassage(
                chunks[doc.id],
                doc.metadata["score"],
                max(doc.metadata.get(view.score_key, -1.0) for view in VECTOR_VIEWS),
                doc.metadata.get(View.lexical.score_key),
            )
            for doc in documents
            if doc.id in chunks
        ]
        return passages, self._vectors_of_sentences(resources, passages[: self.compose_settings.depth])

    def cache_clear(self) -> None:
        """Forget remembered searches and query vectors (benchmarks measure the work, not the caches)."""
        self._resources.results.clear()
        if hasattr(self.embeddings, "cache_clear"):
            self.embeddings.cache_clear()

    @property
    def caches(self) -> dict[str, CountingLRU[Any]]:
        """The caches whose hit rates the metrics report: retrieval results (this version) and query vectors."""
        caches: dict[str, CountingLRU[Any]] = {"retrieval": self._resources.results}
        if isinstance(vectors := getattr(self.embeddings, "cache", None), CountingLRU):
            caches["query_vector"] = vectors
        return caches

    def _vectors_of_sentences(
        self, resources: Resources, passages: list[RankedPassage]
    ) -> dict[tuple[str, int], np.ndarray]:
        def read(missing: list[tuple[str, int]]) -> dict[tuple[str, int], np.ndarray]:
            keys = {sentence_id(*key): key for key in missing}
            found = resources.index.stores[View.sentences].vectors(list(keys))
            return {keys[sid]: vector for sid, vector in found.items()}

        wanted = [(p.chunk.chunk_id, position) for p in passages for position, _ in quotable_sentences(p.chunk)]
        return self._sentence_vectors.get_or_fetch_many(wanted, read)

    def _words(self, turn: Turn) -> dict[tuple[str, int], set[str]]:
        words = {}
        for passage in turn.passages[: self.compose_settings.depth]:
            for position, sentence in enumerate(passage.chunk.sentences):
                key = (passage.chunk.chunk_id, position)
                text = passage.chunk.sentence_text(sentence)
                words[key] = self._sentence_words.get_or_compute(key, partial(content_words, text))
        return words

    @staticmethod
    def _answers_count(turn: Turn, claims) -> bool:
        """A "how many …?" question is only answered if the quoted text puts a number on that thing."""
        assert turn.query is not None
        thing = counted_thing(turn.query.asked)
        return thing is None or any(states_count(claim.text, thing) for claim in claims)

    def _query_vector(self, query: Query) -> np.ndarray:
        """The question's vector; a follow-up leans on its own words more than on the turn it continues."""
        vector = np.asarray(self.embeddings.embed_query(query.search_text), dtype=np.float32)
        if query.is_follow_up:
            vector = vector + np.asarray(
                self.embeddings.embed_query(self.synonyms.expand(query.asked)), dtype=np.float32
            )
            vector /= np.linalg.norm(vector) or 1.0
        return vector

    def _claims(self, turn: Turn, *, limit: int | None):
        if turn.query is None or turn.query_vector is None:
            return ()
        depth = self.compose_settings.depth
        words = content_words(turn.query.search_text)
        lexical = (turn.resources or self._resources).index.lexical
        evidence = Evidence(turn.passages[:depth], turn.sentence_vectors, self._words(turn), lexical.idf(words))
        return select_claims(turn.query_vector, words, evidence, self.compose_settings, limit=limit)

    def with_composer(self, spec: str) -> Engine:
        """This engine (same model and index) composing with ``spec``; itself if that is already its composer."""
        if spec == self.composer and self.composer_problem is None:
            return self
        return Engine(self.settings.model_copy(update={"composer": spec}), self.index, self.embeddings)

    # -- the generative composer ----------------------------------------------------------------

    def _generate(self, turn: Turn, facts: tuple[Claim, ...]) -> Draft:
        """A model's answer written from the extractive claims, sentence by sentence through the guard.

        Each sentence the guard accepts goes to the reader at once; if none survives (or the model fails),
        the extractive answer is the reply and the reason is recorded.
        """
        assert self.chat_model is not None and turn.query is not None
        turn.composer = self.composer
        messages = build_messages(turn.query.rewritten or turn.query.standalone, [f.text for f in facts])
        passages = turn.chunks()
        kept: list[Claim] = []
        checked = 0

        def judge(sentence: str) -> None:
            nonlocal checked
            if not sentence.strip():
                return
            checked += 1
            check = check_generated_sentence(sentence, facts, passages, turn.sentence_vectors, self._embed,
                                             self.guard_settings)  # fmt: skip
            if check.claim is None:
                log.info("guard removed %r: %s", sentence, check.reason)
                return
            kept.append(check.claim)
            if turn.on_delta is not None:
                numbers = citation_numbers(kept)
                piece = ("" if len(kept) == 1 else " ") + prose_sentence(check.claim, numbers)
                turn.on_delta(piece)
                turn.streamed += piece
                turn.timings.setdefault("first_text", round((time.perf_counter() - turn.started) * 1000, 3))

        started = time.perf_counter()
        # A member never waits on a model for longer than this: a slow one is cut off at a sentence boundary.
        deadline = started + self.settings.llm_timeout
        written = ""
        judged = 0
        try:
            # ``BaseChatModel.stream`` is a generator: closing it stops the model mid-answer.
            with closing(cast("Generator[BaseMessageChunk, None, None]", self.chat_model.stream(messages))) as stream:
                for chunk in stream:
                    token = chunk.content if isinstance(chunk.content, str) else ""
                    if token and "first_token" not in turn.timings:
                        turn.timings["first_token"] = round((time.perf_counter() - turn.started) * 1000, 3)
                    written += token
                    finished = generated_segments(written)[:-1]  # the last one may still be growing
                    for segment in finished[judged:]:
                        judge(segment)
                    judged = max(judged, len(finished))
                    if time.perf_counter() > deadline:
                        log.warning("The chat model %s took over %s s; it was stopped.", self.composer,
                                    self.settings.llm_timeout)  # fmt: skip
                        turn.fallback = f"the chat model took longer than {self.settings.llm_timeout:g} s"
                        written = ""  # its unfinished sentence is not judged
                        break
            for segment in generated_segments(written)[judged:]:
                judge(segment)
        except Exception as error:  # an unreachable or failing model must not fail the member
            log.warning("The chat model %s failed (%s); answering extractively.", self.composer, error)
            turn.fallback = f"the chat model failed ({error.__class__.__name__})"
        turn.timings["generate"] = round((time.perf_counter() - started) * 1000, 3)
        turn.removed_sentences = checked - len(kept)
        if kept:  # verified sentences stand even if the model failed later (the reader may have them already)
            turn.fallback = None
            return Draft(claims=tuple(kept))
        turn.fallback = turn.fallback or "no generated sentence passed the grounding guard"
        return Draft(claims=facts)

    def _embed(self, text: str) -> np.ndarray:
        return np.asarray(self.embeddings.embed_query(text), dtype=np.float32)

    def _rewrite_follow_up(self, turn: Turn, history: list[Message]) -> Query:
        """The follow-up rewritten by the model as a standalone question, if its rewrite is usable."""
        assert self.chat_model is not None and turn.query is not None
        started = time.perf_counter()
        try:
            reply = self.chat_model.invoke(rewrite_messages(turn.query.asked, history), stop=["\n"])
            rewrite = accept_rewrite(str(reply.content), turn.query.asked, history)
        except Exception as error:  # the engine's own follow-up handling stays
            log.warning("The chat model could not rewrite a follow-up (%s).", error)
            rewrite = None
        turn.timings["rewrite"] = round((time.perf_counter() - started) * 1000, 3)
        if rewrite is None:
            return turn.query
        # Triage keeps judging the engine's own reading of the conversation: a model cannot change a status.
        return replace(turn.query, rewritten=rewrite, search_text=self.synonyms.expand(rewrite))

    # -- entry point ----------------------------------------------------------------------------

    @property
    def version(self) -> str:
        """The engine's code version and the index build it answers from, e.g. ``0.1.0+index.3``."""
        from bot import __version__

        return f"{__version__}+index.{self.index.manifest.version}"

    def _turn(self, question: str, history: Iterable[Any] | None) -> Turn:
        text = question if isinstance(question, str) else ""
        messages = parse_history(history)
        self.refresh()
        turn = Turn(question=text, history=messages or [], resources=self._resources)
        if messages is None:
            turn.verdict = Verdict(Status.invalid, "history")
        return turn

    def ask(self, question: str, history: Iterable[Any] | None = None) -> Answer:
        """Answer one question in the context of the conversation so far."""
        return self.chain.invoke(self._turn(question, history))

    def stream(self, question: str, history: Iterable[Any] | None = None) -> Iterator[str | Answer]:
        """Like ``ask``, but yields the reply text in pieces as it becomes final, then the ``Answer``.

        The same chain runs (in a helper thread); its stages hand text to ``Turn.on_delta`` as soon as it is
        settled, so a composer that produces text gradually reaches the reader gradually. The pieces
        concatenate to ``Answer.answer``.
        """
        turn = self._turn(question, history)
        pieces: queue.SimpleQueue[str | Answer | BaseException] = queue.SimpleQueue()
        turn.on_delta = pieces.put

        def run() -> None:
            try:
                pieces.put(self.chain.invoke(turn))
            except BaseException as error:  # handed to the reader, who re-raises it
                pieces.put(error)

        Thread(target=run, name="bot-stream", daemon=True).start()
        while True:
            piece = pieces.get()
            if isinstance(piece, BaseException):
                raise piece
            yield piece
            if isinstance(piece, Answer):
                return

    def reject(self, question: str, reason: str) -> Answer:
        """The reply to a request a shell could not even read (``reason`` as in ``compose``'s messages)."""
        return self.chain.invoke(Turn(question=question, history=[], verdict=Verdict(Status.invalid, reason)))


_default_engine: Engine | None = None
_default_lock = Lock()


def default_engine() -> Engine:
    """The process-wide engine, loaded on first use."""
    global _default_engine
    with _default_lock:
        if _default_engine is None:
            _default_engine = Engine.load()
        return _default_engine
