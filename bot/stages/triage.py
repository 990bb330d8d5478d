"""Safety triage: reject bad input, escalate red flags, refuse what is off-topic or not covered.

Everything here is a readable table of patterns so a clinician can review it; it runs before any
answer is composed and nothing later can override it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.contract import Status

if TYPE_CHECKING:
    from bot.stages.query import Query


@dataclass(frozen=True)
class Verdict:
    """Triage's decision: the status, a machine-readable reason and, for red flags, the warning phrase."""

    status: Status
    reason: str
    detail: str = ""


# -- input screening -----------------------------------------------------------------------------

_MARKUP = re.compile(
    r"<\s*/?\s*[a-zA-Z][\w:-]*(\s[^<>]*)?/?\s*>"  # HTML/XML tags
    r"|<!--|\]\]>|javascript\s*:|\bon\w+\s*=\s*['\"]?\w"  # comments, CDATA, script URLs, event handlers
    r"|\{\{.*?\}\}|\$\{.*?\}",  # template expressions
    re.IGNORECASE | re.DOTALL,
)


def _has_control_characters(text: str) -> bool:
    # Newlines and tabs are how people type; every other control or format character is not.
    return any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co"} and ch not in "\n\t\r" for ch in text)


def screen_input(question: str, *, max_chars: int) -> Verdict | None:
    """An ``invalid`` verdict for input no answer should be attempted for, else ``None``."""
    if not question or not question.strip():
        return Verdict(Status.invalid, "empty")
    if len(question) > max_chars:
        return Verdict(Status.invalid, "too_long", str(max_chars))
    if _has_control_characters(question):
        return Verdict(Status.invalid, "control_characters")
    if _MARKUP.search(question):
        return Verdict(Status.invalid, "markup")
    return None


# -- red flags -----------------------------------------------------------------------------------

# Negated symptoms ("no swelling", "without any numbness") are removed before matching.
_NEGATED = re.compile(
    r"\b(no|not|without|never|nor|zero|isn'?t|wasn'?t|aren'?t|weren'?t|don'?t have|doesn'?t have|"
    r"didn'?t have|haven'?t had|hasn'?t|free of)\s+(any\s+|a\s+|much\s+|real\s+|obvious\s+)?"
    r"(swelling|swollen|swell|fever|numbness|tingling|pop|popping|locking|redness|warmth)\b",
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
            r"\bknees? (locks|locked)\b(?! out)|\bcan'?t (fully )?(straighten|bend)\b|\bwon'?t (fully )?(straighten|bend)\b|"
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


def red_flag(text: str) -> Verdict | None:
    """An ``escalated`` verdict when ``text`` describes a symptom that needs prompt medical care."""
    cleaned = _NEGATED.sub(" ", text)
    for reason, pattern, phrase in RED_FLAGS:
        if pattern.search(cleaned):
            return Verdict(Status.escalated, f"red_flag:{reason}", phrase)
    return None


# -- scope ---------------------------------------------------------------------------------------

_DOMAIN = re.compile(
    r"\b(leg[- ]?press\w*|knee\w*|kneecap\w*|patell\w*|legs?|thighs?|quad\w*|hamstring\w*|hammies|glute\w*|hips?|cal(f|ves)|shins?|"
    r"ankles?|foot|feet|toes?|heels?|squat\w*|lunge\w*|press\w*|sled|deadlift\w*|workouts?|training|train|gym|"
    r"exercis\w*|lift\w*|reps?|sets?|weights?|sore\w*|tendon\w*|tendin\w*|ligament\w*|cartilage|joints?|muscl\w*|"
    r"it ?band|itb|stretch\w*|warm[- ]?up|cool[- ]?down|recover\w*|brace|sleeves?|physio\w*|therap\w*|injur\w*|"
    r"lockout|lock out|1rm|hypertrophy|form|posture|platform|leg day|meniscus|acl|mcl|pcl|valgus|femur|tibia)\b",
    re.IGNORECASE,
)
_OFF_TOPIC = re.compile(
    r"\b(recipes?|cook\w*|bak(e|ing)|pizza|pasta|lasagn\w*|cake|smoothie|protein shake|python|javascript|java|"
    r"code|coding|program(ming)?|sql|html|css|regex|compile|capital of|population|president|prime minister|"
    r"election|weather|forecast|stocks?|bitcoin|crypto\w*|invest\w*|movies?|films?|songs?|lyrics|poems?|"
    r"jokes?|stor(y|ies)|translate|homework|math\w*|equation|world cup|super bowl|nba|nfl|premier league|"
    r"who won|flights?|hotels?|travel\w*|visas?|taxes|mortgage|currency|time zone)\b",
    re.IGNORECASE,
)
_FOREIGN_WORDS = re.compile(
    r"\b(el|la|los|las|por|qué|que|rodilla|duele|dolor|después|prensa|piernas|mis|tengo|cómo|"
    r"der|die|das|und|ich|mein|meine|knie|schmerzen|nach|beinpresse|warum|wie|tut|weh|"
    r"le|les|du|des|mon|genou|douleur|après|pourquoi|j'ai|est|"
    r"o|os|joelho|dor|depois|minha|meu|il|ginocchio|dopo|perché)\b",
    re.IGNORECASE,
)
_ENGLISH_WORDS = re.compile(
    r"\b(the|my|is|are|do|does|should|i|it|after|what|why|how|when|and|to|of|in|on|with|can|a|an|you|your|be|"
    r"hurt|hurts|pain)\b",
    re.IGNORECASE,
)


def language_is_english(text: str) -> bool:
    """A cheap, deterministic check: mostly Latin script and more English than foreign function words."""
    letters = [ch for ch in text if ch.isalpha()]
    if letters and sum(1 for ch in letters if ch.isascii()) / len(letters) < 0.7:
        return False
    foreign = len(_FOREIGN_WORDS.findall(text))
    return foreign < 2 or len(_ENGLISH_WORDS.findall(text)) > foreign


# -- quantities ----------------------------------------------------------------------------------

_HOW_MANY = re.compile(r"\bhow many\s+(\w+)", re.IGNORECASE)
_NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a few|several)\b", re.I)
_TIME_UNITS = {"second", "minute", "hour", "day", "week", "month"}


