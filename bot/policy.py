"""Every word the product says on its own: the disclaimer, the example questions and each fixed message.

Kept in one place so that what members read can be reviewed (and reworded) without reading code.
"""

from __future__ import annotations

#: Ends every reply, whatever happened.
DISCLAIMER = (
    "This is general information from fitness articles, not medical advice. If pain is severe, "
    "persists or worries you, see a doctor or physical therapist."
)

#: Questions offered to people who asked something the bot cannot help with (and shown on the page).
EXAMPLE_QUESTIONS = (
    "Where should my feet go on the leg press?",
    "Why do my knees hurt after leg day?",
    "Is it bad to lock my knees at the top?",
    "How often should I do leg press?",
)

# -- replies that quote nothing ------------------------------------------------------------------

#: The reply to input no answer is attempted for, by reason (``{detail}``: the length limit).
INVALID = {
    "empty": "Please type a question — for example, *Where should my feet go on the leg press?*",
    "too_long": "That message is longer than {detail} characters. "
    "Please shorten it to the question you'd like answered.",
    "control_characters": "That message contains hidden control characters. Please retype it as plain text.",
    "markup": "Please ask in plain text — messages containing HTML or code markup can't be answered.",
    "unreadable": "That message contains characters that can't be read (perhaps a broken emoji or symbol). "
    "Please retype it as plain text.",
    "history": "The conversation history sent with this question isn't in the expected form. "
    "Please start a new conversation.",
    "request": 'That request isn\'t in the expected form: send a JSON object with a "question" string and, optionally, '
    'a "history" list of {"role": "user" or "assistant", "content": "..."} turns.',
}

#: Topics the articles deliberately do not cover, and who can help instead.
NOT_COVERED = {
    "medication": "The articles I answer from don't cover medication or doses, so I can't advise on that. "
    "A pharmacist, doctor or physical therapist can tell you what is safe for you.",
    "injection": "The articles I answer from don't cover injections, so I can't advise on them. "
    "A doctor or physical therapist can talk you through the options.",
    "surgery": "The articles I answer from don't cover surgery, so I can't advise on it. "
    "An orthopaedic doctor or physical therapist is the right person to ask.",
    "diagnosis": "I can't diagnose a specific injury, and the articles I answer from don't cover telling injuries "
    "apart. A doctor or physical therapist can examine your knee and tell you what is going on.",
    "products": "The articles I answer from don't recommend products or brands, so I can't tell you which one to buy. "
    "A physical therapist or an experienced coach at your gym can help you choose.",
    "population": "The articles I answer from give general advice, not advice for particular ages, pregnancy or "
    "health conditions. A doctor or physical therapist can tell you what is safe for you.",
    "healing_time": "The articles I answer from don't say how long knee pain takes to heal — that depends on what is "
    "causing it. If it doesn't settle, a doctor or physical therapist can tell you what to expect.",
}
NOT_FOUND = (
    "The articles I answer from don't cover that, so I'd rather not guess. "
    "A physical therapist or personal trainer can help with questions like this."
)

OUT_OF_SCOPE = (
    "I can only help with questions about knee pain and the leg press — technique, foot position, "
    "weights, recovery and related knee problems."
)
OTHER_LANGUAGE = "Sorry — I can only answer in English for now."
#: Leads the quoted guidance of an escalated reply.
ESCALATION_GUIDANCE_HEADING = "What the article says that may still help:"
#: Sits between a list lead and the points after it, so they don't merge into the list.
MORE_POINTS_HEADING = "Also worth knowing:"


def escalation_warning(symptom: str) -> str:
    """The warning that leads every escalated reply (``symptom`` as triage names it)."""
    return (
        f"**⚠️ Please get this checked by a doctor promptly.** {symptom} can be a sign of an injury that "
        "needs a medical examination, so stop leg pressing until you have been assessed. If you can't put "
        "weight on the leg, the pain is severe, or your calf is swollen and painful, seek urgent care today."
    )


# -- the web shells ------------------------------------------------------------------------------

