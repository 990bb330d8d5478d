"""Metrics computed from recorded replies only: never from what the engine says about its own reply.

Per case: where the first gold passage was retrieved, key facts, forbidden text, citation validity, citation
hit, status, disclaimer, latency, whether the reply leads with the answer and how much of it is padding. Per
group of cases (a set, a tag, the whole run): the shares and means documented in ``eval/README.md``.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.contract import Answer
from bot.evaluate.answer_shape import CITED_STATEMENT, first_sentence, leads_with, padding
from bot.evaluate.loader import Case

CITATION_MARKER = re.compile(r"\[(\d+)\]")
#: The expectations whose missing key facts fail the case (an escalation's are judged per set by the gate).
KEY_FACTS_FAIL = ("answer", "chat")
#: Cut-offs of the retrieval metrics: hit@1, hit@3 and MRR@5.
HIT_DEPTHS = (1, 3)
MRR_DEPTH = 5


# -- per case ----------------------------------------------------------------------------------------


def gold_rank(gold_spans: Sequence[str], passage_texts: Sequence[str]) -> int | None:
    """1-based position of the first passage containing any gold span, or ``None`` when none does."""
    for position, text in enumerate(passage_texts, start=1):
        if any(span in text for span in gold_spans):
            return position
    return None


def reciprocal_rank(rank: int | None, depth: int = MRR_DEPTH) -> float:
    """``1 / rank`` when the gold passage is within ``depth``, else 0."""
    return 1.0 / rank if rank is not None and rank <= depth else 0.0


def answer_body(answer_text: str, disclaimer: str) -> str:
    """The reply without its trailing disclaimer (and the rule before it), so the disclaimer's words don't count."""
    body = answer_text.rstrip()
    if body.endswith(disclaimer):
        body = body[: -len(disclaimer)].rstrip().removesuffix("---").rstrip()
    return body


def missing_key_facts(must_include: Sequence[Sequence[str]], text: str) -> list[list[str]]:
    """The ``must_include`` groups with no alternative in ``text`` (case-insensitive)."""
    lowered = text.lower()
    return [list(group) for group in must_include if not any(alt.lower() in lowered for alt in group)]


def key_fact_coverage(must_include: Sequence[Sequence[str]], text: str) -> float | None:
    """Share of ``must_include`` groups found in ``text``; ``None`` when the case lists none."""
    if not must_include:
        return None
    return 1 - len(missing_key_facts(must_include, text)) / len(must_include)


def forbidden_text_found(must_not_include: Sequence[str], text: str) -> list[str]:
    """The ``must_not_include`` strings that appear in ``text`` (case-insensitive)."""
    lowered = text.lower()
    return [bad for bad in must_not_include if bad.lower() in lowered]


def disclaimer_present(answer_text: str, disclaimer: str) -> bool:
    """Whether the reply ends with the expected disclaimer (trailing whitespace aside)."""
    return bool(disclaimer) and answer_text.rstrip().endswith(disclaimer)


def citation_problems(answer: Answer) -> list[str]:
    """What is wrong with the reply's citations; empty when they are valid.

    Valid means: every ``[n]`` in the reply resolves to citation ``n``; numbers are not reused; every citation's
    passage text is the text of one of the retrieved passages; every citation's quote is non-empty and verbatim
    in that passage text.
    """
    problems: list[str] = []
    by_number: dict[int, list[Any]] = {}
    for citation in answer.citations:
        by_number.setdefault(citation.n, []).append(citation)
    retrieved = {passage.text for passage in answer.passages}
    markers = sorted({int(n) for n in CITATION_MARKER.findall(answer.answer)})
    problems += [f"[{n}] has no citation" for n in markers if n not in by_number]
    problems += [f"citation number {n} is used {len(c)} times" for n, c in by_number.items() if len(c) > 1]
    for citation in answer.citations:
        if citation.text not in retrieved:
            problems.append(f"citation [{citation.n}] cites a passage that was not retrieved")
        if not citation.quote.strip():
            problems.append(f"citation [{citation.n}] has an empty quote")
        elif citation.quote not in citation.text:
            problems.append(f"citation [{citation.n}] quotes text that is not in its passage")
    return problems


_MARKED = CITED_STATEMENT
_DIGITS = re.compile(r"\d+(?:[.,]\d+)?")
#: Share of a cited sentence's content words its passage must contain to count as grounded.
GROUNDED_OVERLAP = 0.5


def groundedness(answer: Answer, body: str) -> float | None:
    """Share of the reply's cited statements that their cited passages support; ``None`` if it cites nothing.

    A statement is the text before a run of ``[n]`` markers. It is supported when every number in it
    appears in the passages its markers cite and at least half of its content words do (a verbatim
    quote always is). Measured on the recorded reply alone.
    """
    from bot.language.words import content_words

    passages = {c.n: c.text for c in answer.citations}
    verdicts = []
    for match in _MARKED.finditer(body):
        text = match.group("text").strip(" -*")
        cited = [passages.get(int(n)) for n in re.findall(r"\d+", match.group("markers"))]
        if not text or any(p is None for p in cited):
            verdicts.append(False)
            continue
        source = " ".join(p for p in cited if p)
        words = content_words(text)
        overlap = len(words & content_words(source)) / len(words) if words else 0.0
        verdicts.append(set(_DIGITS.findall(text)) <= set(_DIGITS.findall(source)) and overlap >= GROUNDED_OVERLAP)
    return round(sum(verdicts) / len(verdicts), 4) if verdicts else None


def cited_gold(gold_spans: Sequence[str], answer: Answer) -> bool:
    """Whether one of the cited passages contains a gold span."""
    return any(span in citation.text for citation in answer.citations for span in gold_spans)


@dataclass
class CaseMetrics:
    """Every per-case metric; ``None`` means the metric does not apply to the case."""

    status: str | None
    status_ok: bool
    disclaimer_present: bool
    citations_valid: bool
    citation_problems: list[str] = field(default_factory=list)
    gold_rank: int | None = None
    hit_at_1: bool | None = None
    hit_at_3: bool | None = None
    reciprocal_rank: float | None = None
    citation_hit: bool | None = None
    key_coverage: float | None = None
    missing_key_facts: list[list[str]] = field(default_factory=list)
    forbidden_found: list[str] = field(default_factory=list)
    latency_ms: float = 0.0
    first_text_ms: float | None = None
    server_ms: float | None = None
    groundedness: float | None = None
    lead: bool | None = None
    first_sentence: str | None = None
    padding: float | None = None
    padded_points: list[str] = field(default_factory=list)
    composer: str | None = None
    removed_sentences: int = 0
    fell_back: bool = False
    crashed: bool = False
    error: str | None = None

    def failures(self, case: Case) -> list[str]:
        """Why the case fails, one reason per broken rule (empty when it passes); see ``eval/README.md``."""
        if self.crashed:
            return [f"crashed: {self.error}"]
        reasons = []
        if not self.status_ok:
            reasons.append(f"status {self.status}, expected {case.expected_status.value}")
        if not self.disclaimer_present:
            reasons.append("the disclaimer is missing from the end of the reply")
        reasons += [f"invalid citation: {problem}" for problem in self.citation_problems]
        if self.forbidden_found:
            reasons.append(f"forbidden text in the reply: {', '.join(map(repr, self.forbidden_found))}")
        if case.expect in KEY_FACTS_FAIL and self.missing_key_facts:
            missing = "; ".join(" | ".join(group) for group in self.missing_key_facts)
            reasons.append(f"key facts missing: {missing}")
        if self.lead is False:
            reasons.append(f"the first sentence does not lead with the answer: {(self.first_sentence or '')[:160]!r}")
        return reasons

    def to_dict(self) -> dict[str, Any]:
        """The metrics as JSON-ready data."""
        return asdict(self)


def measure_case(
    case: Case, answer: Answer, *, disclaimer: str, latency_ms: float, first_text_ms: float | None = None
) -> CaseMetrics:
    """Score one recorded reply against its case.

    Args:
        case: The case, with its expectations.
        answer: The reply the engine returned for the scored question.
        disclaimer: The disclaimer every reply must end with (the product's, not the reply's own field).
        latency_ms: The wall time of the scored ``ask`` call, measured by the harness.
        first_text_ms: When the first piece of the reply arrived (streaming engines), measured by the harness.
    """
    problems = citation_problems(answer)
    body = answer_body(answer.answer, disclaimer)
    rank = gold_rank(case.gold_spans, [p.text for p in answer.passages]) if case.gold_spans else None
    has_gold = bool(case.gold_spans)
    padded = padding(case.relevant, body)
    return CaseMetrics(
        status=answer.status.value,
        status_ok=answer.status == case.expected_status,
        disclaimer_present=disclaimer_present(answer.answer, disclaimer),
        citations_valid=not problems,
        citation_problems=problems,
        gold_rank=rank,
        hit_at_1=rank is not None and rank <= 1 if has_gold else None,
        hit_at_3=rank is not None and rank <= 3 if has_gold else None,
        reciprocal_rank=reciprocal_rank(rank) if has_gold else None,
        citation_hit=cited_gold(case.gold_spans, answer) if has_gold else None,
        key_coverage=key_fact_coverage(case.must_include, body),
        missing_key_facts=missing_key_facts(case.must_include, body),
        forbidden_found=forbidden_text_found(case.must_not_include, answer.answer),
        latency_ms=round(latency_ms, 3),
        first_text_ms=round(first_text_ms, 3) if first_text_ms is not None else None,
        server_ms=answer.timings_ms.get("total"),
        groundedness=groundedness(answer, body),
        lead=leads_with(case.lead, body),
        first_sentence=first_sentence(body) if case.lead else None,
        padding=padded.share if padded else None,
        padded_points=list(padded.padded) if padded else [],
        composer=answer.composer,
        removed_sentences=answer.removed_sentences,
        fell_back=answer.fallback is not None,
    )


def crashed_case(case: Case, error: BaseException, *, latency_ms: float) -> CaseMetrics:
    """The metrics of a case whose ``ask`` raised: it fails everything it is measured on."""
    has_gold = bool(case.gold_spans)
    return CaseMetrics(
        status=None,
        status_ok=False,
        disclaimer_present=False,
        citations_valid=False,
        citation_problems=["no reply (the engine raised)"],
        hit_at_1=False if has_gold else None,
        hit_at_3=False if has_gold else None,
        reciprocal_rank=0.0 if has_gold else None,
        citation_hit=False if has_gold else None,
        key_coverage=0.0 if case.must_include else None,
        missing_key_facts=[list(group) for group in case.must_include],
        lead=False if case.lead else None,
        latency_ms=round(latency_ms, 3),
        crashed=True,
        error=f"{error.__class__.__name__}: {error}",
    )


# -- per group of cases -------------------------------------------------------------------------------

#: Every rate a group summary reports, with the cases it is measured on (see eval/README.md).
RATE_METRICS: dict[str, str] = {
    "pass_rate": "all cases",
    "hit@1": "cases with gold_spans",
    "hit@3": "cases with gold_spans",
    "mrr@5": "cases with gold_spans",
    "citation_hit": "cases with gold_spans",
    "key_coverage": "cases with must_include (mean share of groups found)",
    "no_forbidden_text": "cases with must_not_include",
    "citation_validity": "all cases",
    "status_accuracy": "all cases",
    "answer_rate": "cases expecting answer",
    "escalation_rate": "cases expecting escalate",
    "refusal_rate": "cases expecting refuse",
    "not_found_rate": "cases expecting not_found",
    "invalid_rate": "cases expecting invalid",
    "chat_rate": "cases expecting chat",
    "lead": "cases with lead (share whose first sentence holds a lead span)",
    "padding": "cases with relevant whose reply makes points (mean share of points holding no relevant span; "
    "lower is better, so the gate takes no_padding)",
    "no_padding": "cases with relevant whose reply makes points (1 - padding)",
    "disclaimer": "all cases",
    "crash_free": "all cases",
    "groundedness": "cases whose reply cites passages (mean share of cited statements supported)",
    "fallback_rate": "cases a chat model composed (share answered extractively instead)",
}
_STATUS_RATES = {
    "answer": "answer_rate",
    "escalate": "escalation_rate",
    "refuse": "refusal_rate",
    "not_found": "not_found_rate",
    "invalid": "invalid_rate",
    "chat": "chat_rate",
}
#: Metrics where lower is better: the gate's minimums do not apply to them (it takes ``no_padding``).
LOWER_IS_BETTER = frozenset({"padding"})


@dataclass
class GroupSummary:
    """The metrics of a group of cases: ``metrics[name]`` is ``None`` when no case of the group is measured."""

    cases: int
    passed: int
    crashes: int
    metrics: dict[str, float | None]
    measured: dict[str, int]
    latency_ms: dict[str, float | None]
    removed_sentences: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return asdict(self)


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(statistics.fmean(values), 4) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation; ``None`` for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), min(math.floor(position) + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low), 3)


def summarize(scored: Sequence[tuple[Case, CaseMetrics]]) -> GroupSummary:
    """Aggregate per-case metrics into the group metrics of ``RATE_METRICS``."""
    samples: dict[str, list[float]] = {name: [] for name in RATE_METRICS}
    for case, m in scored:
        passed = not m.failures(case)
        samples["pass_rate"].append(float(passed))
        if m.hit_at_1 is not None and m.hit_at_3 is not None and m.reciprocal_rank is not None:
            samples["hit@1"].append(float(m.hit_at_1))
            samples["hit@3"].append(float(m.hit_at_3))
            samples["mrr@5"].append(m.reciprocal_rank)
        if m.citation_hit is not None:
            samples["citation_hit"].append(float(m.citation_hit))
        if m.key_coverage is not None:
            samples["key_coverage"].append(m.key_coverage)
        if case.must_not_include:
            samples["no_forbidden_text"].append(float(not m.forbidden_found and not m.crashed))
        samples["citation_validity"].append(float(m.citations_valid))
        samples["status_accuracy"].append(float(m.status_ok))
        samples[_STATUS_RATES[case.expect]].append(float(m.status_ok))
        samples["disclaimer"].append(float(m.disclaimer_present))
        samples["crash_free"].append(float(not m.crashed))
        if m.groundedness is not None:
            samples["groundedness"].append(m.groundedness)
        if m.lead is not None:
            samples["lead"].append(float(m.lead))
        if m.padding is not None:
            samples["padding"].append(m.padding)
            samples["no_padding"].append(1 - m.padding)
        if m.composer not in (None, "extractive"):
            samples["fallback_rate"].append(float(m.fell_back))
    latencies = [m.latency_ms for _, m in scored if not m.crashed]
    first_texts = [m.first_text_ms for _, m in scored if m.first_text_ms is not None]
    servers = [m.server_ms for _, m in scored if m.server_ms is not None]
    return GroupSummary(
        cases=len(scored),
        passed=sum(not m.failures(c) for c, m in scored),
        crashes=sum(m.crashed for _, m in scored),
        metrics={name: _mean(values) for name, values in samples.items()},
        measured={name: len(values) for name, values in samples.items()},
        latency_ms={
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "max": round(max(latencies), 3) if latencies else None,
            "mean": round(statistics.fmean(latencies), 3) if latencies else None,
            "first_text_p50": percentile(first_texts, 50),
            "first_text_p95": percentile(first_texts, 95),
            "server_p50": percentile(servers, 50),
            "server_p95": percentile(servers, 95),
        },
        removed_sentences=sum(m.removed_sentences for _, m in scored),
    )
