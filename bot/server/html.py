"""HTML for the chat page: answers with linked ``[n]`` markers, and the sources panel with highlighted quotes.

Everything a person or an article wrote is escaped here, once; the page inserts only what these functions
return. Markdown is rendered by markdown-it with raw HTML turned off, so ``<img onerror=…>`` typed into a
question or hidden in an article comes out as text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from markdown_it import MarkdownIt

from bot import policy
from bot.contract import Answer, Citation, Status

# ``breaks``: a line break in an answer (a list's lead-in and its items) stays a line break.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False, "breaks": True})
_MARKDOWN.disable("image")
_MARKER = re.compile(r"\[(\d+)\]")
_EMPHASIS = re.compile(r"\*\*|__")

#: Heading and class of each kind of reply; the class carries the styling (escalation as a warning).
STATUS_CLASS = {
    Status.answered: "reply--answered",
    Status.escalated: "reply--escalated",
    Status.out_of_scope: "reply--out-of-scope",
    Status.not_found: "reply--not-found",
    Status.invalid: "reply--invalid",
    # A greeting or a question about the bot reads as an ordinary reply.
    Status.chat: "reply--chat",
}


def source_id(turn: int, n: int) -> str:
    """The element id of source ``n`` of answer ``turn`` in the sources panel."""
    return f"src-{turn}-{n}"


def split_disclaimer(text: str, disclaimer: str) -> str:
    """The reply without the trailing ``---`` and disclaimer (the page shows the disclaimer on its own)."""
    body = text.removesuffix(disclaimer).rstrip()
    return body.removesuffix("---").rstrip()


def markdown_html(text: str) -> str:
    """Markdown as HTML with raw HTML escaped and images dropped, on one line (the chat keeps newlines)."""
    return _MARKDOWN.render(text).replace("\n", "")


def question_html(text: str) -> str:
    """What the person typed, as text: escaped, line breaks kept."""
    return f'<p class="question-text">{html.escape(text).replace(chr(10), "<br>")}</p>'


def _link_markers(body_html: str, turn: int, numbers: set[int]) -> str:
    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in numbers:
            return match.group(0)
        return f'<a class="cite" href="#{source_id(turn, n)}" aria-label="Source {n}">[{n}]</a>'

    return _MARKER.sub(link, body_html)


def answer_html(answer: Answer, turn: int) -> str:
    """A reply for the conversation: its Markdown as HTML, ``[n]`` linked to the sources, then the disclaimer."""
    body = markdown_html(split_disclaimer(answer.answer, answer.disclaimer))
    body = _link_markers(body, turn, {c.n for c in answer.citations})
    label = ""
    if answer.status is Status.escalated:
        label = f'<p class="reply-label" role="note">{html.escape(policy.MEDICAL_WARNING_LABEL)}</p>'
    return (
        f'<div class="reply {STATUS_CLASS[answer.status]}" data-status="{answer.status.value}">{label}{body}'
        f'<p class="reply-disclaimer">{html.escape(answer.disclaimer)}</p></div>'
    )


def partial_html(text: str, disclaimer: str) -> str:
    """A reply still arriving: the text so far, without links yet."""
    body = split_disclaimer(text, disclaimer).removesuffix("---").rstrip()
    return f'<div class="reply reply--pending" aria-busy="true">{markdown_html(body) if body else "…"}</div>'


def notice_html(text: str) -> str:
    """A message from the page itself (e.g. too many questions), not from the engine."""
    return f'<div class="reply reply--notice"><p>{html.escape(text)}</p></div>'


def highlighted_passage(citation: Citation) -> str:
    """The cited passage as text, with the quoted sentence(s) marked."""
    text, quote = citation.text, citation.quote
    at = text.find(quote) if quote else -1

    def plain(part: str) -> str:  # the passage's Markdown, shown as text without emphasis markers
        return html.escape(_EMPHASIS.sub("", part))

    if at < 0:
        return plain(text)
    before, after = text[:at], text[at + len(quote) :]
    return f"{plain(before)}<mark>{plain(quote)}</mark>{plain(after)}"


@dataclass(frozen=True)
class SourcedTurn:
    """One answer of the conversation, numbered from 1, for the sources panel."""

    turn: int
    answer: Answer


def sources_html(turns: Sequence[SourcedTurn]) -> str:
    """The sources panel: every cited passage of the conversation, newest answer first."""
    sections = []
    newest = max((item.turn for item in turns if item.answer.citations), default=None)
    for item in reversed(turns):
        if not item.answer.citations:
            continue
        entries = []
        for citation in item.answer.citations:
            entries.append(
                f'<li class="source" id="{source_id(item.turn, citation.n)}" tabindex="-1">'
                f'<p class="source-where"><span class="source-n">[{citation.n}]</span> {html.escape(citation.title)} › '
                f'<span class="source-section">{html.escape(citation.section)}</span></p>'
                f'<blockquote class="source-text">{highlighted_passage(citation)}</blockquote></li>'
            )
        heading_id = f"sources-{item.turn}"
        sections.append(
            f'<details class="source-group"{" open" if item.turn == newest else ""}>'
            f'<summary><h3 id="{heading_id}">Answer {item.turn}: “{html.escape(_shorten(item.answer.question))}”</h3>'
            f'</summary><ol class="source-list" aria-labelledby="{heading_id}">{"".join(entries)}</ol></details>'
        )
    if not sections:
        return f'<div class="sources"><p class="sources-empty">{html.escape(policy.SOURCES_EMPTY)}</p></div>'
    return f'<div class="sources">{"".join(sections)}</div>'


def _shorten(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
