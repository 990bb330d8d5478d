"""Split an article into structure-aware passages with stable ids and exact source offsets.

Rules: a chunk never crosses a section heading and never cuts a sentence; a list stays with its
lead-in sentence ("…include:"); a list too long for one chunk is split between items, and the
later parts carry the lead-in as embedding context. Every chunk is a contiguous span of the source,
so a citation can highlight exactly what was used.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from bot.content.documents import Article, Chunk, Sentence

#: Bump when the chunking rules change: it is part of the index fingerprint.
CHUNKER_VERSION = "4"

_SENTENCE_END = re.compile(r"[.!?…][\"'”’)]*$")
_BOLD_LABEL = re.compile(r"^\*\*[^*]+\*\*:?$")


@dataclass
class _Atom:
    """The smallest piece the packer moves: a run of sentences or a list item with its children."""

    start: int
    end: int
    sentences: list[Sentence]
    context: str = ""
    #: Atoms of one list share a group so the packer can put their items back together.
    group: int | None = None


@dataclass
class _Section:
    path: tuple[str, ...]
    atoms: list[_Atom] = field(default_factory=list)


@lru_cache(maxsize=1)
def _segmenter():  # pysbd is slow to construct; one is enough.
    import pysbd

    return pysbd.Segmenter(language="en", clean=False, char_span=True)


def split_sentences(text: str, offset: int = 0) -> list[Sentence]:
    """Sentence spans of plain prose, as absolute offsets (``offset`` is where ``text`` starts)."""
    spans: list[Sentence] = []
    for piece in _segmenter().segment(text):
        stripped = piece.sent.strip()
        if not stripped:
            continue
        start = offset + piece.start + (len(piece.sent) - len(piece.sent.lstrip()))
        spans.append(Sentence(start, start + len(stripped), quotable=not stripped.endswith(":")))
    return spans


class _Walker:
    """Turns the Markdown syntax tree of one document into sections of atoms."""

    def __init__(self, text: str, max_chars: int) -> None:
        self.text = text
        self.max_chars = max_chars
        self.line_starts = [0]
        for line in text.splitlines(keepends=True):
            self.line_starts.append(self.line_starts[-1] + len(line))

    def span(self, node: SyntaxTreeNode) -> tuple[int, int]:
        first, last = node.map or (0, 0)
        start, end = self.line_starts[first], self.line_starts[min(last, len(self.line_starts) - 1)]
        while end > start and self.text[end - 1].isspace():
            end -= 1
        while start < end and self.text[start].isspace():
            start += 1
        return start, end

    def inline_span(self, node: SyntaxTreeNode) -> tuple[int, int]:
        """Span of a paragraph's text without list markers or indentation."""
        start, end = self.span(node)
        content = node.children[0].content if node.children else ""
        found = self.text.find(content, start, end + 1) if content else -1
        return (found, found + len(content)) if found >= 0 else (start, end)

    def sections(self) -> list[_Section]:
        tree = SyntaxTreeNode(MarkdownIt("commonmark").parse(self.text))
        headings: list[tuple[int, str]] = []
        sections = [_Section(())]
        pending_lead_in: tuple[int, int] | None = None
        for node in tree.children:
            if node.type == "heading":
                if pending_lead_in is not None:  # a lead-in ending a section stays with its section
                    sections[-1].atoms.extend(self.prose_atoms(*pending_lead_in))
                    pending_lead_in = None
                level = int(node.tag[1:])
                title = node.children[0].content.strip() if node.children else ""
                headings = [(lvl, name) for lvl, name in headings if lvl < level]
                if level > 1:  # the H1 is the document title, not a section
                    headings.append((level, title))
                sections.append(_Section(tuple(name for _, name in headings)))
                continue
            if node.type in {"bullet_list", "ordered_list"}:
                sections[-1].atoms.extend(self.list_atoms(node, pending_lead_in))
                if pending_lead_in is not None:
                    # The lead-in paragraph was held back; it now travels with its list.
                    pending_lead_in = None
                continue
            if pending_lead_in is not None:
                sections[-1].atoms.extend(self.prose_atoms(*pending_lead_in))
                pending_lead_in = None
            if node.type == "hr":
                continue
            start, end = self.span(node)
            if node.type == "paragraph" and self.text[start:end].rstrip().endswith(":"):
                pending_lead_in = (start, end)
                continue
            sections[-1].atoms.extend(self.prose_atoms(start, end))
        if pending_lead_in is not None:
            sections[-1].atoms.extend(self.prose_atoms(*pending_lead_in))
        return [s for s in sections if s.atoms]

    def prose_atoms(self, start: int, end: int) -> list[_Atom]:
        """A paragraph as one atom, or as sentence-aligned atoms when it is too long."""
        sentences = split_sentences(self.text[start:end], start)
        if end - start <= self.max_chars or len(sentences) <= 1:
            return [_Atom(start, end, sentences)]
        return [_Atom(s.start, s.end, [s]) for s in sentences]

    def item_sentences(self, item: SyntaxTreeNode) -> tuple[list[Sentence], bool]:
        """Sentences of a list item's own text (not its children) and whether it is a bare fragment."""
        sentences: list[Sentence] = []
        fragment = False
        for child in item.children:
            if child.type != "paragraph":
                continue
            start, end = self.inline_span(child)
            content = self.text[start:end]
            has_children = any(c.type.endswith("_list") for c in item.children)
            if _BOLD_LABEL.match(content) or (has_children and not _SENTENCE_END.search(content)):
                sentences.append(Sentence(start, end, quotable=False))
            elif not _SENTENCE_END.search(content):
                fragment = True
                sentences.append(Sentence(start, end, quotable=False))
            else:
                sentences.extend(split_sentences(content, start))
        return sentences, fragment

    def item_atoms(self, item: SyntaxTreeNode, context: str) -> list[_Atom]:
        """A list item with its nested items, split between children only if it is too long."""
        start, end = self.span(item)
        own, _ = self.item_sentences(item)
        children = [c for c in item.children if c.type.endswith("_list")]
        nested = [grand for c in children for grand in c.children]
        nested_atoms = [a for child in nested for a in self.item_atoms(child, context)]
        if end - start <= self.max_chars or not nested_atoms:
            return [_Atom(start, end, own + [s for a in nested_atoms for s in a.sentences], context)]
        label = " ".join(self.text[s.start : s.end] for s in own).strip("* ")
        first, *rest = nested_atoms
        atoms = [_Atom(start, first.end, own + first.sentences, context)]
        atoms += [_Atom(a.start, a.end, a.sentences, f"{context} {label}".strip()) for a in rest]
        return atoms

    def list_atoms(self, node: SyntaxTreeNode, lead_in: tuple[int, int] | None) -> list[_Atom]:
        """A list kept with its lead-in; a list that fits in one chunk is also quotable as a whole.

        Quoting the whole list ("Key muscle groups … include:" and its items) answers "which …?"
        questions; a list of bare fragments ("- deadlifts") can only be quoted that way.
        """
        lead_text = self.text[lead_in[0] : lead_in[1]] if lead_in else ""
        group = id(node)
        atoms = [a for item in node.children for a in self.item_atoms(item, lead_text)]
        for atom in atoms:
            atom.group = group
        list_start, list_end = self.span(node)
        start = lead_in[0] if lead_in else list_start
        all_fragments = all(self.item_sentences(item)[1] for item in node.children)
        if list_end - start <= self.max_chars and (lead_in or all_fragments):
            block = Sentence(start, list_end, quotable=True, is_list=True)
            lead = [Sentence(lead_in[0], lead_in[1], quotable=False)] if lead_in else []
            return [_Atom(start, list_end, [*lead, *(s for a in atoms for s in a.sentences), block], "", group)]
        if lead_in is None:
            return atoms
        lead_sentences = split_sentences(lead_text, lead_in[0])
        first, *rest = atoms
        return [_Atom(lead_in[0], first.end, lead_sentences + first.sentences, "", group), *rest]


