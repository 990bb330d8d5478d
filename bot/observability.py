"""Logs: plain text for people, or JSON lines (``BOT_LOG_JSON=1``) for a log pipeline, with the request id.

Every record logged while a request is being handled carries that request's id (``request_id``), whichever
thread logs it: the id lives in a context variable that the web shell sets per request and that anyio
copies into the worker threads answering it. ``request_fields`` holds what the shell notes about the
request (answer status, stage timings) for its one summary line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, TextIO

#: The id and notes of the request being handled (``None`` outside a request).
_request: ContextVar[dict[str, Any] | None] = ContextVar("bot_request", default=None)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: Attributes every ``LogRecord`` has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_STANDARD.add("color_message")  # uvicorn's terminal-coloured copy of the message
_NOISY = ("sentence_transformers", "transformers", "chromadb", "httpx", "httpcore", "urllib3")


def new_request_id(offered: str | None = None) -> str:
    """The client's ``X-Request-ID`` when it is a sane token, else a fresh random one."""
    if offered and _SAFE_ID.match(offered):
        return offered
    return uuid.uuid4().hex


def start_request(request_id: str) -> dict[str, Any]:
    """Make ``request_id`` the current request's id (in this context); returns its notes to fill in."""
    fields: dict[str, Any] = {"request_id": request_id}
    _request.set(fields)
    return fields


def request_fields() -> dict[str, Any] | None:
    """The current request's notes (``None`` outside a request); shells add to them."""
    return _request.get()


def current_request_id() -> str | None:
    """The id of the request being handled, if any."""
    fields = _request.get()
    return fields["request_id"] if fields else None


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


class _BotHandler(logging.StreamHandler):
    """The handler ``configure_logging`` installs (so a second call can find and replace it)."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, any ``extra=`` fields, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if request_id := getattr(record, "request_id", None):
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and key != "request_id" and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "WARNING", *, as_json: bool = False, stream: TextIO | None = None) -> None:
    """Log to stderr at ``level``, as JSON lines or plain messages; keep chatty libraries quiet.

    Calling it again (each worker process does) replaces the handler it added, never duplicating lines;
    other handlers (a test runner's) are left alone. uvicorn's own loggers propagate to the same handler.
    """
    handler = _BotHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else logging.Formatter("%(message)s"))
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _BotHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.ERROR)
    for name in ("uvicorn", "uvicorn.error"):  # uvicorn.access stays as uvicorn left it (off: bot.access logs)
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
