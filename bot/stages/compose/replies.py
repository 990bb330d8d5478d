"""The replies that quote nothing, or that say first what the articles don't cover."""

from __future__ import annotations

from collections.abc import Callable

from bot import policy
from bot.contract import Status
from bot.language.conversation import Intent
from bot.stages.state import Draft, Verdict

#: The front matter of each article: (title, site, author).
ArticleInfo = tuple[str, str, str]


def _examples() -> str:
    return "\n".join(f"- {q}" for q in policy.EXAMPLE_QUESTIONS)


def fixed_reply(verdict: Verdict) -> Draft:
    """The reply for a verdict that does not quote the articles: invalid, out of scope or not covered."""
    if verdict.status is Status.invalid:
        message = policy.INVALID.get(verdict.reason, policy.INVALID["empty"])
        return Draft(intro=message.replace("{detail}", verdict.detail))
    if verdict.status is Status.out_of_scope:
        lead = policy.OTHER_LANGUAGE if verdict.reason == "language" else policy.OUT_OF_SCOPE
        return Draft(intro=f"{lead} You could ask:\n\n{_examples()}")
    if verdict.status is Status.not_found:
        return Draft(
            intro=policy.NOT_COVERED.get(verdict.detail, policy.UNCOVERED.get(verdict.reason, policy.NOT_FOUND))
        )
    raise ValueError(f"{verdict.status} replies are composed from passages")


def not_found_reply(verdict: Verdict, draft: Draft) -> Draft:
    """The articles don't cover it; then, labelled as such, the closest thing they do say (related quotes)."""
    reply = fixed_reply(verdict)
    if not (draft.related and draft.claims):
        return reply
    return Draft(intro=reply.intro, claims=draft.claims, claims_heading=policy.RELATED_HEADING, related=True)


def chat_reply(intent: str, articles: Callable[[], list[ArticleInfo]]) -> Draft:
    """The short friendly reply to a conversational turn (its intent, as triage names it)."""
    if intent == Intent.sources.value:
        return Draft(intro=policy.sources_reply(articles()))
    if intent == Intent.identity.value:  # who is behind what it quotes is part of who it is
        return Draft(intro=f"{policy.IDENTITY} {policy.sources_reply(articles())}")
    if intent in {Intent.capabilities.value, Intent.more.value}:
        lead = policy.CAPABILITIES if intent == Intent.capabilities.value else policy.MORE_WITHOUT_CONTEXT
        return Draft(intro=f"{lead}\n\n{_examples()}")
    replies = {
        Intent.greeting.value: policy.GREETING,
        Intent.thanks.value: policy.THANKS,
        Intent.goodbye.value: policy.GOODBYE,
        Intent.identity.value: policy.IDENTITY,
    }
    return Draft(intro=replies.get(intent, policy.GREETING))