def _pack(atoms: list[_Atom], max_chars: int) -> Iterator[_Atom]:
    """Greedily merge neighbouring atoms while the merged span stays within ``max_chars``.

    A list item that continues a list (it carries the list's lead-in as context) only joins a chunk
    of its own list, so no chunk starts mid-list without that context.
    """
    current: _Atom | None = None
    for atom in atoms:
        same_list = current is not None and atom.group is not None and atom.group == current.group
        if current is not None and atom.end - current.start <= max_chars and (not atom.context or same_list):
            merged = current.sentences + atom.sentences
            current = _Atom(current.start, atom.end, merged, current.context, atom.group)
            continue
        if current is not None:
            yield current
        current = atom
    if current is not None:
        yield current


def chunk_id(doc_id: str, section: tuple[str, ...], context: str, text: str) -> str:
    """Stable across rebuilds and offset shifts: derived from where the text is and what it says."""
    digest = hashlib.sha256("\x1f".join([doc_id, *section, context, text]).encode()).hexdigest()[:16]
    return f"{doc_id}#{digest}"


def chunk_document(document: Article, max_chars: int = 450) -> list[Chunk]:
    """Structure-aware chunks of one document, in reading order."""
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for section in _Walker(document.text, max_chars).sections():
        for atom in _pack(section.atoms, max_chars):
            text = document.text[atom.start : atom.end]
            cid = chunk_id(document.doc_id, section.path, atom.context, text)
            seen[cid] = seen.get(cid, 0) + 1
            if seen[cid] > 1:  # the same passage twice in one section: keep both, distinctly
                cid = f"{cid}-{seen[cid]}"
            chunks.append(
                Chunk(
                    chunk_id=cid,
                    doc_id=document.doc_id,
                    title=document.title,
                    section=section.path,
                    text=text,
                    start=atom.start,
                    end=atom.end,
                    context=atom.context,
                    sentences=tuple(atom.sentences),
                )
            )
    return chunks
