"""The page's HTML: what people and articles wrote is text, never markup."""

from __future__ import annotations

import pytest

from bot.contract import Answer, Citation, Status
from bot.server.html import SourcedTurn, answer_html, highlighted_passage, partial_html, question_html, sources_html

DISCLAIMER = "Not medical advice."


def citation(n: int = 1, text: str = "Keep feet flat. Do not lock out.", quote: str = "Do not lock out.") -> Citation:
    return Citation(n=n, chunk_id=f"c{n}", doc_id="d", title="Knee Pain", section="Form › Feet", text=text,
                    quote=quote, start=0, end=len(quote))  # fmt: skip


def answer(text: str, status: Status = Status.answered, citations: list[Citation] | None = None) -> Answer:
    return Answer(question="q", status=status, answer=f"{text}\n\n---\n{DISCLAIMER}", disclaimer=DISCLAIMER,
                  citations=citations or [])  # fmt: skip


@pytest.mark.parametrize(
    "typed",
    [
        "<img src=x onerror=alert(1)>",  # an event handler
        "<script>alert(1)</script>",  # a script
        '"><svg onload=alert(1)>',  # breaking out of an attribute
    ],
)
def test_a_question_is_shown_as_text(typed: str) -> None:
    shown = question_html(typed)
    assert "<img" not in shown and "<script" not in shown and "<svg" not in shown
    assert "&lt;" in shown


def test_markup_inside_an_answer_is_escaped_and_images_are_dropped() -> None:
    shown = answer_html(answer("Plain <b onclick=x>bold</b> ![pic](http://example.com/x.png)"), turn=1)
    assert "<b " not in shown and "&lt;b onclick=x&gt;" in shown
    assert "<img" not in shown  # nothing loads from another host


def test_markers_link_to_their_source_in_the_panel() -> None:
    shown = answer_html(answer("Do not lock out. [1] Also [7]", citations=[citation()]), turn=3)
    assert 'href="#src-3-1"' in shown and 'aria-label="Source 1"' in shown
    assert "[7]" in shown and "src-3-7" not in shown  # a number without a citation stays plain text


def test_an_escalation_is_styled_as_a_warning_and_ends_with_the_disclaimer() -> None:
    shown = answer_html(answer("**Please see a doctor.**", Status.escalated), turn=1)
    assert "reply--escalated" in shown and "Medical warning" in shown
    assert shown.index("<strong>Please see a doctor.</strong>") < shown.index(DISCLAIMER)
    assert "---" not in shown


def test_the_html_has_no_newlines_for_the_chat_to_break_on() -> None:
    assert "\n" not in answer_html(answer("Lead [1]\n\n- one [1]\n- two [1]", citations=[citation()]), turn=1)


def test_the_quoted_sentence_is_highlighted_in_its_passage() -> None:
    shown = highlighted_passage(citation(text="**Feet** flat. Do not <lock> out.", quote="Do not <lock> out."))
    assert shown == "Feet flat. <mark>Do not &lt;lock&gt; out.</mark>"


def test_the_sources_panel_lists_each_answer_newest_first_with_anchors() -> None:
    turns = [SourcedTurn(1, answer("a [1]", citations=[citation()])), SourcedTurn(2, answer("none")),
             SourcedTurn(3, answer("b [1]", citations=[citation()]))]  # fmt: skip
    panel = sources_html(turns)
    assert panel.index('id="src-3-1"') < panel.index('id="src-1-1"')
    assert "src-2-" not in panel and "Form › Feet" in panel and "<mark>" in panel


def test_a_reply_still_arriving_is_shown_without_the_disclaimer_separator() -> None:
    shown = partial_html(f"Lead. [1]\n\n---\n{DISCLAIMER}", DISCLAIMER)
    assert "Lead. [1]" in shown and DISCLAIMER not in shown and "<hr" not in shown
