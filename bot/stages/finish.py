"""Finishing: the draft rendered as Markdown with ``[n]`` markers, the disclaimer appended, the ``Answer`` built.

Every reply passes through here, so this is the one place the disclaimer is added.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from bot import policy
from bot.content.documents import Chunk
from bot.contract import Answer, Citation, Passage
from bot.stages.state import AnswerState, Claim, Draft, RankedPassage

DISCLAIMER_BLOCK = f"\n\n---\n{policy.DISCLAIMER}"


def _render_claim(claim: Claim, markers: str, *, bullet: bool) -> str:
    if not claim.is_list:
        return f"{'- ' if bullet else ''}{claim.text} {markers}"
    lead_in, *items = [line.strip() for line in claim.text.splitlines() if line.strip()]
    indent = "  " if bullet else ""
    nested = "\n".join(f"{indent}{item}" for item in items)
    return f"{'- ' if bullet else ''}{lead_in} {markers}\n{'' if bullet else chr(10)}{nested}"


def _outline_line(claim: Claim, markers: str) -> str:
    label = f"**{claim.label}** — " if claim.label else ""
    return f"- {label}{claim.text} {markers}"


def citation_numbers(claims: Sequence[Claim]) -> dict[str, int]:
    """Citation number of each passage, in the order the claims first use them."""
    numbers: dict[str, int] = {}
    for claim in claims:
        for support in claim.support:
            numbers.setdefault(support.chunk_id, len(numbers) + 1)
    return numbers


def prose_sentence(claim: Claim, numbers: Mapping[str, int]) -> str:
    """A generated claim as it appears in the answer, with its markers."""
    return f"{claim.text} {''.join(f'[{numbers[s.chunk_id]}]' for s in claim.support)}"


def render_markdown(draft: Draft, passages: Mapping[str, Chunk]) -> tuple[str, list[tuple[int, Chunk, int, int]]]:
    """Markdown for a draft, and its citations as ``(n, chunk, quote start, quote end)``.

    Passages are numbered in the order the answer first uses them; a passage's quote spans every
    sentence the answer took from it.
    """
    numbers = citation_numbers(draft.claims)
    spans: dict[str, tuple[int, int]] = {}
    for claim in draft.claims:
        for support in claim.support:
            start, end = spans.get(support.chunk_id, (support.start, support.end))
            spans[support.chunk_id] = (min(start, support.start), max(end, support.end))

    def markers(claim: Claim) -> str:
        return "".join(f"[{numbers[s.chunk_id]}]" for s in claim.support)

    blocks = [draft.intro] if draft.intro else []
    claims = list(draft.claims)
    heading = draft.claims_heading
    if claims and draft.outline:  # one line per item, labelled with its heading, from the first line on
        blocks.append("\n".join(_outline_line(c, markers(c)) for c in claims))
        claims = []
    if claims and all(c.generated for c in claims):  # a model's answer reads as prose
        blocks.append(" ".join(prose_sentence(c, numbers) for c in claims))
        claims = []
    if claims and not draft.intro and not heading:
        blocks.append(_render_claim(claims[0], markers(claims[0]), bullet=False))
        # A list lead ends in a list; a heading keeps the points from merging into it.
        heading = policy.MORE_POINTS_HEADING if claims[0].is_list else ""
        claims = claims[1:]
    if claims:
        if heading:
            blocks.append(heading)
        blocks.append("\n".join(_render_claim(c, markers(c), bullet=True) for c in claims))
    citations = [(n, passages[chunk_id], *spans[chunk_id]) for chunk_id, n in numbers.items()]
    return "\n\n".join(blocks), citations


def answer_deltas(text: str) -> Iterator[str]:
    """Reply text in the pieces a reader sees arrive: one line (a claim, a point) at a time.

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


class Finish:
    """Renders the draft, appends the disclaimer and maps everything to the ``Answer`` contract."""

    name = "finish"

    def __init__(self, *, top_k: int) -> None:
        self.top_k = top_k

    def _shown(self, state: AnswerState, cited: set[str]) -> list[RankedPassage]:
        """The best ``top_k`` passages, then any cited one beyond them (an overview quotes passages of its own)."""
        shown = state.passages[: self.top_k]
        return shown + [p for p in state.passages[self.top_k :] if p.chunk.chunk_id in cited]

    def answer(self, state: AnswerState) -> Answer:
        """The reply. It starts with exactly the text already sent (``state.sent``), which is never redone."""
        assert state.verdict is not None
        rendered, cited = render_markdown(state.draft, state.chunks())
        # A chat model's verified sentences went out as it wrote them, and they are the whole body then:
        # the body is that text itself, not a second rendering of it.
        body = "".join(state.sent) or rendered
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
            for p in self._shown(state, {c.chunk_id for c in citations})
        ]
        for stage in ("retrieve", "compose"):
            state.timings.setdefault(stage, 0.0)
        state.timings["total"] = state.elapsed_ms()
        return Answer(
            question=state.question,
            status=state.verdict.status,
            answer=body + DISCLAIMER_BLOCK,
            disclaimer=policy.DISCLAIMER,
            citations=citations,
            passages=passages,
            timings_ms=state.timings,
            reason=state.verdict.reason,
            composer=state.composer,
            removed_sentences=state.removed_sentences,
            fallback=state.fallback,
        )