def counted_thing(question: str) -> str | None:
    """The thing a "how many …?" question counts ("sets", "reps", "times"), singular; else ``None``."""
    match = _HOW_MANY.search(question)
    return match.group(1).lower().rstrip("s") if match else None


def states_count(text: str, thing: str) -> bool:
    """Whether ``text`` puts a number on ``thing`` (within three words of it; time units stand in for each other)."""
    words = re.findall(r"[\w%-]+", text.lower())
    targets = _TIME_UNITS if thing in _TIME_UNITS else {thing}
    for i, word in enumerate(words):
        if word.rstrip("s") in targets and any(_NUMBER.search(w) for w in words[max(0, i - 3) : i + 4]):
            return True
    return False


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


def topic_words(text: str) -> int:
    """How many knee, leg or training words ``text`` contains."""
    return len(_DOMAIN.findall(text))


def in_domain(text: str) -> bool:
    """Whether ``text`` is about the knee, the leg press or leg training (by its words alone)."""
    return bool(_DOMAIN.search(text)) and not _OFF_TOPIC.search(text) and language_is_english(text)


def classify(
    query: Query,
    *,
    best_similarity: float,
    similarity_floor: float = 0.45,
    answer_floor: float = 0.25,
) -> Verdict:
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
    standalone = query.standalone
    if not language_is_english(standalone):
        return Verdict(Status.out_of_scope, "language")
    if _OFF_TOPIC.search(standalone):
        return Verdict(Status.out_of_scope, "off_topic")
    if (verdict := not_covered(query.asked)) is not None:
        return verdict
    if not (_DOMAIN.search(standalone) or best_similarity >= similarity_floor):
        return Verdict(Status.out_of_scope, "off_topic")
    if best_similarity < answer_floor:
        return Verdict(Status.not_found, "low_relevance")
    return Verdict(Status.answered, "answered")
