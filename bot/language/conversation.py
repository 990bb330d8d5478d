"""Conversational turns: greetings, thanks, goodbyes, questions about the bot or its sources, "tell me more".

A message is such a turn rather than a question about the knee only if it says nothing else. The whole message must be made of such phrases (and filler such as "ok" or "coach"): "hi, why do my knees
hurt?" is a question, not a greeting.
"""

from __future__ import annotations

import re
from enum import Enum


class Intent(str, Enum):
    """What kind of turn a message is."""

    question = "question"
    greeting = "greeting"
    thanks = "thanks"
    goodbye = "goodbye"
    capabilities = "capabilities"
    identity = "identity"
    sources = "sources"
    more = "more"


# Order matters where phrases overlap: the first intent whose phrases cover the message wins.
_PHRASES: tuple[tuple[Intent, str], ...] = (
    (
        Intent.sources,
        r"where('?s| is| was| are) (this|that|it|these|the (info\w*|answers?|advice|articles?))( info\w*)? (from|coming from)"
        r"|who (wrote|writes|made|authored|is behind) (this|that|it|these|those|the (article|articles|info\w*|answers?))"
        r"|who('?s| is| was) the (author|writer)|(where|what) (does|did|do) (this|that|it|the (info\w*|answers?|advice)|you|your (info\w*|answers?)) (come|get it|get (this|that|your info\w*))( from)?"
        r"|what('?s| is| are) (your|the) sources?|(your|the) sources?|sources?|which (articles?|sites?|websites?)|what (articles?|sites?|websites?)( do you use| is this( from)?)?"
        r"|how do you know (this|that|all this)|is this (from )?(a|an) (article|website|site)|what is this based on|based on what"
        r"|(what|which) sources?( do you (use|have|quote|cite)| are (these|those|they|you using)| is (this|that|it))?"
        r"|(where|what) (does|did|do) (this|that|the|your) (info\w*|answers?|advice|stuff) (come|get it)( from)?"
        # How far to trust it is a question about the sources.
        r"|(is|are) (this|that|it|these|the|your) ?(info\w*|advice|answers?)? (reliable|accurate|trustworthy|legit|true|evidence[- ]based|backed by (science|research|evidence))"
        r"|can i (trust|rely on) ((this|that|the|your|these) (info\w*|advice|answers?)|this|it|you|that|these)"
        r"|how (reliable|accurate|trustworthy) (is|are) ((this|that|the|your) (info\w*|advice|answers?)|this|it|you|that)",
    ),
    (
        Intent.identity,
        r"who are you|what are you|who am i (talking|speaking) to|are you (a |an )?(bot|ai|robot|human|person|real( person)?|doctor|physio\w*|therapist|trainer|chat ?gpt)"
        r"|is this (a |an )?(bot|ai|real (doctor|person)|doctor)|are you real|what is this( thing)?|what('?s| is) your name",
    ),
    (
        Intent.capabilities,
        r"what (can|do|should|could) (you|i) (do|ask|help( me)?( with)?)( you)?|what (can|could) you help( me)? with|how (can|do|could) you help( me)?"
        r"|what are you (for|good at|able to do)|what do you know( about)?|help|help me|what can i ask( you)?|how does this work|what is this for"
        r"|(can|could|will|would) you help( me)?( out)?|can i ask (you )?(something|a question)",
    ),
    (
        Intent.thanks,
        r"thanks?( you| u| ya)?( so much| a lot| very much| again)?|thank u|thx|ty|tysm|cheers|much appreciated|appreciate (it|that|you)|that('?s| is)? (helpful|great|perfect|useful)|that helps|(that|it|this) helped|helped a lot|very helpful|helpful|great|perfect|awesome|cool|nice|got it|makes sense|good to know",
    ),
    (
        Intent.goodbye,
        r"(good)?bye( bye)?|see (you|ya)( later)?|later|that('?s| is) all|i('?m| am) done|good ?night|take care|catch you later|cya",
    ),
    (
        Intent.greeting,
        r"hi+|hello+|hey+( there)?|hiya|howdy|yo|sup|what'?s up|greetings|good (morning|afternoon|evening|day)|hola"
        # An opener that announces a question still to come.
        r"|(a |one )?quick question|(i have|i've got|i got|got) a (quick )?question( for you)?|question for you",
    ),
    (
        Intent.more,
        r"tell me more|more( please| info\w*| details?)?|go on|keep going|continue|elaborate|say more|explain( more| further)?|anything else|what else|and\??",
    ),
)
_FILLER = r"ok(ay)?|so|well|um+|uh+|oh|hmm+|please|pls|coach|bot|mate|man|bro|dude|again|then|and|but|yes|yeah|yep|no|nope|really|just|very|much|all|the|a|there"
_COMPILED = tuple((intent, re.compile(rf"\b({pattern})\b", re.IGNORECASE)) for intent, pattern in _PHRASES)
_FILLER_WORDS = re.compile(rf"\b({_FILLER})\b", re.IGNORECASE)
_NOT_WORDS = re.compile(r"[\W_]+")
_SOCIAL = frozenset({Intent.greeting, Intent.thanks, Intent.goodbye})


def intent_of(message: str) -> Intent:
    """The kind of turn ``message`` is: a conversational one only if such phrases are all it says."""
    text = " ".join(message.split())
    if not text or len(text) > 120:
        return Intent.question
    for intent, pattern in _COMPILED:
        if pattern.search(text) and not _NOT_WORDS.sub("", _FILLER_WORDS.sub(" ", _strip(text, intent))):
            return intent
    return Intent.question


def _strip(text: str, intent: Intent) -> str:
    """``text`` without the phrases of ``intent`` and of the social intents it may be said with ("hi, thanks")."""
    for other, pattern in _COMPILED:
        if other is intent or other in _SOCIAL:
            text = pattern.sub(" ", text)
    return text
