"""Whether the articles answer a question at all: the comparison it asks for, and the things it names.

"Is leg press or squat better for bad knees?" is answered only by a sentence that weighs the two against each
other; "what brand of knee sleeves should I buy?" only by an article that names brands. When the best
sentence doesn't, the honest reply is "not covered" (with the closest thing they do say, labelled as such).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from bot.language.discourse import answers_kind
from bot.language.questions import Kind
from bot.language.vocabulary import FUNCTION_WORDS
from bot.language.words import analyze, content_words
from bot.stages.compose.candidates import GENERIC_WORDS

_COMPARISON = re.compile(
    r"\b(better|worse|safer|harder|easier|more effective|less effective|best|preferable|superior)\b.*\b(or|vs\.?|versus|than)\b"
    r"|\b(or|vs\.?|versus|than)\b.*\b(better|worse|safer|harder|easier|more effective|best)\b"
    r"|\bcompared? (to|with)\b|\bwhich is (better|worse|safer|best)\b|\b(vs\.?|versus)\b.*\bfor (my |the |bad |sore )?knees?\b",
    re.IGNORECASE,
)
_COMPARING = re.compile(r"\b(better|worse|safer|more|less|rather|instead|compared|versus|vs|than)\b", re.IGNORECASE)
_COMPARED = re.compile(
    r"\b(?:is|are|should i (?:do|use|go with)|do|would)?\s*(?P<a>[\w' -]+?)\s+(?:or|vs\.?|versus|than)\s+(?P<b>[\w' -]+?)"
    r"(?=\s+(?:better|worse|safer|for|on|when|if|to)\b|[?.!,]|$)",
    re.IGNORECASE,
)
# Words about the asking, not about the thing asked.
_ASKING = content_words("better worse safer harder easier effective best which should would could can option choice")
#: Words the articles never need to contain for a question to be answerable (chatty, or about the member).
_INCIDENTAL = content_words(
    "hey hi hello thanks please coach guys guy someone anyone friend friends im ive dont doesnt cant wont isnt lol "
    "yesterday today tomorrow week weeks month months year years morning evening night tonight kinda sorta like"
)
_WORD = re.compile(r"[a-z]+")


def compared_terms(question: str) -> tuple[set[str], set[str]] | None:
    """The two things a comparison weighs (as content words), or ``None`` when the question compares nothing."""
    if not _COMPARISON.search(question):
        return None
    match = _COMPARED.search(question)
    if match is None:
        return None
    # Generic words stay: "leg press or squat" compares the leg press itself.
    a = content_words(match.group("a")) - _ASKING
    b = content_words(match.group("b")) - _ASKING
    return (a, b) if a and b else None


def makes_comparison(terms: tuple[set[str], set[str]], texts: Iterable[str]) -> bool:
    """Whether one of ``texts`` weighs the things compared.

    It must name one of them and say how it compares or what it does ("a wide stance … can lead to outside of the
    knee pain", "… rather than the toes"). The subject every question has ("the leg press" in "leg press or
    squat?") does not count: then the other thing must be weighed.
    """
    specific = [side - GENERIC_WORDS for side in terms if side - GENERIC_WORDS]
    for text in texts:
        words = content_words(text)
        named = any(words & side for side in specific) if specific else True
        if named and (_COMPARING.search(text) or answers_kind(text, Kind.stance)):
            return True
    return False


def _edits(word: str) -> set[str]:
    """Every word one letter away (deleted, swapped, replaced or inserted): how a typo differs from a word."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    letters = string.ascii_lowercase
    deletes = {a + b[1:] for a, b in splits if b}
    swaps = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in letters}
    inserts = {a + c + b for a, b in splits for c in letters}
    return deletes | swaps | replaces | inserts


def _known_or_typo(word: str, known: Callable[[str], bool]) -> bool:
    """Whether the articles use ``word``, or a word one letter away from it (a common word, if it was one)."""
    stems = analyze(word)
    if not stems or known(stems[0]):
        return True
    for variant in _edits(word):
        if variant in FUNCTION_WORDS:  # "wher", "shoud": a typo of a word such as "where" or "should"
            return True
        variant_stems = analyze(variant)
        if not variant_stems or known(variant_stems[0]):  # no stem: a typo of a word such as "what" or "should"
            return True
    return False


def unknown_words(question: str, known: Callable[[str], bool], covered: Callable[[str], bool]) -> list[str]:
    """The question's words that the articles never use, nor anything one letter away (a typo of a word they do).

    ``known`` says whether the articles use a stemmed word; ``covered`` whether a member's word has an article
    word for it (``synonyms.yaml``: "sled" is the leg press).
    """
    unknown = []
    for word in dict.fromkeys(_WORD.findall(question.lower())):
        if len(word) < 4 or word in FUNCTION_WORDS or covered(word):
            continue
        stems = analyze(word)
        if stems and (stems[0] in _INCIDENTAL or stems[0] in GENERIC_WORDS):
            continue
        if not _known_or_typo(word, known):
            unknown.append(word)
    return unknown


def saliences(
    question: str, words: Sequence[str], embed_many: Callable[[list[str]], Sequence[np.ndarray]]
) -> list[float]:
    """How much each of ``words`` carries of the question's meaning: 1 - cos(question, question without it).

    An ordinary word ("actually", "supposed") barely moves the question's vector (below 0.05 on the eval
    questions); what a question is about ("pregnant", "calories", "shoes") moves it by 0.1 or more. The question
    and every question-without-a-word are embedded in one call.
    """
    withouts = [re.sub(rf"\b{re.escape(word)}\b", " ", question, flags=re.IGNORECASE) for word in words]
    whole, *rests = np.asarray(embed_many([question, *withouts]), dtype=np.float64)
    moved = []
    for rest in rests:
        norms = float(np.linalg.norm(whole) * np.linalg.norm(rest)) or 1.0
        moved.append(1.0 - float(whole @ rest) / norms)
    return moved
