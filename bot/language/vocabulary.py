"""What questions are made of: the domain's words, plainly off-topic words, the language, and function words.

Readable tables of patterns, so that a clinician or a trainer can review what counts as "about the knee".
"""

from __future__ import annotations

import re

DOMAIN = re.compile(
    r"\b(leg[- ]?press\w*|knee\w*|kneecap\w*|patell\w*|legs?|thighs?|quad\w*|hamstring\w*|hammies|glute\w*|hips?|cal(f|ves)|shins?|"
    r"ankles?|foot|feet|toes?|heels?|squat\w*|lunge\w*|press\w*|sled|deadlift\w*|workouts?|training|train|gym|"
    r"exercis\w*|lift\w*|reps?|sets?|weights?|sore\w*|tendon\w*|tendin\w*|ligament\w*|cartilage|joints?|muscl\w*|"
    r"it ?band|itb|stretch\w*|warm[- ]?up|cool[- ]?down|recover\w*|brace|sleeves?|physio\w*|therap\w*|injur\w*|"
    r"lockout|lock out|1rm|hypertrophy|form|posture|platform|leg day|meniscus|acl|mcl|pcl|valgus|femur|tibia|"
    # what knees do when something is wrong: "it doesn't lock or give way, just aches" is about a knee
    r"lock(s|ed|ing)?|giv(e|es|ing) way|gave way|buckl\w*|swell\w*|swollen|click(s|ed|ing)?|grind\w*|ach(e|es|ing|y))\b",
    re.IGNORECASE,
)
OFF_TOPIC = re.compile(
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


def topic_words(text: str) -> int:
    """How many knee, leg or training words ``text`` contains."""
    return len(DOMAIN.findall(text))


def in_domain(text: str) -> bool:
    """Whether ``text`` is about the knee, the leg press or leg training (by its words alone)."""
    return bool(DOMAIN.search(text)) and not OFF_TOPIC.search(text) and language_is_english(text)


#: Words that refer back to something said before ("it", "those", "higher"): a turn leaning on them continues one.
ANAPHORA = re.compile(
    r"\b(it|its|that|this|them|they|those|these|there|one|ones|higher|lower|wider|narrower|closer|"
    r"further|more|less|other|instead|else)\b",
    re.IGNORECASE,
)
_FUNCTION_WORD_LIST = (
    "a an the and but or so if then than of to in on at by for with about from as into is are was were be been "
    "am do does did doing have has had i me my mine we our you your he she his her they them their it its this "
    "that these those there here what which who whom whose when where why how can could should would will shall "
    "may might must not no yes just really very too also even still ok okay please"
)
FUNCTION_WORDS = frozenset(_FUNCTION_WORD_LIST.split())
_WORD = re.compile(r"[a-z0-9']+")


def own_words(text: str) -> list[str]:
    """The words of ``text`` that say something of their own: no function words, pronouns or comparatives."""
    return [w for w in _WORD.findall(text.lower()) if w not in FUNCTION_WORDS and not ANAPHORA.fullmatch(w)]
