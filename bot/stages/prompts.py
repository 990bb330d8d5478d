"""What a chat model is asked: to write from numbered facts, or to rewrite a follow-up as a standalone question.

The member's words are always quoted as data, so they cannot pose as instructions.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from bot.contract import Message

_SYSTEM = "You are a helpful assistant. You answer briefly and cite passages like [1]."
_INSTRUCTIONS = "Answer in 2-3 short sentences. After each sentence write the passage number in brackets, like [2]."


def _quoted(text: str) -> str:
    # The user's words are data: quoted, and unable to close the quotes.
    return '"' + " ".join(text.replace('"', "'").split()) + '"'


def build_messages(question: str, facts: Sequence[str]) -> list[BaseMessage]:
    """The prompt: numbered passages, the question (quoted, as data) and the rules, in one user turn.

    Small models follow instructions in the last user turn far better than in a system message, so the
    passages and the rules go there. The question is the standalone one (a follow-up already carries
    its context), so no conversation is needed.
    """
    passages = "\n".join(f"[{n}] {fact}" for n, fact in enumerate(facts, start=1))
    content = f"Passages:\n{passages}\n\nQuestion: {_quoted(question)}\n{_INSTRUCTIONS}"
    return [SystemMessage(content=_SYSTEM), HumanMessage(content=content)]


def rewrite_messages(question: str, history: Sequence[Message]) -> list[BaseMessage]:
    """A prompt asking for the follow-up ``question`` as one standalone question."""
    recent = [m for m in history if m.content.strip()][-4:]
    conversation = "\n".join(
        f"{'Member' if m.role == 'user' else 'Assistant'}: {_quoted(m.content[:300])}" for m in recent
    )
    return [
        SystemMessage(content="You rewrite follow-up questions so they can be understood on their own."),
        HumanMessage(
            content=f"Conversation:\n{conversation}\n\nFollow-up question: {_quoted(question)}\n\n"
            "Rewrite the follow-up as one complete question that makes sense without the conversation. "
            "Reply with the question only."
        ),
    ]
