"""Turn what the user typed into what retrieval searches for: follow-ups resolved, article words added."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from bot.contract import Message
from bot.stages.triage import in_domain, topic_words

# A short turn that opens like this, or leans on a pronoun, continues the previous question.
_FOLLOW_UP_OPENERS = re.compile(
    r"^\s*(and|but|so|or|also|then|plus|what about|how about|what if|why|why not|how come|is that|"
    r"does that|should i still|can i still|ok(ay)?|really|what else|anything else|how many|how much|"
    r"how long|how often|how far|how high|how low|how wide|when|same|even|instead)\b",
    re.IGNORECASE,
)
_ANAPHORA = re.compile(
    r"\b(it|its|that|this|them|they|those|these|there|one|ones|higher|lower|wider|narrower|closer|"
    r"further|more|less|other|instead|else)\b",
    re.IGNORECASE,
)
_MAX_FOLLOW_UP_WORDS = 10
# A turn that says this much of its own is a new question, even if it says "it" or "how often".
_MAX_OWN_WORDS = 3
_MAX_OWN_TOPIC_WORDS = 1
_FUNCTION_WORD_LIST = (
    "a an the and but or so if then than of to in on at by for with about from as into is are was were be been "
    "am do does did doing have has had i me my mine we our you your he she his her they them their it its this "
    "that these those there here what which who whom whose when where why how can could should would will shall "
    "may might must not no yes just really very too also even still ok okay please"
)
_FUNCTION_WORDS = frozenset(_FUNCTION_WORD_LIST.split())
# "Is it ok to …?" uses a dummy "it": the question that follows is complete on its own.
_DUMMY_IT = re.compile(
    r"\b(is|was|isn'?t|would|will) it (be )?(ok|okay|bad|safe|normal|fine|good|worth|better|worse|possible|"
    r"necessary|true|smart|wise|dangerous|harmful|common|alright|all right) (to|if|for|that|when)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z0-9']+")


def _own_words(text: str) -> list[str]:
    """The words of ``text`` that say something of their own: no function words, pronouns or comparatives."""
    return [w for w in _WORD.findall(text.lower()) if w not in _FUNCTION_WORDS and not _ANAPHORA.fullmatch(w)]


def substantive_words(text: str) -> set[str]:
    """The stemmed words of ``text`` that carry its subject (its own words, stemmed for overlap)."""
    from bot.language.words import content_words

    return content_words(" ".join(_own_words(text)))


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


@dataclass(frozen=True)
class Query:
    """One question, ready for retrieval."""

    question: str
    #: The question without sentences that try to instruct the bot (empty if that was all it was).
    asked: str
    #: ``asked`` with the conversation it continues, when it is a follow-up.
    standalone: str
    #: ``standalone`` plus the article's words for the user's words (see ``synonyms.yaml``).
    search_text: str
    is_follow_up: bool = False
    #: A chat model's standalone version of a follow-up: searched for and answered, never triaged.
    rewritten: str | None = None


@dataclass(frozen=True)
class Synonyms:
    """User words → the article's words, compiled once."""

    rules: tuple[tuple[str, re.Pattern[str]], ...] = ()

    def expand(self, text: str) -> str:
        """``text`` followed by the article's word for every user word it contains."""
        lowered = text.lower()
        additions = [
            article_words
            for article_words, pattern in self.rules
            if pattern.search(text) and article_words.lower() not in lowered
        ]
        return f"{text} ({'; '.join(additions)})" if additions else text


@lru_cache(maxsize=8)
def load_synonyms(path: Path) -> Synonyms:
    """Read a synonyms YAML file (``article words: [user words, …]``); a missing file means none."""
    if not path.is_file():
        return Synonyms()
    mapping = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(mapping, dict):
        raise ValueError(f"{path.name}: expected 'article words: [user words, ...]' lines.")
    rules = []
    for article_words, user_words in mapping.items():
        variants = [user_words] if isinstance(user_words, str) else list(user_words or [])
        alternatives = "|".join(re.escape(str(v)).replace(r"\ ", r"[\s-]+") for v in variants)
        if alternatives:
            pattern = rf"(?<!\w)({alternatives})(e?s)?(?!\w)"  # plural-tolerant, whole words only
            rules.append((str(article_words), re.compile(pattern, re.IGNORECASE)))
    return Synonyms(tuple(rules))


def is_follow_up(question: str) -> bool:
    """Whether a turn reads as a continuation of the previous one rather than a new question.

    It is short, opens like a continuation or leans on a pronoun, and says little of its own:
    "and what if I put them higher?" is a follow-up, "Is it bad to lock my knees at the top?" is not.
    """
    words = question.split()
    if not words or len(words) > _MAX_FOLLOW_UP_WORDS:
        return False
    if not (_FOLLOW_UP_OPENERS.search(question) or _ANAPHORA.search(_DUMMY_IT.sub(" ", question))):
        return False
    own = _own_words(question)
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
