"""Structure-aware overviews: a question about causes, ways, exercises or injuries gets the article's outline.

When a section of the article answers with sub-sections or a list, the reply is that outline: one cited
line per item — its heading or label and the sentence that says it — in the article's order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.content.documents import Chunk, Sentence
from bot.language.discourse import answers_kind, is_framing
from bot.language.questions import Kind
from bot.stages.compose.candidates import Question, lemma_words, lemmas
from bot.stages.state import Claim, RankedPassage, Support

_LABEL = re.compile(r"^\s*(?:[-*+]\s+)?\*\*(?P<label>[^*]+)\*\*\s*$")
# "Muscle Imbalances and Weakness Causes Knee Pain After Leg Press" names its item before "Causes …".
_HEADING_TAIL = re.compile(r"\s+(causes?|causing|leading to|that causes?)\s+.*$", re.IGNORECASE)
_MAX_ITEMS = 8

#: What a question asks a list of, and the words a heading or list lead-in uses for it. The first that matches
#: is what is asked: "what injuries can it cause?" asks for injuries, not causes.
_LIST_CUES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), words)
    for pattern, words in (
        (r"\b(injur\w*|conditions?|problems?)\b", "injuries conditions"),
        (
            r"\b(alternatives?|instead|other exercises?|different exercises?|substitute\w*|swap)\b",
            "alternative exercises",
        ),
        (r"\b(mistakes?|errors?|wrong)\b", "mistakes"),
        (r"\bmuscles?\b", "muscles muscle groups"),
        (r"\b(steps?|properly|correctly|proper form|correct form|technique)\b", "correctly how steps"),
        (r"\b(prevent\w*|avoid\w*|stop\w*|protect\w*|fix\w*|ways?|tips?)\b", "prevent avoid"),
        (r"\b(why|causes?|caused|causing|reasons?|how come|what makes)\b", "causes cause reasons"),
    )
)
_STEPS = _LIST_CUES[4][0]


@dataclass
class _Node:
    """A part of an article with items: a section with sub-sections, or a list under its lead-in."""

    title: str
    path: tuple[str, ...]
    items: list[Claim] = field(default_factory=list)


def wants_outline(question: Question) -> bool:
    """Lists of things, and "why does it hurt?" asked in general terms, are answered by an overview."""
    kind = question.asked.kind
    if kind is Kind.listing:
        return True
    generic = not (lemmas(question.own) - question.generic - lemma_words("why cause causes reason reasons"))
    if kind is Kind.cause:
        return generic and not question.follow_up  # "why not?" asks why about the turn it follows
    return kind is Kind.instruction and bool(_STEPS.search(question.text))


def _cue_words(question: Question) -> set[str]:
    return next((lemma_words(cue) for pattern, cue in _LIST_CUES if pattern.search(question.text)), set())


def _line_prefix(chunk: Chunk, sentence: Sentence) -> str:
    """What stands between the start of the sentence's line and the sentence ("- ", "  - " or nothing)."""
    at = sentence.start - chunk.start
    return chunk.text[chunk.text.rfind("\n", 0, at) + 1 : at]


def _item_level(prefix: str) -> int | None:
    """0 for a top-level list item, 1 for a nested one, ``None`` for prose."""
    if not prefix.strip().startswith(("-", "*", "+")):
        return None
    return (len(prefix) - len(prefix.lstrip())) // 2


def _claim(chunk: Chunk, sentence: Sentence, label: str = "") -> Claim:
    return Claim(chunk.sentence_text(sentence), (Support(chunk.chunk_id, sentence.start, sentence.end),), label=label)


