"""What an escalation quotes after its warning: the articles' own advice to get a painful knee seen to.

A member with a red flag is told to stop and get checked. Quoting training tips under that warning ("Use knee
sleeves…", "Start with a lighter weight…" for a knee that popped and swelled) would say the opposite, so the
guidance is only what the retrieved articles say about seeing a professional; if they say nothing, none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.content.documents import Chunk
from bot.language.discourse import advises_care, is_framing
from bot.stages.state import Claim, RankedPassage, Support


def care_guidance(
    passages: Sequence[RankedPassage], chunks_of: Callable[[str], list[Chunk]], *, limit: int = 2
) -> tuple[Claim, ...]:
    """Up to ``limit`` sentences of the passages' articles advising professional care, under such a heading first."""
    found: dict[tuple[str, int], tuple[bool, int, Claim]] = {}
    for doc_id in dict.fromkeys(p.chunk.doc_id for p in passages):
        for chunk in chunks_of(doc_id):
            headed = any(advises_care(heading) for heading in chunk.section)
            for sentence in chunk.sentences:
                text = chunk.sentence_text(sentence)
                if not sentence.quotable or sentence.is_list or is_framing(text) or not advises_care(text):
                    continue
                claim = Claim(text, (Support(chunk.chunk_id, sentence.start, sentence.end),))
                found.setdefault((doc_id, sentence.start), (headed, sentence.start, claim))  # chunks may overlap
    ranked = sorted(found.values(), key=lambda entry: (not entry[0], entry[1]))
    return tuple(claim for _, _, claim in ranked[:limit])
