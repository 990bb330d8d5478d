"""What kind of answer a question asks for, and for a number, which unit answers it.

A cause, a number, a place, an instruction, a yes-or-no stance, a definition, or a list (causes, ways,
exercises, injuries). The composer leads with a sentence of that kind. Readable pattern tables, like triage's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Kind(str, Enum):
    """The kind of answer a question asks for."""

    cause = "cause"
    number = "number"
    place = "place"
    direction = "direction"
    instruction = "instruction"
    stance = "stance"
    definition = "definition"
    listing = "listing"
    summary = "summary"
    other = "other"


class Unit(str, Enum):
    """What a number question counts or measures."""

    frequency = "frequency"
    duration = "duration"
    repetitions = "repetitions"
    share = "share"
    angle = "angle"


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# Order matters: the first kind whose pattern matches is the question's kind.
_KINDS: tuple[tuple[Kind, re.Pattern[str]], ...] = (
    (
        Kind.listing,
        _rx(
            r"\b(what|which) (are|r) (the |some )?(common |main |best |usual |typical |other |good )?(causes|reasons|ways|tips|steps|signs|symptoms|options|alternatives|exercises|injuries|conditions|mistakes|muscles|problems)\b"
            r"|\b(causes|reasons|ways|tips|steps|alternatives|mistakes) (of|for|to|that)\b|\b(list|name)( me)? (the|some|all)\b"
            r"|\bhow (can|do|could|should) i (fix|sort out|cure) (it|this|that|them)\b"
            r"|\bwhat (else )?(can|could|should) i do (instead|to prevent|to avoid|to stop)\b"
            # "how do I stop my knees hurting?" asks for the ways; "how do I stop my knees caving in?" for one fix
            r"|\bhow (can|do|could|should|would) (i|you|one) (prevent|avoid|stop)( (my|the|any|getting|having))? (knee |knees )?(from )?(pain|hurting|hurt|injur\w*|sore\w*|aches?|it|this|that)\b"
            r"|\b(other|alternative|different|substitute) (exercises?|movements?|options?)\b|\binstead of (the )?leg press\b"
            r"|\b(what|which) (\w+ )?(muscles|injuries|conditions|problems|mistakes|alternatives|exercises)\b|\bprevent\w* (knee )?(pain|injur\w*)\b"
            r"|\b(swaps?|substitutes?|replacements?|alternatives?)\b"
        ),
    ),
    (
        Kind.summary,
        _rx(
            r"\b(tl;? ?dr|in short|in a nutshell|main thing|key (thing|takeaway|point)s?|takeaways?|bottom line|big picture|"
            r"general rules?|sum (it )?up|summar\w*|the gist)\b"
        ),
    ),
    (
        Kind.number,
        _rx(
            r"\bhow (often|many|long|frequently|far|deep|much (rest|time))\b|\bwhat (percent(age)?|%|rep range|angle|degree)\b"
            r"|\b(how many|what number of) (times|days|reps|sets|hours)\b|\btimes (a|per) week\b|\bper week\b"
        ),
    ),
    (
        Kind.direction,
        _rx(
            r"\bwhich (way|direction)\b|\b(point|pointed|pointing|turn|turned|turning|angle|angled)\b|\b(in or out|out or in|straight or (out|in)|straight ahead)\b"
            r"|\bcave in\b|\bcollaps\w*\b|\b(track|tracking)\b"
        ),
    ),
    (
        Kind.place,
        _rx(
            r"\bwhere\b|\b(what|which) (position|stance|width|placement|spot)\b"
            r"|\bhow (high|low|wide|far apart|close)\b|\b(high|low|wide|narrow)(er)? or (high|low|wide|narrow)(er)?\b"
        ),
    ),
    (
        Kind.cause,
        _rx(
            r"\bwhy\b|\bhow come\b|\bwhat (causes|caused|is causing|makes|made|could cause)\b|\bcause[sd]?\b|\breason\b|\bwhat'?s (wrong|causing)\b"
            r"|\bfrom what\b|\bdue to\b"
        ),
    ),
    (
        Kind.instruction,
        _rx(
            r"\bhow (do|should|can|could|would|to|are you supposed to) (i |you |one )?\w+|\bwhat'?s the (right|proper|correct|best|safe) way\b"
            r"|\b(proper|correct|right|good) (form|technique|way)\b|\btips?\b|\bsteps?\b|\bset ?up\b|\bwhat should i do\b"
        ),
    ),
    (
        Kind.definition,
        _rx(
            r"^\s*(so )?(what|wat|wut)('?s| is| are| does| do| r)\b|\bwhat (does|do) (the |my )?[\w -]+ do\b|\bwhat'?s (the |my )?[\w -]+ for\b"
            r"|\bmeaning of\b|\bdefine\b"
        ),
    ),
    (
        Kind.stance,
        _rx(
            r"^\s*(so |and |but |ok |okay )?(is|are|am|does|do|did|should|shall|can|could|will|would|was|were|must|may|isn'?t|doesn'?t|don'?t|shouldn'?t)\b"
            r"|\b(is it|is that|ok|okay|fine|safe|bad|normal|good|worth|better|worse|harmful|dangerous|necessary)\b"
        ),
    ),
)

_UNITS: tuple[tuple[Unit, re.Pattern[str], re.Pattern[str]], ...] = (
    # (unit, what asks for it, what states it)
    (
        Unit.frequency,
        _rx(
            r"\bhow (often|frequently)\b|\bhow many (times|days) (a|per|each|every) week\b|\btimes (a|per) week\b|\bper week\b"
            r"|\bevery (single )?day\b|\bdaily\b|\bback to back\b|\b(two|2) days in a row\b"
        ),
        _rx(
            r"\b(\d+(-\d+)?|once|twice|one|two|three|four)\s*(times|x|days?)?\s*(a|per|each|every)\s*week\b|\bdaily\b|\bevery (day|other day)\b"
        ),
    ),
    (
        Unit.duration,
        _rx(r"\bhow long\b|\bhow much (rest|time)\b|\bhow many (hours|days|minutes|weeks)\b"),
        _rx(r"\b\d+(-\d+)?\s*(seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?)\b"),
    ),
    (
        Unit.angle,
        _rx(r"\b(what|which) (angle|degree)\b|\bdegrees?\b|\bdegress\b"),
        _rx(r"\b\d+(-\d+)?\s*(-?\s*degrees?|°)"),
    ),
    (
        Unit.repetitions,
        _rx(r"\bhow many (reps|repetitions|sets|rounds)\b|\brep range\b|\bhow many\b"),
        _rx(r"\b\d+(-\d+)?\s*(reps|repetitions|sets)\b|\brep range of \d+"),
    ),
    (
        Unit.share,
        _rx(r"\bwhat (percent(age)?|%)\b|\bhow (much|heavy)\b.*\b(weight|load|1rm|max)\b|\bintensity\b"),
        _rx(r"\d+(-\d+)?\s*%|\bpercent\b|\b1rm\b"),
    ),
)


@dataclass(frozen=True)
class Asked:
    """The kind of answer a question asks for, and the unit when it asks for a number."""

    kind: Kind
    unit: Unit | None = None

    @property
    def strict(self) -> bool:
        """Whether only a sentence that states the number answers it (how often, how long, how many reps …)."""
        return self.unit in {Unit.frequency, Unit.duration, Unit.repetitions, Unit.angle}


def asked_for(question: str) -> Asked:
    """The kind (and unit) of answer ``question`` asks for."""
    text = " ".join(question.split())
    kind = next((kind for kind, pattern in _KINDS if pattern.search(text)), Kind.other)
    unit = next((unit for unit, asks, _ in _UNITS if asks.search(text)), None)
    if unit is not None and kind in {Kind.number, Kind.stance, Kind.other, Kind.instruction}:
        return Asked(Kind.number, unit)
    return Asked(kind, None)


_HOW_MUCH = _rx(r"^\s*(and |so |but )?(by )?how (much|far)\b|\bby how (much|many degrees|far)\b")


def asked_in_continuation(turn: str, continued: Asked) -> Asked | None:
    """What a short "by how much?" asks for, after a question of the kind ``continued``: the angle of a direction.

    "should my toes point out?" — "by how much?" asks for the degrees; ``None`` when the turn is no such question.
    """
    if continued.kind is Kind.direction and _HOW_MUCH.search(turn):
        return Asked(Kind.number, Unit.angle)
    return None


def states_unit(text: str, unit: Unit) -> bool:
    """Whether ``text`` states a number in ``unit`` ("2-3 times per week" for a frequency)."""
    return next(states.search(text) is not None for u, _, states in _UNITS if u is unit)
