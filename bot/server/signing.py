"""Answer ids: every answer the server gives carries an id signed with the deployment's key.

A rating sent to ``/api/feedback`` names the answer it rates; the id proves that this server gave exactly
that answer (question, conversation, reply, status, citations) — a made-up or edited answer doesn't verify,
so only the server's own answers reach the QA team's export. The id is an HMAC-SHA256 of the answer's
canonical JSON under ``BOT_SIGNING_KEY``, or, when that is unset, a key generated once into
``BOT_DATA_DIR/signing.key``: every worker and machine of one deployment must share the key (set
``BOT_SIGNING_KEY`` when they don't share the data folder).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bot.contract import Answer
from bot.settings import Settings

KEY_FILENAME = "signing.key"


def _turns(history: Iterable[Any]) -> list[list[str]]:
    turns = []
    for turn in history:
        role = turn.get("role") if isinstance(turn, dict) else getattr(turn, "role", None)
        content = turn.get("content") if isinstance(turn, dict) else getattr(turn, "content", None)
        turns.append([str(role), str(content)])
    return turns


def _canonical(answer: Answer, history: Iterable[Any]) -> bytes:
    signed = {
        "question": answer.question,
        "history": _turns(history),
        "answer": answer.answer,
        "status": answer.status.value,
        "reason": answer.reason,
        "citations": [citation.model_dump(mode="json") for citation in answer.citations],
    }
    return json.dumps(signed, sort_keys=True, ensure_ascii=True, separators=(",", ":")).encode()


class AnswerSigner:
    """Signs and verifies answer ids with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def load(cls, settings: Settings) -> AnswerSigner:
        """The signer with ``BOT_SIGNING_KEY``, or with the data folder's key (generated on first use)."""
        if settings.signing_key is not None:
            return cls(settings.signing_key.get_secret_value().encode())
        return cls(_data_folder_key(settings.data_dir / KEY_FILENAME))

    def sign(self, answer: Answer, history: Iterable[Any]) -> str:
        """The id of ``answer``, given in the context of ``history``."""
        digest = hmac.new(self._key, _canonical(answer, history), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def verify(self, answer: Answer, history: Iterable[Any], answer_id: str) -> bool:
        """Whether ``answer_id`` is this key's id of exactly ``answer`` in ``history``."""
        given = answer_id.encode("utf-8", "surrogatepass")
        return hmac.compare_digest(self.sign(answer, history).encode(), given)


def _data_folder_key(path: Path) -> bytes:
    """The key in ``path``; created (readable by its owner only) if missing, atomically, so workers agree."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
        with contextlib.suppress(FileExistsError):  # another worker was first: use its key
            os.link(draft, path)
        draft.unlink()
    return path.read_text(encoding="ascii").strip().encode()
