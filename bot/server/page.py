"""The chat page: a Gradio shell over ``Engine.stream``, mounted at ``/`` on the API app.

The conversation lives in a per-visitor ``Conversation`` (Gradio state); the chat, the sources panel and
the feedback box are drawn from it. All HTML comes from ``bot.server.html``, which escapes what people and
articles wrote. ``/?embed=1`` hides the page header for use in an iframe.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from importlib.resources import files
from typing import TYPE_CHECKING, Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr

from bot.contract import Answer
from bot.feedback import MAX_COMMENT_CHARS, Feedback
from bot.policy import DISCLAIMER, EXAMPLE_QUESTIONS
from bot.server.api import NOT_READY_MESSAGE
from bot.server.html import (
    SourcedTurn,
    answer_html,
    notice_html,
    partial_html,
    question_html,
    sources_html,
)
from bot.server.ratelimit import RateLimited

if TYPE_CHECKING:
    from fastapi import FastAPI

    from bot.server.api import Services

TITLE = "Knee-pain coach"
_FAILED = "Sorry — something went wrong while answering. Please try again."
_RATING_FAILED = "Sorry — your rating could not be saved just now. Please try again later."
log = logging.getLogger("bot.server.page")


@dataclass
class Conversation:
    """One visitor's conversation: what the engine needs, what the page shows, and what was rated."""

    #: The chat as shown: alternating question and reply HTML.
    messages: list[dict[str, str]] = field(default_factory=list)
    #: One entry per reply (``None`` for the page's own notices); reply ``k`` is message ``2k + 1``.
    answers: list[Answer | None] = field(default_factory=list)
    #: The last stored rating, which a comment is attached to.
    feedback_id: int | None = None

    def history(self, replies: int | None = None) -> list[dict[str, str]]:
        """Plain-text turns for ``Engine.ask`` (questions as typed, answers' Markdown) before reply ``replies``.

        Derived from the answers, so the page's own notices never shift it out of step with them.
        """
        return [
            message
            for answer in self.answers[:replies]
            if answer is not None
            for message in (
                {"role": "user", "content": answer.question},
                {"role": "assistant", "content": answer.answer},
            )
        ]

    def sourced(self) -> list[SourcedTurn]:
        """The answers that can have sources, numbered as the page numbers them."""
        return [SourcedTurn(i + 1, a) for i, a in enumerate(self.answers) if a is not None]


def _client(request: gr.Request | None) -> str:
    return request.client.host if request is not None and request.client is not None else "unknown"


