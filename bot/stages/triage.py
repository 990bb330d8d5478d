"""Safety triage: escalate red flags, refuse what is off-topic or not covered, and nothing else decides a status.

Everything here is a readable table of patterns so a clinician can review it. Triage reads the question
once, after retrieval (how close the best passage is counts for scope); the only later change to a status
is the named narrowing at the end of this module: an ``answered`` question with nothing quotable is
``not_found``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.contract import Status
from bot.language.conversation import Intent
from bot.language.vocabulary import DOMAIN, OFF_TOPIC, language_is_english
from bot.stages.state import AnswerState, Draft, Query, Verdict

# -- red flags -----------------------------------------------------------------------------------

# Negated symptoms ("no swelling", "without any numbness", "doesn't lock or give way") are removed before
# matching: the negation covers a whole list of symptoms joined by commas, "or", "and" or "nor".
_SYMPTOM = (
    r"(swelling|swollen|swell(s|ed|ing)?|fever|numbness|numb|tingling|tingl(e|es|ed)|pop(s|ped|ping)?|"
    r"lock(s|ed|ing)?( up)?|catch(es|ing)?|giv(e|es|ing) (way|out)|gave (way|out)|buckl(e|es|ed|ing)|"
    r"redness|warmth|instability|unstable)"
)
_NEGATED = re.compile(
    r"\b(not (like|as if|that) (my |the )?(knee|knees|leg)|no|not|without|never|nor|zero|isn'?t|wasn'?t|aren'?t|weren'?t|"
    r"don'?t|doesn'?t|didn'?t|haven'?t|hasn'?t|hadn'?t|won'?t|free of)"
    r"(\s+(have|has|had|been|got|get|feel|felt|notice|noticed|see|seen|really|it|any|a|much|real|obvious|signs? of))*"
    rf"\s+{_SYMPTOM}((\s*,\s*|\s*,?\s+(or|and|nor)\s+)(any\s+|a\s+|no\s+)?{_SYMPTOM})*\b",
    re.IGNORECASE,
)
_SWELLING = r"(swell\w*|swollen|puff\w*|balloon\w*|blew up|blown up|huge|ballooned|fluid)"

#: (reason, pattern, what the warning calls it). Order matters only for which reason is reported.
RED_FLAGS: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (reason, re.compile(pattern, re.IGNORECASE), phrase)
    for reason, pattern, phrase in (
        (
            "pop_swelling",
            rf"\b(pop\w*|snap\w*|crack(ed)?|tore|tear|ripped)\b.*\b{_SWELLING}\b|\b{_SWELLING}\b.*\b(pop\w*|snap\w*)\b",
            "A pop followed by swelling",
        ),
        (
            "cannot_bear_weight",
            r"\b(can'?t|cannot|can ?not|unable to|couldn'?t|not able to|too painful to|hurts too much to)\b[^.?!]{0,25}"
            r"\b(bear weight|put (any |much )?weight|weight on|stand on|walk|stand up|step on)\b",
            "Not being able to put weight on the leg",
        ),
        (
            "locking",
            r"\block(s|ed|ing)? up\b|\b(keeps?|kept) locking\b|\b(gets?|got|getting|is|was) stuck\b|"
            r"\b(knees?|it) (locks|locked)\b(?! out)|\bcan'?t (fully )?(straighten|bend)\b|\bwon'?t (fully )?(straighten|bend)\b|"
            r"\bcatch(es|ing) and lock",
            "A knee that locks or gets stuck",
        ),
        (
            "giving_way",
            r"\b(giv(es|ing)|gave|give) (way|out)\b|\bbuckl(e|es|ed|ing)\b(?!\s+(in|inward|inwards|inside)\b)|"
            r"\bcollaps(es|ed|ing) under\b|\bunstable\b|\bgives out\b",
            "A knee that gives way",
        ),
        (
            "hot_swollen_or_fever",
            rf"\bfever\w*|\bchills\b|\b(hot|warm|red)\b[^.?!]{{0,30}}\b{_SWELLING}\b|\b{_SWELLING}\b[^.?!]{{0,30}}\b(hot|warm|red)\b",
            "A hot, swollen knee or a fever",
        ),
        (
            "numbness",
            r"\bnumb\w*|\btingl\w*|pins and needles|\bcan'?t feel (my |the )?(foot|feet|toes|leg|knee)\b|\bdead leg\b",
            "Numbness or tingling",
        ),
        (
            "swollen_calf",
            rf"\bcal(f|ves)\b[^.?!]{{0,40}}\b{_SWELLING}\b|\b{_SWELLING}\b[^.?!]{{0,40}}\bcal(f|ves)\b",
            "A swollen, painful calf",
        ),
        (
            "deformity",
            r"\bdeform\w*|\bout of place\b|\bdislocat\w*|\bpopped out\b|\bbent the wrong way\b|\blooks (wrong|weird|misshapen|crooked)\b|"
            r"\b(knee ?cap|patella)\b[^.?!]{0,40}\b(off to the side|to the side|sideways|out of line|shifted|moved|slipped|popped out)\b|"
            r"\bsideways\b",
            "A knee that looks deformed or out of place",
        ),
        (
            "pain_at_rest_or_night",
            r"\b(at night|at rest|while resting|when resting|when i rest|in bed|lying down)\b[^.?!]{0,30}\b(worse|hurts?|pain\w*|throb\w*|ach\w*)\b|"
            r"\b(worse|hurts?|pain\w*|throb\w*|ach\w*)\b[^.?!]{0,40}\b(at night|at rest|while resting|when resting|when i rest|in bed|lying down)\b|"
            r"\bwakes? me( up)?\b|\bkeeps? me (up|awake)\b|\b(can'?t|cannot) sleep\b",
            "Pain that gets worse at rest or at night",
        ),
    )
)


def without_negated_symptoms(text: str) -> str:
    """``text`` without the symptoms it says are absent ("no swelling or locking"): never searched for, nor flagged."""
    return " ".join(_NEGATED.sub(" ", text).split())


def red_flag(text: str) -> Verdict | None:
    """An ``escalated`` verdict when ``text`` describes a symptom that needs prompt medical care."""
    cleaned = _NEGATED.sub(" ", text)
    for reason, pattern, phrase in RED_FLAGS:
        if pattern.search(cleaned):
            return Verdict(Status.escalated, f"red_flag:{reason}", phrase)
    return None


# -- not covered ---------------------------------------------------------------------------------

NOT_COVERED: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (topic, re.compile(pattern, re.IGNORECASE))
    for topic, pattern in (
        (
            "medication",
            r"\b(ibuprofen|advil|motrin|naproxen|aleve|aspirin|tylenol|acetaminophen|paracetamol|pain ?killers?|"
            r"nsaids?|anti-?inflammator\w*|medication\w*|medicines?|meds|pills?|tablets?|doses?|dosage|dosing|\d*\s?mg|"
            r"milligrams?|prescri\w*|opioids?|steroids?|voltaren|diclofenac|creams?|gels?|supplements?|glucosamine|"
            r"collagen|turmeric|how much .* take)\b",
        ),
        (
            "injection",
            r"\b(injections?|inject\w*|cortisone|prp|platelet[- ]rich|hyaluronic|(steroid|gel|cortisone|knee) shots?)\b",
        ),
        (
            "home_treatment",
            r"\b(ice|icing|iced|ice ?packs?|cold packs?|heat packs?|heating pads?|hot packs?|heat therapy|cold therapy|"
            r"cryotherapy|ice baths?|heat or ice|ice or heat|compression wraps?)\b",
        ),
        (
            "products",
            r"\b(brands?|prices?|how much (is|are|do|does)\b.*\bcost|costs?|amazon|best (ones?|products?|model|pair) to (buy|get)|"
            r"where (can|do|should) i (get|buy|find) (a|an|some|the|good)|which (one|model|pair|kind|type|make) (should i|to) (get|buy)|"
            r"recommend (a|any|some) (products?|brands?|sleeves?|braces?|shoes?)|nike|adidas|rehband|under armour)\b",
        ),
        (
            "healing_time",
            r"\b(how long|how soon|when)\b[^.?!]{0,40}\b(heal\w*|recover(y|ed|ing)? from|gets? better|go(es)? away|stops? hurting|"
            r"feels? better|back to normal|back to (training|the gym|leg press\w*|lifting))\b|\bhealing time\b",
        ),
        (
            "population",
            r"\b(i'?m|i am|im) \d{2}\b.*\b(safe|ok|okay|fine|too old|good for me|bad for me)\b|\btoo old (for|to)\b|"
            r"\b(safe|ok|okay|fine|good|bad) (for|at) (my age|seniors?|the elderly|older (people|adults|lifters)|kids|teens|"
            r"teenagers|children|\d{2}( year olds?)?)\b|\b(while|when) (i'?m |i am )?pregnant\b|\bpregnan\w*\b",
        ),
        (
            "surgery",
            r"\b(surgery|surgeries|surgical|surgeon|operation|operate\w*|arthroscop\w*|reconstruction|"
            r"knee replacement|meniscectomy|scope)\b",
        ),
        (
            "diagnosis",
            r"\b(diagnos\w*|mri|x-?rays?|scan|ultrasound)\b|"
            r"\b(do i have|have i got|is it|is this|could it be|could this be|might it be|am i|did i)\b[^.?!]{0,40}"
            r"\b(torn|tear|rupture\w*|fracture\w*|broken|break|arthritis|bursitis|meniscus|acl|mcl|pcl|sprain\w*|"
            r"chondromalacia|tendinitis|tendonitis|syndrome)\b",
        ),
    )
)


def not_covered(text: str) -> Verdict | None:
    """A ``not_found`` verdict for in-domain topics the articles deliberately do not cover."""
    for topic, pattern in NOT_COVERED:
        if pattern.search(text):
            return Verdict(Status.not_found, f"not_covered:{topic}", topic)
    return None


def classify(query: Query, *, best_similarity: float, similarity_floor: float, answer_floor: float) -> Verdict:
    """Triage a screened question, given how similar the best retrieved passage is to it.

    Red flags win over everything; then language and plainly off-topic requests; then topics the
    articles do not cover (medication, injections, surgery, diagnosis); then scope — a knee, leg or
    training word, or a close match in the corpus; and a weak best match means the articles have no answer.
    Scope is judged on the question as resolved against the conversation, so follow-ups stay in scope;
    red flags on everything the user wrote, instructions to the bot included.
    """
    if (verdict := red_flag(query.question) or red_flag(query.standalone)) is not None:
        return verdict
    if not query.asked:
        return Verdict(Status.out_of_scope, "instructions")
    if query.intent in _CHAT or (query.intent is Intent.more and not query.is_follow_up):
        return Verdict(Status.chat, query.intent.value)
    standalone = query.standalone
    if not language_is_english(standalone):
        return Verdict(Status.out_of_scope, "language")
    if OFF_TOPIC.search(standalone):
        return Verdict(Status.out_of_scope, "off_topic")
    if (verdict := not_covered(query.asked)) is not None:
        return verdict
    if not (DOMAIN.search(standalone) or query.continues_topic or best_similarity >= similarity_floor):
        return Verdict(Status.out_of_scope, "off_topic")
    if best_similarity < answer_floor:
        return Verdict(Status.not_found, "low_relevance")
    return Verdict(Status.answered, "answered")


#: Conversational turns: a short friendly reply, never retrieval or escalation (the message says nothing else).
_CHAT = frozenset(
    {Intent.greeting, Intent.thanks, Intent.goodbye, Intent.capabilities, Intent.identity, Intent.sources}
)


class Triage:
    """Decides the answer's status from the question as read and how close the best retrieved passage is."""

    name = "triage"

    def __init__(self, *, similarity_floor: float, answer_floor: float) -> None:
        self.similarity_floor = similarity_floor
        self.answer_floor = answer_floor

    def applies(self, state: AnswerState) -> bool:
        """Unless screening already refused the input."""
        return state.verdict is None and state.query is not None

    def run(self, state: AnswerState) -> AnswerState:
        """Set the verdict."""
        assert state.query is not None
        best = max((p.dense_score or 0.0 for p in state.passages), default=0.0)  # closest sentence or passage
        state.verdict = classify(
            state.query,
            best_similarity=best,
            similarity_floor=self.similarity_floor,
            answer_floor=self.answer_floor,
        )
        return state