def _list_nodes(chunks: Sequence[Chunk]) -> list[_Node]:
    """Every list of an article under its lead-in: its top-level items, or its labels with their first point."""
    nodes: list[_Node] = []
    current: _Node | None = None
    label = ""
    for chunk in chunks:
        for sentence in chunk.sentences:
            text = chunk.sentence_text(sentence)
            if sentence.is_list:
                continue  # the lead-in with its items, quoted as one: the items come one by one too
            level = _item_level(_line_prefix(chunk, sentence))
            if level is None:
                if not sentence.quotable and text.rstrip().endswith(":"):
                    current = _Node(text.strip(), chunk.section)
                    nodes.append(current)
                elif sentence.quotable or chunk.section != (current.path if current else None):
                    current = None
                label = ""
                continue
            if current is None or chunk.section != current.path:
                continue
            if level == 0 and (match := _LABEL.match(text)):
                label = match.group("label").strip()
            elif level == 0:  # an item: a fragment ("deadlifts") reads well in a list
                current.items.append(_claim(chunk, sentence))
                label = ""
            elif level == 1 and label and sentence.quotable and not is_framing(text):
                current.items.append(_claim(chunk, sentence, label))
                label = ""
    return [node for node in nodes if len(node.items) >= 2]


def _first_saying(chunks: Sequence[Chunk], prefer: Kind | None) -> Claim | None:
    """The sentence that says what a sub-section is about: its first that is not framing (of the kind, if asked)."""
    candidates = [
        (chunk, sentence)
        for chunk in chunks
        for sentence in chunk.sentences
        if sentence.quotable and not sentence.is_list and not is_framing(chunk.sentence_text(sentence))
    ]
    if prefer is not None:
        for chunk, sentence in candidates[:4]:
            if answers_kind(chunk.sentence_text(sentence), prefer):
                return _claim(chunk, sentence)
    return _claim(*candidates[0]) if candidates else None


def _section_nodes(chunks: Sequence[Chunk], prefer: Kind | None) -> list[_Node]:
    """Every section with two or more sub-sections: one item per sub-section."""
    paths = list(dict.fromkeys(chunk.section[:depth] for chunk in chunks for depth in range(1, len(chunk.section) + 1)))
    nodes = []
    for path in paths:
        children = list(
            dict.fromkeys(
                c.section[len(path)] for c in chunks if len(c.section) > len(path) and c.section[: len(path)] == path
            )
        )
        if len(children) < 2:
            continue
        node = _Node(path[-1], path)
        for child in children:
            under = [c for c in chunks if c.section[: len(path) + 1] == (*path, child)]
            if (claim := _first_saying(under, prefer)) is not None:
                node.items.append(Claim(claim.text, claim.support, label=_HEADING_TAIL.sub("", child)))
        if len(node.items) >= 2:
            nodes.append(node)
    return nodes


def outline(
    question: Question, passages: Sequence[RankedPassage], chunks_of: Callable[[str], list[Chunk]]
) -> tuple[Claim, ...]:
    """The overview that answers ``question``, or nothing when no list or section of the best passages' articles does.

    ``chunks_of`` gives an article's passages in reading order.
    """
    if not wants_outline(question):
        return ()
    cues = _cue_words(question)
    focus = lemmas(question.own) - question.generic
    prefer = Kind.cause if question.asked.kind is Kind.cause else None
    best: tuple[float, _Node] | None = None
    top = passages[:5]
    for doc_id in dict.fromkeys(p.chunk.doc_id for p in passages[:3]):
        chunks = chunks_of(doc_id)
        for node in [*_section_nodes(chunks, prefer), *_list_nodes(chunks)]:
            headed = lemma_words(" ".join(node.path))
            words = headed | lemma_words(node.title)
            # A heading that names what is asked says more than a list's lead-in mentioning it.
            matched = len(cues & headed) + 0.5 * len(cues & (words - headed))
            if not matched:
                continue
            found = sum(1 for p in top if p.chunk.doc_id == doc_id and p.chunk.section[: len(node.path)] == node.path)
            score = matched + 0.5 * len(focus & words) / max(1, len(focus)) + 0.25 * min(found, 2)
            if best is None or score > best[0]:
                best = (score, node)
    return tuple(best[1].items[:_MAX_ITEMS]) if best is not None else ()
