"""The chat page and the widget in a real headless Chromium, against the real server on loopback.

Screenshots of each scenario go to test-artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bot.feedback import FeedbackStore
from bot.policy import DISCLAIMER
from tests.conftest import ARTIFACTS

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
#: The rules checked: WCAG 2.0 and 2.1, levels A and AA.
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

WAIT_MS = 60_000
XSS = "<img src=x onerror=alert(1)> why do my knees hurt"


@pytest.fixture
def open_page(browser, live_server):
    """A fresh browser page at a given width that records every request it makes and every dialog."""
    pages = []

    def open_(path: str = "/", *, width: int = 1280, base: str | None = None):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        page.requests, page.dialogs = [], []
        page.on("request", lambda request: page.requests.append(request.url))
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        page.set_default_timeout(WAIT_MS)
        page.goto((base or live_server.url) + path, wait_until="domcontentloaded")
        pages.append(context)
        return page

    yield open_
    for context in pages:
        context.close()


def ask_on_page(page, question: str, replies_before: int) -> None:
    page.get_by_label("Your question").fill(question)
    page.get_by_label("Your question").press("Enter")
    page.locator("#chat .reply:not(.reply--pending)").nth(replies_before).wait_for()


def hosts(urls: list[str]) -> set[str]:
    return {urlsplit(url).hostname or "" for url in urls if not url.startswith(("data:", "blob:"))}


@pytest.mark.parametrize("width", [1280, 375])
def test_the_page_answers_with_a_clickable_source_and_the_disclaimer(open_page, width: int) -> None:
    page = open_page(width=width)
    disclaimer = page.locator("#disclaimer")
    disclaimer.wait_for()
    assert DISCLAIMER in disclaimer.inner_text()
    ask_on_page(page, "Where should my feet go on the leg press?", 0)
    reply = page.locator("#chat .reply--answered").first
    assert "shoulder-width" in reply.inner_text() and DISCLAIMER in reply.inner_text()
    marker = reply.locator("a.cite").first
    target = marker.get_attribute("href").removeprefix("#")
    marker.click()
    source = page.locator(f"#{target}")
    assert source.evaluate("node => node === document.activeElement") and source.locator("mark").count() == 1
    assert disclaimer.is_visible() and page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=ARTIFACTS / f"page-answer-{width}.png", full_page=width > 400)
    assert hosts(page.requests) == {"127.0.0.1"}  # fonts, scripts, styles: nothing from another host


def test_a_follow_up_is_answered_in_the_context_of_the_conversation(open_page) -> None:
    page = open_page()
    ask_on_page(page, "Where should my feet go on the leg press?", 0)
    ask_on_page(page, "and what if I put them higher?", 1)
    follow_up = page.locator("#chat .reply").nth(1).inner_text()
    assert "hamstrings" in follow_up or "hip" in follow_up
    assert page.locator("#sources-panel .source-group").count() == 2
    page.screenshot(path=ARTIFACTS / "page-follow-up.png", full_page=True)
    page.get_by_role("button", name="New conversation").click()
    page.locator("#chat .reply").first.wait_for(state="detached")
    assert page.locator("#sources-panel .source-group").count() == 0


def test_a_red_flag_reply_is_styled_as_a_warning(open_page) -> None:
    page = open_page()
    ask_on_page(page, "I heard a pop in my knee on the leg press and it swelled up straight away", 0)
    warning = page.locator("#chat .reply--escalated")
    text = warning.inner_text()
    assert "Please get this checked by a doctor" in text and "medical warning" in text.lower()
    border = warning.evaluate("node => getComputedStyle(node).borderLeftColor")
    assert border == "rgb(180, 83, 9)" and warning.evaluate("node => getComputedStyle(node).borderLeftWidth") == "8px"
    page.screenshot(path=ARTIFACTS / "page-red-flag.png")


def test_out_of_scope_replies_offer_example_questions_that_can_be_asked(open_page) -> None:
    page = open_page()
    ask_on_page(page, "What's the capital of Papua New Guinea?", 0)
    assert "You could ask" in page.locator("#chat .reply--out-of-scope").inner_text()
    # (Examples that open like a follow-up — "Is it …", "How often …" — are still read as continuing the
    # off-topic question by the engine's follow-up rule; see the closing notes of issue 4.)
    page.get_by_role("button", name="Where should my feet go on the leg press?").click()
    page.locator("#chat .reply--answered").wait_for()


def test_feedback_with_a_comment_is_stored(open_page, live_settings) -> None:
    page = open_page()
    ask_on_page(page, "How long should I rest between leg press sessions?", 0)
    page.locator("#chat").get_by_role("button", name="Dislike").first.click()
    page.get_by_label(re.compile("Anything to add")).fill("I wanted a number of days")
    page.get_by_role("button", name="Send comment").click()
    page.get_by_text("your comment was saved").wait_for()
    page.screenshot(path=ARTIFACTS / "page-feedback.png")
    store = FeedbackStore.open(live_settings.data_dir, retention_days=30)
    row = next(r for r in reversed(store.rows()) if r.question == "How long should I rest between leg press sessions?")
    assert (row.rating, row.comment, row.channel, row.status) == (-1, "I wanted a number of days", "page", "answered")
    assert row.citations and "+index." in row.engine_version


def test_markup_in_a_question_is_shown_as_text_and_runs_nothing(open_page) -> None:
    page = open_page()
    page.evaluate("() => { window.alert = () => { window.__alerted = true; }; }")
    ask_on_page(page, XSS, 0)
    chat = page.locator("#chat")
    assert XSS in chat.inner_text() and chat.locator("img[src='x']").count() == 0
    time.sleep(0.5)
    assert page.dialogs == [] and page.evaluate("window.__alerted === undefined")
    assert "plain text" in page.locator("#chat .reply--invalid").inner_text()
    page.screenshot(path=ARTIFACTS / "page-markup-as-text.png")


def test_the_embed_mode_hides_the_page_chrome_inside_an_allowed_sites_iframe(open_page, gym_sites) -> None:
    page = open_page("/framed.html", base=gym_sites["allowed"].url)
    frame = page.frame_locator("#coach")
    frame.locator("#disclaimer").wait_for()
    frame.locator("#chat").wait_for()  # Gradio draws its components one by one: the disclaimer may come first
    assert frame.locator("#page-header").is_hidden() and frame.locator("#chat").count() == 1
    page.screenshot(path=ARTIFACTS / "iframe-embed.png")


def test_a_site_not_on_the_list_cannot_frame_the_page(open_page, gym_sites) -> None:
    page = open_page("/framed.html", base=gym_sites["stranger"].url)
    time.sleep(3)
    frame = next(f for f in page.frames if f != page.main_frame)
    assert frame.locator("#disclaimer").count() == 0  # Chromium blocked it (frame-ancestors)


def widget_ask(page, question: str) -> None:
    page.locator("#knee-coach-widget textarea").fill(question)
    page.locator("#knee-coach-widget textarea").press("Enter")


@pytest.mark.parametrize("width", [1280, 375])
def test_the_widget_on_an_allowed_gym_site_gets_a_cited_answer(open_page, gym_sites, live_server, width: int) -> None:
    page = open_page(base=gym_sites["allowed"].url, width=width)
    page.get_by_role("button", name="Ask our coach").click()
    widget_ask(page, "Why do my knees hurt after leg day?")
    reply = page.locator("#knee-coach-widget .msg.bot.answered")
    reply.wait_for()
    assert DISCLAIMER in reply.inner_text()
    reply.locator("button.cite").first.click()
    source = reply.locator(".source").first
    assert source.is_visible() and source.locator("mark").count() == 1
    assert source.evaluate("node => node.getRootNode().activeElement === node")
    color = reply.evaluate("node => getComputedStyle(node).color")
    assert color != "rgb(204, 0, 0)"  # the gym's CSS does not reach into the widget
    widget_ask(page, "and how do I fix that?")
    page.locator("#knee-coach-widget .msg.bot").nth(1).locator("[data-status]").or_(
        page.locator("#knee-coach-widget .msg.bot[data-status]").nth(1)).wait_for()  # fmt: skip
    page.screenshot(path=ARTIFACTS / f"widget-answer-{width}.png")
    assert hosts(page.requests) == {"127.0.0.1"} and {urlsplit(u).port for u in page.requests} <= {
        urlsplit(gym_sites["allowed"].url).port, urlsplit(live_server.url).port}  # fmt: skip


def test_the_widget_keeps_the_conversation_for_the_visit(open_page, gym_sites) -> None:
    page = open_page(base=gym_sites["allowed"].url)
    page.get_by_role("button", name="Ask our coach").click()
    widget_ask(page, "Do knee sleeves help?")
    page.locator("#knee-coach-widget .msg.bot[data-status]").wait_for()
    page.reload(wait_until="domcontentloaded")
    page.get_by_role("button", name="Ask our coach").click()
    assert "Do knee sleeves help?" in page.locator("#knee-coach-widget .log").inner_text()


def test_the_widget_on_a_site_not_on_the_list_says_it_isnt_available_there(open_page, gym_sites) -> None:
    page = open_page(base=gym_sites["stranger"].url)
    page.get_by_role("button", name="Ask our coach").click()
    widget_ask(page, "Why do my knees hurt after leg day?")
    notice = page.locator("#knee-coach-widget .msg.bot.notice")
    notice.wait_for()
    assert "isn't available on this site" in notice.inner_text()  # not "can't be reached": the bot is up
    assert page.locator("#knee-coach-widget .msg.bot.answered").count() == 0
    page.screenshot(path=ARTIFACTS / "widget-refused.png")


def test_markup_typed_into_the_widget_is_shown_as_text(open_page, gym_sites) -> None:
    page = open_page(base=gym_sites["allowed"].url)
    page.evaluate("() => { window.alert = () => { window.__alerted = true; }; }")
    page.get_by_role("button", name="Ask our coach").click()
    widget_ask(page, XSS)
    page.locator("#knee-coach-widget .msg.bot.invalid").wait_for()
    log = page.locator("#knee-coach-widget .log")
    assert XSS in log.inner_text() and log.locator("img").count() == 0
    assert page.dialogs == [] and page.evaluate("window.__alerted === undefined")
    page.screenshot(path=ARTIFACTS / "widget-markup-as-text.png")


def axe_violations(page, context: str = "document") -> list[dict]:
    """axe-core's WCAG 2.1 A/AA violations on ``page`` (within ``context``, a script expression)."""
    page.add_script_tag(path=str(AXE))
    options = {"runOnly": {"type": "tag", "values": WCAG_21_AA}, "resultTypes": ["violations"]}
    result = page.evaluate(f"options => axe.run({context}, options)", options)
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
            for v in result["violations"]]  # fmt: skip


@pytest.mark.parametrize("width", [1280, 375])
def test_the_chat_page_with_an_answer_passes_wcag_21_aa(open_page, width: int) -> None:
    page = open_page(width=width)
    ask_on_page(page, "Where should my feet go on the leg press?", 0)
    page.locator("#chat .reply--answered a.cite").first.click()  # the sources panel open, a quote marked
    assert axe_violations(page) == []


def test_the_widget_with_an_answer_passes_wcag_21_aa(open_page, gym_sites) -> None:
    page = open_page(base=gym_sites["allowed"].url)
    page.get_by_role("button", name="Ask our coach").click()
    widget_ask(page, "I heard a pop in my knee and it swelled up")  # the warning-styled reply
    page.locator("#knee-coach-widget .msg.bot[data-status]").wait_for()
    # The gym's own page is deliberately careless (its CSS hides buttons): only the widget is checked.
    assert axe_violations(page, "{include: [['#knee-coach-widget']]}") == []