def build_page(bot: Services) -> gr.Blocks:
    """The page's layout and its event handlers."""

    def respond(message: str, convo: Conversation, request: gr.Request):
        """Show the question at once, then the reply as it arrives, then its sources."""
        message = message or ""
        if not message.strip():
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        convo.messages = [*convo.messages, {"role": "user", "content": question_html(message)},
                          {"role": "assistant", "content": partial_html("", DISCLAIMER)}]  # fmt: skip
        yield convo.messages, "", convo, gr.skip()

        def finish(reply: str, answer: Answer | None) -> Any:
            convo.messages[-1] = {"role": "assistant", "content": reply}
            convo.answers.append(answer)
            return convo.messages, gr.skip(), convo, sources_html(convo.sourced())

        engine = bot.engine
        if engine is None:
            yield finish(notice_html(NOT_READY_MESSAGE), None)
            return
        try:
            bot.limiter.hit(_client(request))
        except RateLimited as limited:
            yield finish(notice_html(limited.message), None)
            return
        text = ""
        try:
            for piece in engine.stream(message, convo.history()):
                if isinstance(piece, Answer):
                    bot.answered(piece)
                    yield finish(answer_html(piece, len(convo.answers) + 1), piece)
                else:
                    text += piece
                    convo.messages[-1] = {"role": "assistant", "content": partial_html(text, DISCLAIMER)}
                    yield convo.messages, gr.skip(), convo, gr.skip()
        except Exception:
            log.exception("answering on the chat page failed")
            yield finish(notice_html(_FAILED), None)

    def rate(convo: Conversation, liked: gr.LikeData):
        """Store a thumbs up/down on a reply, then offer a comment box."""
        index = liked.index if isinstance(liked.index, int) else liked.index[0]
        reply = (index - 1) // 2
        answer = convo.answers[reply] if index % 2 == 1 and 0 <= reply < len(convo.answers) else None
        if answer is None or bot.store is None or bot.engine is None or liked.liked not in (True, False):
            return gr.skip(), gr.skip(), gr.skip(), convo
        rating = "up" if liked.liked is True else "down"
        feedback = Feedback(rating=rating, history=convo.history(reply), answer=answer)
        try:
            convo.feedback_id = bot.store.add(feedback, engine_version=bot.engine.version, channel="page")
        except Exception:  # a full disk or a locked database must not break the page
            log.exception("storing a rating from the chat page failed")
            return gr.skip(), gr.skip(), _RATING_FAILED, convo
        thanks = "Thanks — glad it helped." if rating == "up" else "Thanks — we'll use this to improve the answers."
        return (
            gr.update(visible=True),
            gr.update(value="", label=f"{thanks} Anything to add about answer {reply + 1}? (optional)"),
            f"Your rating of answer {reply + 1} was saved.",
            convo,
        )

    def add_comment(comment: str, convo: Conversation):
        if bot.store is not None and convo.feedback_id is not None and comment.strip():
            try:
                bot.store.add_comment(convo.feedback_id, comment)
            except Exception:
                log.exception("storing a comment from the chat page failed")
                return gr.update(visible=False), "", _RATING_FAILED
            return gr.update(visible=False), "", "Thanks — your comment was saved."
        return gr.update(visible=False), "", ""

    def new_conversation():
        return [], "", Conversation(), sources_html([]), gr.update(visible=False), ""

    with gr.Blocks(title=TITLE, fill_width=False) as page:
        convo = gr.State(Conversation())
        with gr.Column(elem_id="page-header"):
            gr.HTML(
                f"<h1>{TITLE}</h1><p>Ask about knee pain after the leg press. Answers quote fitness articles, "
                "and every number in an answer links to the passage it comes from.</p>",
                padding=False,
            )
        gr.HTML(f'<div role="note" aria-label="Medical disclaimer"><p>{DISCLAIMER}</p></div>', elem_id="disclaimer",
                padding=False)  # fmt: skip
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                chat = gr.Chatbot(
                    label="Conversation",
                    show_label=False,
                    elem_id="chat",
                    height=480,
                    render_markdown=False,
                    sanitize_html=True,
                    latex_delimiters=[],
                    feedback_options=("Like", "Dislike"),
                    buttons=["copy"],
                    placeholder="Your conversation with the coach appears here.",
                    autoscroll=True,
                )
                question = gr.Textbox(
                    label="Your question",
                    placeholder="e.g. Why do my knees hurt after leg day?",
                    elem_id="question",
                    lines=1,
                    max_lines=6,
                    max_length=bot.settings.max_question_chars,
                    submit_btn=False,
                    autofocus=True,
                )
                with gr.Row():
                    send = gr.Button("Ask", variant="primary", elem_id="ask", scale=2, min_width=100)
                    restart = gr.Button("New conversation", elem_id="new-conversation", scale=1, min_width=100)
                with gr.Group(visible=False, elem_id="feedback-box") as feedback_box:
                    comment = gr.Textbox(label="Anything to add? (optional)", lines=2, max_length=MAX_COMMENT_CHARS,
                                         elem_id="feedback-comment")  # fmt: skip
                    send_comment = gr.Button("Send comment", size="sm", elem_id="send-comment")
                feedback_note = gr.Markdown("", elem_id="feedback-note")
                gr.Markdown("**Try asking:**")
                with gr.Column(elem_id="examples"):
                    examples = [gr.Button(q, size="sm", variant="secondary") for q in EXAMPLE_QUESTIONS]
            with gr.Column(scale=2, min_width=280):
                gr.Markdown("### Sources")
                sources = gr.HTML(sources_html([]), elem_id="sources-panel", padding=False)

        outputs = [chat, question, convo, sources]
        common: dict[str, Any] = {"outputs": outputs, "show_progress": "hidden", "concurrency_id": "answers"}
        question.submit(respond, [question, convo], api_visibility="private", **common)
        send.click(respond, [question, convo], api_visibility="private", **common)
        for button in examples:
            button.click(lambda q=button.value: q, None, question, queue=False, api_visibility="private").then(
                respond, [question, convo], api_visibility="private", **common
            )
        restart.click(new_conversation, None, [chat, question, convo, sources, feedback_box, feedback_note],
                      queue=False, api_visibility="private")  # fmt: skip
        chat.like(rate, [convo], [feedback_box, comment, feedback_note, convo], api_visibility="private")
        send_comment.click(add_comment, [comment, convo], [feedback_box, comment, feedback_note],
                           api_visibility="private")  # fmt: skip
        comment.submit(add_comment, [comment, convo], [feedback_box, comment, feedback_note],
                       api_visibility="private")  # fmt: skip

        def ask(message: str, history: list[dict[str, str]], request: gr.Request) -> dict[str, Any]:
            """Answer ``message`` in the context of ``history`` ({"role", "content"} turns): the Answer JSON."""
            if bot.engine is None:
                raise gr.Error(NOT_READY_MESSAGE)
            try:
                bot.limiter.hit(_client(request))
            except RateLimited as limited:
                raise gr.Error(limited.message) from None
            answer = bot.engine.ask(message, history or [])
            bot.answered(answer)
            return answer.model_dump(mode="json")

        gr.api(ask, api_name="ask", concurrency_id="answers")
    page.queue(default_concurrency_limit=bot.settings.worker_threads)
    return page


def mount_page(app: FastAPI, bot: Services) -> Any:
    """Mount the chat page at ``/`` on ``app`` (after the API routes, which keep precedence); returns its app.

    Gradio's start-up (its queue) is left to the caller: the page is mounted after the server started.
    """
    web = files("bot.web")
    gr.mount_gradio_app(
        app,
        build_page(bot),
        path="/",
        footer_links=[],
        run_history=False,
        show_error=False,
        ssr_mode=False,
        mcp_server=False,
        enable_monitoring=False,
        pwa=False,
        theme=gr.themes.Default(primary_hue="blue"),
        css=web.joinpath("page.css").read_text(encoding="utf-8"),
        head=f"<script>{web.joinpath('page.js').read_text(encoding='utf-8')}</script>",
    )
    return app.router.routes[-1].app  # type: ignore[attr-defined]  # the Mount just added
