"""Reading the question: what was asked, resolved against the conversation, in the article's words too.

Sentences that instruct the bot are dropped, a short follow-up is joined to the question it continues, and
gym words are widened with the article's words. Every later stage works from the resulting ``Query``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.content.synonyms import Synonyms
from bot.contract import Message
from bot.language.vocabulary import ANAPHORA, in_domain, own_words, topic_words
from bot.language.words import content_words
from bot.stages.state import AnswerState, Query

# A short turn that opens like this, or leans on a pronoun, continues the previous question.
_FOLLOW_UP_OPENERS = re.compile(
    r"^\s*(and|but|so|or|also|then|plus|what about|how about|what if|why|why not|how come|is that|"
    r"does that|should i still|can i still|ok(ay)?|really|what else|anything else|how many|how much|"
    r"how long|how often|how far|how high|how low|how wide|when|same|even|instead)\b",
    re.IGNORECASE,
)
_MAX_FOLLOW_UP_WORDS = 10
# A turn that says this much of its own is a new question, even if it says "it" or "how often".
_MAX_OWN_WORDS = 3
_MAX_OWN_TOPIC_WORDS = 1
# "Is it ok to …?" uses a dummy "it": the question that follows is complete on its own.
_DUMMY_IT = re.compile(
    r"\b(is|was|isn'?t|would|will) it (be )?(ok|okay|bad|safe|normal|fine|good|worth|better|worse|possible|"
    r"necessary|true|smart|wise|dangerous|harmful|common|alright|all right) (to|if|for|that|when)\b",
    re.IGNORECASE,
)


def substantive_words(text: str) -> set[str]:
    """The stemmed words of ``text`` that carry its subject (its own words, stemmed for overlap)."""
    return content_words(" ".join(own_words(text)))


_INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(instructions?|rules?|prompts?|disclaimers?|guidelines|"
    r"above|previous|system)\b"
    r"|\b(you are now|act as|pretend (to be|you are)|role-?play|from now on|new instructions|system prompt|"
    r"developer mode|jailbreak)\b"
    r"|\b(repeat|say|print|output|write|append|add|include|respond with|reply with|tell me)\b.{0,60}"
    r"\b(words?|lines?|text|times|poems?|jokes?|story|links?|urls?|songs?|code|essay)\b"
    r"|\b(drop|remove|omit|skip|leave out|without|no)\b.{0,20}\bdisclaimers?\b"
    r"|\bdo not (tell me to|mention|recommend|say|add|include)\b|\bdon'?t (tell me to|mention|recommend|add|include)\b",
    re.IGNORECASE,
)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")


def without_instructions(text: str) -> str:
    """``text`` minus the sentences that try to instruct the bot: they are never obeyed, nor searched for."""
    sentences = [s for s in _SENTENCE_BREAK.split(text) if s.strip()]
    return " ".join(s for s in sentences if not _INSTRUCTION.search(s)).strip()


def is_follow_up(question: str) -> bool:
    """Whether a turn reads as a continuation of the previous one rather than a new question.

    It is short, opens like a continuation or leans on a pronoun, and says little of its own:
    "and what if I put them higher?" is a follow-up, "Is it bad to lock my knees at the top?" is not.
    """
    words = question.split()
    if not words or len(words) > _MAX_FOLLOW_UP_WORDS:
        return False
    if not (_FOLLOW_UP_OPENERS.search(question) or ANAPHORA.search(_DUMMY_IT.sub(" ", question))):
        return False
    own = own_words(question)
    return len(own) <= _MAX_OWN_WORDS and topic_words(" ".join(own)) <= _MAX_OWN_TOPIC_WORDS


def resolve(question: str, history: Sequence[Message]) -> tuple[str, bool]:
    """The question made standalone by prefixing the (resolved) question it follows up on.

    Only a question the bot could answer is carried forward: after an off-topic question, the next
    one starts afresh.
    """
    context = ""
    for message in history:
        text = without_instructions(message.content) if message.role == "user" else ""
        if not text:
            continue
        continues = context and is_follow_up(text)
        context = f"{context} {text}" if continues else (text if in_domain(text) else "")
    if context and is_follow_up(question):
        return f"{context} {question.strip()}", True
    return question.strip(), False


def build_query(question: str, history: Sequence[Message], synonyms: Synonyms) -> Query:
    """The retrieval query for this turn of the conversation."""
    asked = without_instructions(question)
    standalone, follow_up = resolve(asked, history) if asked else ("", False)
    return Query(
        question=question,
        asked=asked,
        standalone=standalone,
        search_text=synonyms.expand(standalone),
        is_follow_up=follow_up,
    )


class ReadQuestion:
    """Builds the ``Query`` for this turn of the conversation."""

    name = "query"

    def __init__(self, synonyms: Synonyms) -> None:
        self.synonyms = synonyms

    def applies(self, state: AnswerState) -> bool:
        """Unless screening already refused the input."""
        return state.verdict is None

    def run(self, state: AnswerState) -> AnswerState:
        """Read the question in the context of the recent conversation."""
        state.query = build_query(state.question, state.history, self.synonyms)
        return state