NOT_READY = "The coach is still starting up. Please try again in a few seconds."
STORE_UNAVAILABLE = (
    "Sorry — the coach can't reach its articles right now, so it can't answer safely. "
    "Please try again in a minute. If your knee pain is severe or worrying, don't wait: see a doctor or "
    "physical therapist."
)
FEEDBACK_UNAVAILABLE = (
    "Sorry — your rating could not be saved just now. The answer itself is unaffected; please try rating again later."
)
INTERNAL_ERROR = "Something went wrong on our side. Please try again."
ORIGIN_NOT_ALLOWED = (
    "This site is not allowed to use the coach: its address must be in the coach server's BOT_CORS_ORIGINS list."
)
PAGE_ANSWER_FAILED = "Sorry — something went wrong while answering. Please try again."
PAGE_RATING_FAILED = "Sorry — your rating could not be saved just now. Please try again later."
SITE_CAP_REACHED = "This site has used up today's questions for the coach. Please try again tomorrow."
SITE_SHARE_REACHED = (
    "You have asked this site's coach as many questions as one visitor may today. Please try again tomorrow."
)
SERVER_BUSY = "The coach is getting a lot of visitors right now. Please try again in a few seconds."
REQUEST_TIMEOUT = "The request took too long to arrive. Please try again."
HOST_NOT_ALLOWED = "This server does not answer to that host name (BOT_ALLOWED_HOSTS)."
NOT_AUTHORISED = "This needs the server's metrics token (Authorization: Bearer …), or a request from the server itself."
ANSWER_NOT_VERIFIED = (
    "That answer can't be rated: it wasn't given by this coach, or it was changed. Ask the question again and "
    "rate the new answer."
)
BODY_NOT_READABLE = "The request body can't be read: send JSON, encoded as UTF-8."
EVENT_NOT_READABLE = "The chat page's request isn't readable JSON. Please reload the page."
UNREADABLE_TEXT = "The request contains text that can't be read (broken characters). Please retype it as plain text."


def too_fast(retry_after: int) -> str:
    """What a client over its per-client limit is told."""
    return f"You're asking faster than the coach can keep up. Please wait about {retry_after} s and try again."


# -- conversational turns (status ``chat``) --------------------------------------------------------

GREETING = (
    "Hi! I answer questions about knee pain and the leg press — foot position, weights, how often to train, "
    "recovery — by quoting fitness articles. What would you like to know?"
)
THANKS = "You're welcome! Ask any time if something else comes up about your knees or the leg press."
GOODBYE = "Take care, and train smart! Come back any time with another question."
CAPABILITIES = (
    "I answer questions about knee pain after the leg press — technique, foot position, weights, how often to "
    "train, recovery and related knee problems — by quoting fitness articles, with a numbered link to each "
    "passage I quote. I can't diagnose an injury or advise on medication, and I'll tell you when the articles "
    "don't cover something. You could ask:"
)
IDENTITY = (
    "I'm the knee-pain coach: a chatbot, not a doctor or physical therapist. I answer from fitness articles and "
    "show you the passage behind every answer."
)
MORE_WITHOUT_CONTEXT = "Happy to — what would you like to know more about? For example:"
NOTHING_MORE = "That's everything the articles say about it that I haven't already quoted."


def sources_reply(articles: list[tuple[str, str, str]]) -> str:
    """What a member asking "who wrote this?" is told: each article's title, site and author (front matter)."""
    described = []
    for title, site, author in articles[:3]:
        where = f" on {site}" if site else ""
        by = f", written by {author[0].lower()}{author[1:]}" if author else ""
        described.append(f"“{title}”{where}{by}")
    more = f", and {len(articles) - 3} more" if len(articles) > 3 else ""
    return f"My answers come from {'; '.join(described)}{more}. Every answer links to the passage it quotes."


# -- questions the articles don't answer -----------------------------------------------------------

#: Leads the closest things the articles do say, after "they don't cover that".
RELATED_HEADING = "What they do say that is related:"
#: Why no sentence answers an in-scope question (the reason triage's narrowing records).
UNCOVERED = {
    "uncovered:comparison": "The articles I answer from don't compare those, so I'd rather not guess which is better.",
    "uncovered:number": "The articles I answer from don't give a number for that, so I'd rather not guess.",
    "uncovered:silent": "The articles I answer from don't cover that, so I'd rather not guess.",
    "nothing_more": NOTHING_MORE,
}


# -- the HTTP API's errors -----------------------------------------------------------------------

#: An HTTP error without a message of its own (and every 500, whose detail may name internals).
REQUEST_FAILED = "Request failed."
#: The shape of a chat request, quoted in the reply to a malformed one.
CHAT_REQUEST_EXAMPLE = '{"message": "…", "history": [{"role": "user", "content": "…"}]}'


def question_too_long(max_chars: int) -> str:
    """The reply to a page event whose question is over ``BOT_MAX_QUESTION_CHARS`` (the box stops at it)."""
    return INVALID["too_long"].format(detail=max_chars)


def too_large(max_bytes: int) -> str:
    """The reply to a request body over ``BOT_MAX_BODY_BYTES``."""
    return f"Requests are limited to {max_bytes} bytes."


def no_such_path(path: str) -> str:
    """The reply to a request for a path the API doesn't have."""
    return f"There is no {path} here. See /docs for the API."


def method_not_supported(method: str, path: str) -> str:
    """The reply to a method a path doesn't take."""
    return f"{method} is not supported on {path}. See /docs for the API."


def malformed_request(problems: list[str]) -> str:
    """The reply to a body that isn't in the expected form (``problems``: "where: what" for each)."""
    return f"The request isn't in the expected form — {'; '.join(problems)}. Send JSON like {CHAT_REQUEST_EXAMPLE}."


