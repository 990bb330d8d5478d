"""How a sentence works in an article: framing (introducing, restating, concluding), or saying something.

What it says is a cause, a place, an instruction, a verdict or a definition. Generic English cues, not this article's sentences: "Understanding the common causes … can help", "Here's how
to approach it:", "… is key to maximizing effectiveness", "Your muscles will thank you" frame an answer; they
never are one.
"""

from __future__ import annotations

import re
from functools import lru_cache

from bot.language.questions import Kind


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


#: Sentences that introduce, restate or wrap up rather than say something (they never lead, never pad).
FRAMING = _rx(
    r"^(understanding|knowing|learning) (the |how |why |what )|\bcan help (you )?(prevent|understand|ensure)\b.*\b(and|damage|workouts?)\b"
    r"|^here('|’)?s (how|what|why)|^(by|with) (following|focusing|keeping) (these|this|the)\b|^(the good news|in (short|summary|conclusion)|to sum up|overall|ultimately)\b"
    r"|\b(is|are) (key|essential|crucial|vital|critical) to (maximiz|avoid\w* injury and|get\w* the most)|\bplays? a (critical|key|crucial|vital|important) role\b"
    r"|\bwill thank you\b|\b(it('|’)?s|it is) (important|essential|crucial|vital) to (balance|understand|know|consider)\b"
    r"|^(however, )?many (fitness enthusiasts|people|gym ?goers|lifters) (experience|suffer|feel)\b|\bdoesn('|’)?t have to stand in the way\b"
    r"|\bthe key is to\b|\bunlock the (full )?benefits\b|\bthis (article|guide|post)\b|\bread on\b|:\s*$"
)

#: Section headings under which an article wraps up or introduces rather than answers.
CLOSING_HEADINGS = _rx(
    r"\b(final thoughts|conclusion|summary|takeaways?|bottom line|wrapping up|in closing|introduction|overview)\b"
)

#: What a sentence that answers each kind of question says (a cue, not a proof: one signal among several).
ANSWER_CUES: dict[Kind, re.Pattern[str]] = {
    Kind.cause: _rx(
        r"\b(because|due to|caus\w*|lead(s|ing)? to|result(s|ed|ing)? in|contribut\w*|shifts?|increas\w*|put\w* (excessive )?(stress|strain|pressure)"
        r"|(excessive|unnecessary|too much) (stress|strain|force|weight|pressure)|mistakes?|improper|weak\w*|imbalance\w*|overload\w*|overuse|strain on)\b"
    ),
    Kind.place: _rx(
        r"\b(place|placing|position\w*|center|centre|middle|apart|width|wide(r)?|narrow(er)?|high(er)?|low(er)?|stance|spot|edge|top|bottom)\b"
    ),
    Kind.direction: _rx(
        r"\b(forward|outward|inward|toward|straight|point\w*|turn\w*|angle\w*|degrees?|aligned?|alignment|in line|track\w*|collapse)\b"
    ),
    Kind.instruction: _rx(
        r"^(keep|place|press|start|avoid|use|adjust|extend|lower|ensure|position|aim|incorporate|pay attention|try|always|do not|don('|’)?t|maintain|engage|strengthen|reduce|listen|consult|wear|warm|cool|set|push|bring|consider)\b"
    ),
    Kind.stance: _rx(
        r"\b(do not|don('|’)?t|avoid|should|shouldn('|’)?t|is (better|normal|essential|ideal|key)|can (cause|lead|help|increase|contribute)|risk\w*|safe\w*|harm\w*|normal|ideal|better than|rather than)\b"
    ),
    # What sums an article up: its closing advice ("With a focus on proper form, …", "the key is to …").
    Kind.summary: _rx(
        r"^(with a focus on|by (following|focusing|keeping)|overall|in short|the key is|remember)\b|\bthe key is to\b"
    ),
    Kind.definition: _rx(
        r"\b(is|are) (a|an|the)\b|:\s|\b(refers to|means|connects?|supports?|protects?|helps?|assists?|plays?)\b"
    ),
}


@lru_cache(maxsize=16384)  # the articles' sentences, tested for every answer that may quote them
def is_framing(sentence: str) -> bool:
    """Whether ``sentence`` introduces, restates or concludes rather than says something."""
    return FRAMING.search(sentence.strip()) is not None


@lru_cache(maxsize=16384)
def answers_kind(sentence: str, kind: Kind) -> bool:
    """Whether ``sentence`` has the cue of an answer of ``kind`` (always false for kinds without cues)."""
    cue = ANSWER_CUES.get(kind)
    return cue is not None and cue.search(sentence.strip()) is not None
