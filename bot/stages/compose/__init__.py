"""Composing: the extractive answer (answer first, no padding, overviews, honest "not covered"), fixed replies."""

from bot.stages.compose.candidates import ComposeSettings, Evidence, Question
from bot.stages.compose.replies import fixed_reply, not_found_reply
from bot.stages.compose.select import select, select_claims
from bot.stages.compose.stage import Compose

__all__ = [
    "Compose",
    "ComposeSettings",
    "Evidence",
    "Question",
    "fixed_reply",
    "not_found_reply",
    "select",
    "select_claims",
]
