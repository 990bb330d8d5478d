"""The hostile-input corpus (``tests/security/hostile_inputs.jsonl``): what an attacker or a careless client sends.

One JSON object per line — read by splitting on ``"\\n"`` only, never ``str.splitlines``, which also breaks at
U+2028/U+2029 — with its ``class`` (wrong content types, malformed JSON, bad UTF-8/UTF-16, lone surrogates, RTL
and zero-width characters, deep nesting, oversize bodies, injections, markup), a ``note``, the ``path`` and
``headers``, and the body as one of ``json`` (a value), ``text`` (sent as UTF-8), ``base64`` (raw bytes) or
``repeat`` (``prefix`` + ``unit`` × ``count`` + ``suffix``) or ``nest`` (``prefix`` + ``open`` × ``depth`` +
``middle`` + ``close`` × ``depth`` + ``suffix``). ``fn`` names the chat page's event a queue body is
for: its ``fn_index`` is looked up in the running page's ``/config``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "security" / "hostile_inputs.jsonl"


@dataclass(frozen=True)
class Hostile:
    """One hostile request."""

    kind: str
    note: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    fn: str | None = None

    def for_page(self, fn_indices: dict[str, int]) -> Hostile:
        """This request with its page event's ``fn_index`` as the running page numbers it."""
        if self.fn is None or self.fn not in fn_indices:
            return self
        body = self.body.replace(b'"fn_index": 0', b'"fn_index": %d' % fn_indices[self.fn])
        return Hostile(self.kind, self.note, self.path, self.headers, body, self.fn)


def _body(row: dict[str, Any]) -> bytes:
    if "json" in row:
        return json.dumps(row["json"]).encode()
    if "text" in row:
        return str(row["text"]).encode("utf-8", "surrogatepass")
    if "base64" in row:
        return base64.b64decode(row["base64"])
    if "repeat" in row:
        repeat = row["repeat"]
        return (repeat["prefix"] + repeat["unit"] * repeat["count"] + repeat["suffix"]).encode()
    if "nest" in row:
        nest = row["nest"]
        depth = nest["depth"]
        return (
            nest["prefix"] + nest["open"] * depth + nest["middle"] + nest["close"] * depth + nest["suffix"]
        ).encode()
    return b""


def load(path: Path = CORPUS) -> list[Hostile]:
    """Every request of the corpus, in file order."""
    lines = path.read_bytes().decode("utf-8").split("\n")
    rows = [json.loads(line) for line in lines if line.strip()]
    return [Hostile(row["class"], row["note"], row["path"], row.get("headers", {}), _body(row), row.get("fn"))
            for row in rows]  # fmt: skip


def page_fn_indices(config: dict[str, Any]) -> dict[str, int]:
    """The chat page's events by name (``respond``, ``rate``, ``ask``…) from its ``/config``: their ``fn_index``."""
    found: dict[str, int] = {}
    for dependency in config.get("dependencies", []):
        name = dependency.get("api_name")
        if isinstance(name, str) and name not in found:
            found[name] = dependency["id"]
    return found