# -- the chat page -------------------------------------------------------------------------------

#: ``/`` for the seconds between the API being ready and the chat page being built, and if that failed.
PAGE_STARTING = "The knee-pain coach is starting up. This page reloads by itself in a moment."
PAGE_UNAVAILABLE = "The chat page is unavailable right now. Please try again later."

PAGE_TITLE = "Knee-pain coach"
PAGE_INTRO = (
    "Ask about knee pain after the leg press. Answers quote fitness articles, "
    "and every number in an answer links to the passage it comes from."
)
DISCLAIMER_LABEL = "Medical disclaimer"
CHAT_LABEL = "Conversation"
CHAT_PLACEHOLDER = "Your conversation with the coach appears here."
QUESTION_LABEL = "Your question"
QUESTION_PLACEHOLDER = "e.g. Why do my knees hurt after leg day?"
ASK_BUTTON = "Ask"
NEW_CONVERSATION_BUTTON = "New conversation"
COMMENT_LABEL = "Anything to add? (optional)"
SEND_COMMENT_BUTTON = "Send comment"
EXAMPLES_HEADING = "Try asking:"
SOURCES_HEADING = "Sources"
SOURCES_EMPTY = (
    "Sources appear here: each answer quotes the articles, and the numbers in the answer link to the passage it quotes."
)
#: Leads an escalated reply on the page.
MEDICAL_WARNING_LABEL = "⚠️ Medical warning"
#: Said after a thumbs up or down, by rating.
RATING_THANKS = {"up": "Thanks — glad it helped.", "down": "Thanks — we'll use this to improve the answers."}
COMMENT_SAVED = "Thanks — your comment was saved."


def comment_prompt(thanks: str, answer_number: int) -> str:
    """The comment box's label after a rating of answer ``answer_number`` (from 1)."""
    return f"{thanks} Anything to add about answer {answer_number}? (optional)"


def rating_saved(answer_number: int) -> str:
    """The note after a rating of answer ``answer_number`` (from 1) was stored."""
    return f"Your rating of answer {answer_number} was saved."


# -- the OpenAI-compatible API (/v1) -------------------------------------------------------------

#: The one model ``GET /v1/models`` lists, which clients name in ``model``.
MODEL_ID = "knee-coach"
MODEL_OWNER = "knee-pain-coach"
INVALID_API_KEY = (
    "This server needs an API key: send one of its BOT_API_KEYS as 'Authorization: Bearer <key>' "
    "(the openai SDK's api_key)."
)
LAST_MESSAGE_NOT_A_QUESTION = (
    "The conversation must end with the user's question: the last message that isn't a system or developer "
    'message must have role "user".'
)
# Parameters the coach cannot honour are refused (a 400), never silently ignored.
ONE_ANSWER_ONLY = "The coach gives one answer per question: n must be 1 (or left out)."
NO_TOOLS = "The coach answers from its articles and calls no tools: leave out tools and functions."
NO_TOOL_MESSAGES = "The coach calls no tools, so it takes no tool calls or results: roles are system, user, assistant."
PLAIN_TEXT_ONLY = 'The coach writes text with [n] citations: response_format must be {"type": "text"} (or left out).'
NO_AUDIO = 'The coach writes text only: leave out audio, and modalities other than ["text"].'
NO_LOGPROBS = "The coach quotes its articles and has no token probabilities: leave out logprobs and top_logprobs."

#: Chat front-ends' housekeeping requests (Open WebUI's task prompts), by the JSON key their prompt asks for:
#: a short neutral reply in the form asked, not an answer (no articles are read and no limit is counted).
HOUSEKEEPING_REPLIES = {
    "follow_ups": '{"follow_ups": []}',
    "queries": '{"queries": []}',
    "tags": '{"tags": ["Health", "Fitness"]}',
    "title": '{"title": "Knee-pain question"}',
    "text": '{"text": ""}',
}


def model_not_found(model: str) -> str:
    """The reply to a request naming a model this server doesn't serve."""
    return f"The model {model!r} does not exist here: use {MODEL_ID!r} (GET /v1/models lists it)."


def text_parts_only(kind: str) -> str:
    """The reply to message content the coach can't read (an image, audio or a file)."""
    if kind == "text":
        return 'Every {"type": "text"} part of a message needs its "text", a string.'
    return (
        'The coach reads text only: content must be a string or a list of {"type": "text", "text": "..."} '
        f"parts, not {kind!r}."
    )


def invalid_parameter(where: str, problem: str) -> str:
    """The reply to a parameter that isn't of the expected form."""
    return f"Invalid value for '{where}': {problem}."


def missing_parameter(where: str) -> str:
    """The reply to a request without a parameter it must have."""
    return f"Missing required parameter: '{where}'."


def unreadable_json(problem: str) -> str:
    """The reply to a body that isn't JSON."""
    return f"The request body isn't valid JSON ({problem})."