# -- the one later change of a status --------------------------------------------------------------


def narrowed(verdict: Verdict, draft: Draft, *, answers_question: bool, unanswered: str = "") -> Verdict:
    """An ``answered`` verdict becomes ``not_found`` when nothing quotable answers the question.

    The reason is the composer's (``uncovered:comparison`` — no sentence weighs the two things asked about;
    ``uncovered:number`` — none states the number asked for; ``uncovered:silent`` — the question is about
    something the articles never mention; ``nothing_more`` — "tell me more" when everything was said), or
    ``low_relevance`` when it found no sentence at all; ``unsupported``: the guard removed every claim.
    """
    if verdict.status is not Status.answered:
        return verdict
    if not answers_question:
        return Verdict(Status.not_found, unanswered or "low_relevance")
    if not draft.claims:
        return Verdict(Status.not_found, "unsupported")
    return verdict


class NarrowToNotFound:
    """Applies ``narrowed`` after the guard, and replaces the draft with the not-found reply when it narrows.

    ``reply``: the not-found reply for the narrowed verdict, given the draft (which may hold related quotes).
    """

    name = "narrow"

    def __init__(self, reply: Callable[[Verdict, Draft], Draft]) -> None:
        self.reply = reply

    def applies(self, state: AnswerState) -> bool:
        """Only an answered question can be narrowed."""
        return state.status is Status.answered

    def run(self, state: AnswerState) -> AnswerState:
        """Narrow the verdict if nothing quotable answers the question."""
        assert state.verdict is not None
        verdict = narrowed(state.verdict, state.draft, answers_question=bool(state.facts), unanswered=state.unanswered)
        if verdict is not state.verdict:
            state.verdict, state.draft = verdict, self.reply(verdict, state.draft)
        return state
