"""The chat page: a Gradio shell over the request policy (``answering``), served at ``/`` on the API app.

The conversation lives in a per-visitor ``Conversation`` (Gradio state); the chat, the sources panel and
the feedback box are drawn from it. All HTML comes from ``bot.server.html``, which escapes what people and
articles wrote. ``/?embed=1`` hides the page header for use in an iframe. Questions asked here are limited,
queued for an answer slot and refused exactly as on the API (``answering``, ``errors.refusal``).

Importing this module imports Gradio (seconds): the app imports it only once it is serving.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import anyio
import gradio as gr
from fastapi import FastAPI

from bot import policy
from bot.contract import Answer, make_readable
from bot.feedback import MAX_COMMENT_CHARS, Feedback
from bot.server import answering
from bot.server.errors import FeedbackUnavailable, NotReady, StoreUnavailable, refusal
from bot.server.html import SourcedTurn, answer_html, notice_html, partial_html, question_html, sources_html
from bot.server.placeholder import PageSlot
from bot.server.ratelimit import RateLimited
from bot.server.services import Services

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
        """Plain-text turns for the engine (questions as typed, answers' Markdown) before reply ``replies``.

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


class Handlers:
    """The page's event handlers; every question and rating goes through ``answering``.

    The page is the bot's own, so its questions count against the client's limits but no site's daily cap.
    The gate has counted each event already (``answering.admit_page`` only looks it up); a refused one never
    gets here, and nothing of a question is kept before it is admitted.
    """

    def __init__(self, services: Services) -> None:
        self.services = services

    async def respond(self, message: str, convo: Conversation, request: gr.Request) -> AsyncIterator[Any]:
        """Show the question at once, then the reply as it arrives, then its sources (or why there is none)."""
        # The question box stops at the limit; anything longer is answered "too long" from its first part.
        message = (message or "")[: self.services.settings.max_question_chars + 1]
        if not message.strip():
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        shown = {"role": "user", "content": question_html(make_readable(message))}
        try:
            loaded = answering.admit_page(self.services, request)
        except Exception as error:  # refused: shown, but nothing of it is kept in the conversation
            refused = refusal(error)
            if refused is None:
                raise
            notice = {"role": "assistant", "content": notice_html(refused.message)}
            yield [*convo.messages, shown, notice], "", convo, gr.skip()
            return
        convo.messages = [*convo.messages, shown,
                          {"role": "assistant", "content": partial_html("", policy.DISCLAIMER)}]  # fmt: skip
        yield convo.messages, "", convo, gr.skip()

        def finish(reply: str, answer: Answer | None) -> Any:
            convo.messages[-1] = {"role": "assistant", "content": reply}
            convo.answers.append(answer)
            return convo.messages, gr.skip(), convo, sources_html(convo.sourced())

        text = ""
        try:
            async with aclosing(answering.stream(self.services, loaded, message, convo.history())) as pieces:
                async for piece in pieces:
                    if isinstance(piece, Answer):
                        yield finish(answer_html(piece, len(convo.answers) + 1), piece)
                    else:
                        text += piece
                        convo.messages[-1] = {"role": "assistant", "content": partial_html(text, policy.DISCLAIMER)}
                        yield convo.messages, gr.skip(), convo, gr.skip()
        except Exception as error:
            refused = refusal(error)
            if refused is None:
                log.exception("answering on the chat page failed")
            yield finish(notice_html(refused.message if refused else policy.PAGE_ANSWER_FAILED), None)

    async def ask(self, message: str, history: list[dict[str, str]], request: gr.Request) -> dict[str, Any]:
        """Answer ``message`` in the context of ``history`` ({"role", "content"} turns): the Answer JSON."""
        history = history if isinstance(history, list) else []
        try:
            loaded = answering.admit_page(self.services, request)
            answer = await answering.answer(self.services, loaded, message, history)
        except Exception as error:
            refused = refusal(error)
            if refused is None:
                raise
            raise gr.Error(refused.message) from None
        return answering.served(self.services, answer, history).model_dump(mode="json")

    def rate(self, convo: Conversation, liked: gr.LikeData, request: gr.Request) -> Any:
        """Store a thumbs up/down on a reply, then offer a comment box."""
        index = liked.index if isinstance(liked.index, int) else liked.index[0]
        reply = (index - 1) // 2
        answer = convo.answers[reply] if index % 2 == 1 and 0 <= reply < len(convo.answers) else None
        if answer is None or liked.liked not in (True, False):
            return gr.skip(), gr.skip(), gr.skip(), convo
        rating = "up" if liked.liked is True else "down"
        feedback = Feedback(rating=rating, history=convo.history(reply), answer=answer)
        try:
            answering.admit_page(self.services, request, rating=True)
            convo.feedback_id = answering.rate(self.services, feedback, channel="page")
        except (NotReady, StoreUnavailable):  # not loaded: there is nothing to rate yet
            return gr.skip(), gr.skip(), gr.skip(), convo
        except RateLimited as error:
            return gr.skip(), gr.skip(), error.message, convo
        except FeedbackUnavailable:  # logged where it happened; a full disk must not break the page
            return gr.skip(), gr.skip(), policy.PAGE_RATING_FAILED, convo
        except Exception:
            log.exception("storing a rating from the chat page failed")
            return gr.skip(), gr.skip(), policy.PAGE_RATING_FAILED, convo
        return (
            gr.update(visible=True),
            gr.update(value="", label=policy.comment_prompt(policy.RATING_THANKS[rating], reply + 1)),
            policy.rating_saved(reply + 1),
            convo,
        )

    def add_comment(self, comment: str, convo: Conversation, request: gr.Request) -> Any:
        """Attach the comment to the last rating."""
        if convo.feedback_id is None or not comment.strip():
            return gr.update(visible=False), "", ""
        try:
            answering.admit_page(self.services, request, rating=True)
            answering.comment(self.services, convo.feedback_id, make_readable(comment[:MAX_COMMENT_CHARS]))
        except (NotReady, StoreUnavailable):
            return gr.update(visible=False), "", ""
        except RateLimited as error:
            return gr.update(visible=False), "", error.message
        except FeedbackUnavailable:
            return gr.update(visible=False), "", policy.PAGE_RATING_FAILED
        except Exception:
            log.exception("storing a comment from the chat page failed")
            return gr.update(visible=False), "", policy.PAGE_RATING_FAILED
        return gr.update(visible=False), "", policy.COMMENT_SAVED

    @staticmethod
    def new_conversation() -> Any:
        """Start over: an empty chat, sources panel and feedback box."""
        return [], "", Conversation(), sources_html([]), gr.update(visible=False), ""


def build_page(services: Services) -> gr.Blocks:
    """The page's layout, wired to its ``Handlers``."""
    handlers = Handlers(services)
    with gr.Blocks(title=policy.PAGE_TITLE, fill_width=False) as page:
        convo = gr.State(Conversation())
        with gr.Column(elem_id="page-header"):
            gr.HTML(f"<h1>{policy.PAGE_TITLE}</h1><p>{policy.PAGE_INTRO}</p>", padding=False)
        gr.HTML(f'<div role="note" aria-label="{policy.DISCLAIMER_LABEL}"><p>{policy.DISCLAIMER}</p></div>',
                elem_id="disclaimer", padding=False)  # fmt: skip
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                chat = gr.Chatbot(
                    label=policy.CHAT_LABEL,
                    show_label=False,
                    elem_id="chat",
                    height=480,
                    render_markdown=False,
                    sanitize_html=True,
                    latex_delimiters=[],
                    feedback_options=("Like", "Dislike"),
                    buttons=["copy"],
                    placeholder=policy.CHAT_PLACEHOLDER,
                    autoscroll=True,
                )
                question = gr.Textbox(
                    label=policy.QUESTION_LABEL,
                    placeholder=policy.QUESTION_PLACEHOLDER,
                    elem_id="question",
                    lines=1,
                    max_lines=6,
                    max_length=services.settings.max_question_chars,
                    submit_btn=False,
                    autofocus=True,
                )
                with gr.Row():
                    send = gr.Button(policy.ASK_BUTTON, variant="primary", elem_id="ask", scale=2, min_width=100)
                    restart = gr.Button(policy.NEW_CONVERSATION_BUTTON, elem_id="new-conversation", scale=1,
                                        min_width=100)  # fmt: skip
                with gr.Group(visible=False, elem_id="feedback-box") as feedback_box:
                    comment = gr.Textbox(label=policy.COMMENT_LABEL, lines=2, max_length=MAX_COMMENT_CHARS,
                                         elem_id="feedback-comment")  # fmt: skip
                    send_comment = gr.Button(policy.SEND_COMMENT_BUTTON, size="sm", elem_id="send-comment")
                feedback_note = gr.Markdown("", elem_id="feedback-note")
                gr.Markdown(f"**{policy.EXAMPLES_HEADING}**")
                with gr.Column(elem_id="examples"):
                    examples = [gr.Button(q, size="sm", variant="secondary") for q in policy.EXAMPLE_QUESTIONS]
            with gr.Column(scale=2, min_width=280):
                gr.Markdown(f"### {policy.SOURCES_HEADING}")
                sources = gr.HTML(sources_html([]), elem_id="sources-panel", padding=False)

        outputs = [chat, question, convo, sources]
        common: dict[str, Any] = {"outputs": outputs, "show_progress": "hidden", "concurrency_id": "answers"}
        respond = handlers.respond
        question.submit(respond, [question, convo], api_visibility="private", **common)
        send.click(respond, [question, convo], api_visibility="private", **common)
        for button in examples:
            button.click(lambda q=button.value: q, None, question, queue=False, api_visibility="private").then(
                respond, [question, convo], api_visibility="private", **common
            )
        restart.click(handlers.new_conversation, None, [chat, question, convo, sources, feedback_box, feedback_note],
                      queue=False, api_visibility="private")  # fmt: skip
        chat.like(handlers.rate, [convo], [feedback_box, comment, feedback_note, convo], api_visibility="private")
        comment_outputs = [feedback_box, comment, feedback_note]
        send_comment.click(handlers.add_comment, [comment, convo], comment_outputs, api_visibility="private")
        comment.submit(handlers.add_comment, [comment, convo], comment_outputs, api_visibility="private")
        gr.api(handlers.ask, api_name="ask", concurrency_id="answers")
    # A bounded queue: the gate limits each client, this bounds them all (Gradio's default is unbounded).
    page.queue(default_concurrency_limit=services.settings.worker_threads, max_size=_QUEUE_SIZE)
    return page


#: Events waiting for an answer slot, at most; more are told the page is busy (503).
_QUEUE_SIZE = 256


def event_kinds(blocks: gr.Blocks) -> tuple[dict[int, str], dict[str, str]]:
    """What each of the page's events does — ``ask``, ``rate`` or ``free`` — by ``fn_index``, and by public API name.

    Read off the handlers the events call, so a new event is counted by what its handler does.
    """
    kinds = {"respond": "ask", "ask": "ask", "rate": "rate", "add_comment": "rate"}
    events, apis = {}, {}
    for index, function in blocks.fns.items():
        handler = function.fn
        owner = getattr(handler, "__self__", None)
        events[index] = kinds.get(getattr(handler, "__name__", ""), "free") if isinstance(owner, Handlers) else "free"
        if handler is not None and getattr(handler, "__name__", "") == "ask" and function.api_name == "ask":
            apis["ask"] = events[index]
    return events, apis


def build_app(services: Services) -> FastAPI:
    """The chat page as an ASGI app of its own (Gradio's ``App``), to be served at ``/``."""
    web = files("bot.web")
    # Gradio configures a page and builds its app only while mounting it on a FastAPI app: it gets a host
    # app of its own, and what it built is served at "/" by the PageSlot (see ``run``).
    host = FastAPI()
    gr.mount_gradio_app(
        host,
        build_page(services),
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
    page: FastAPI = host.routes[-1].app  # type: ignore[attr-defined]  # the Mount just added
    return page


async def run(services: Services, slot: PageSlot, stopping: anyio.Event) -> None:
    """Build the page (in a worker thread: a second of CPU), serve it at ``slot`` and run it until ``stopping``."""
    page: Any = await anyio.to_thread.run_sync(build_app, services)
    async with page.router.lifespan_context(page):  # what Gradio's mount would run at start-up
        blocks = page.get_blocks()
        _calm_queue(blocks)
        blocks.run_startup_events()
        await blocks.run_extra_startup_events()
        events, apis = event_kinds(blocks)
        slot.serve(page, events=events, apis=apis)
        log.info("The chat page is ready.")
        await stopping.wait()


#: How often Gradio's queue looks for a new event of the page while it has none. Its own default is every
#: millisecond: a thousand wake-ups of the event loop a second, 4 % of a core with nobody on the page, taken
#: from the API's answers under load. Every 10 ms is still soon for an event that starts an answer.
QUEUE_POLL_SECONDS = 0.01
#: How often it looks for progress to report (every 10 ms by default): the page reports none (``show_progress``
#: is hidden, no handler tracks progress).
PROGRESS_POLL_SECONDS = 0.1


def _calm_queue(blocks: Any) -> None:
    """Gradio's queue, polling less often when idle (its attributes, if this Gradio has them)."""
    queue = getattr(blocks, "_queue", None)
    for name, seconds in (("sleep_when_free", QUEUE_POLL_SECONDS),
                          ("progress_update_sleep_when_free", PROGRESS_POLL_SECONDS)):  # fmt: skip
        if queue is not None and getattr(queue, name, seconds) < seconds:
            setattr(queue, name, seconds)
