"""Reading the question: what was asked, resolved against the conversation, in the article's words too.

Sentences that instruct the bot are dropped, a short follow-up is joined to the question it continues, and
gym words are widened with the article's words. Every later stage works from the resulting ``Query``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.content.synonyms import Synonyms
from bot.contract import Message
from bot.language.conversation import Intent, intent_of
from bot.language.vocabulary import ANAPHORA, OFF_TOPIC, in_domain, own_words, topic_words
from bot.language.words import content_words
from bot.stages.state import AnswerState, Query
from bot.stages.triage import without_negated_symptoms

# A short turn that opens like this, or leans on a pronoun, continues the previous question.
_FOLLOW_UP_OPENERS = re.compile(
    r"^\s*(and|but|so|or|also|then|plus|what about|how about|what if|why|why not|how come|is that|"
    r"does that|should i still|can i still|ok(ay)?|really|what else|anything else|how many|how much|"
    r"how long|how often|how far|how high|how low|how wide|by how (much|many|far)|to what (extent|degree)|like how|"
    r"for how (long|many|much|often)|what happens|"
    r"when|same|even|instead)\b",
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


_CITED = re.compile(r"\[\d+\]")
#: A turn this short, right after a question about the knee, is read as part of that conversation's topic.
_MAX_TOPIC_CONTINUATION_WORDS = 8


@dataclass(frozen=True)
class Reading:
    """The question made standalone against the conversation, and what the conversation says about it."""

    standalone: str
    is_follow_up: bool = False
    continues_topic: bool = False


def _conversation_context(history: Sequence[Message]) -> str:
    """The (resolved) question the conversation is about, or "" when the last one was not about the knee.

    Conversational turns ("thanks", "tell me more") neither start nor end a topic.
    """
    context = ""
    for position, message in enumerate(history):
        text = without_instructions(message.content) if message.role == "user" else ""
        if not text:
            continue
        intent = intent_of(text)
        if intent is not Intent.question:
            continue
        reply = history[position + 1] if position + 1 < len(history) else None
        # The bot quoted the articles in reply: it was a question about the knee, whatever its words.
        answered = reply is not None and reply.role == "assistant" and _CITED.search(reply.content) is not None
        continues = context and is_follow_up(text)
        context = f"{context} {text}" if continues else (text if in_domain(text) or answered else "")
    return context


def resolve(question: str, history: Sequence[Message], intent: Intent = Intent.question) -> Reading:
    """The question made standalone by prefixing the (resolved) question it follows up on.

    Only a question the bot could answer is carried forward: after an off-topic question, the next
    one starts afresh. "Tell me more" is the question it continues.
    """
    context = _conversation_context(history)
    if context and intent is Intent.more:
        return Reading(context, is_follow_up=True, continues_topic=True)
    if context and is_follow_up(question):
        return Reading(f"{context} {question.strip()}", is_follow_up=True, continues_topic=True)
    short = len(question.split()) <= _MAX_TOPIC_CONTINUATION_WORDS
    return Reading(question.strip(), continues_topic=bool(context) and short and not OFF_TOPIC.search(question))


def build_query(question: str, history: Sequence[Message], synonyms: Synonyms) -> Query:
    """The retrieval query for this turn of the conversation."""
    asked = without_instructions(question)
    intent = intent_of(asked) if asked else Intent.question
    reading = resolve(asked, history, intent) if asked else Reading("")
    said = next((m.content for m in reversed(history) if m.role == "assistant"), "")
    searched = intent is Intent.question or (intent is Intent.more and reading.is_follow_up)
    return Query(
        question=question,
        asked=asked,
        standalone=reading.standalone,
        search_text=synonyms.expand(without_negated_symptoms(reading.standalone)) if searched else "",
        is_follow_up=reading.is_follow_up,
        intent=intent,
        continues_topic=reading.continues_topic,
        already_said=said if intent is Intent.more else "",
        previous_reply=said if reading.is_follow_up else "",
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
