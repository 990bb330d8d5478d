"""Question sets: YAML files checked against ``eval/schema.json`` and against the corpus when loaded."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator, ValidationError

from bot.content.corpus import CorpusError, load_corpus
from bot.contract import Status
from bot.settings import PROJECT_ROOT

EVAL_DIR = PROJECT_ROOT / "eval"
SETS_DIR = EVAL_DIR / "sets"
SCHEMA_FILE = EVAL_DIR / "schema.json"

Expectation = Literal["answer", "escalate", "refuse", "not_found", "invalid", "chat"]

#: The reply status each expectation asks for.
EXPECTED_STATUS: dict[str, Status] = {
    "answer": Status.answered,
    "escalate": Status.escalated,
    "refuse": Status.out_of_scope,
    "not_found": Status.not_found,
    "invalid": Status.invalid,
    "chat": Status.chat,
}
#: The case fields that hold verbatim corpus text, checked against the corpus when a set is loaded.
SPAN_FIELDS = ("gold_spans", "lead", "relevant")


class QuestionSetError(ValueError):
    """A question set cannot be used; the message names the file, and the case and field when there is one."""


@dataclass(frozen=True)
class Case:
    """One scored question (or conversation) and what its reply must show."""

    id: str
    expect: Expectation
    question: str | None = None
    turns: tuple[str, ...] = ()
    gold_spans: tuple[str, ...] = ()
    #: Spans one of which the reply's first sentence must hold: it leads with the answer.
    lead: tuple[str, ...] = ()
    #: Spans an answer-relevant point may hold (every sentence that answers or directly supports the answer).
    relevant: tuple[str, ...] = ()
    must_include: tuple[tuple[str, ...], ...] = ()
    must_not_include: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    notes: str | None = None

    @property
    def scored_question(self) -> str:
        """The question whose reply is scored: the case's question, or a conversation's last turn."""
        return self.turns[-1] if self.turns else self.question or ""

    @property
    def earlier_turns(self) -> tuple[str, ...]:
        """The turns asked before the scored one, to build the conversation's history."""
        return self.turns[:-1]

    @property
    def expected_status(self) -> Status:
        """The reply status this case expects."""
        return EXPECTED_STATUS[self.expect]

    def to_dict(self) -> dict[str, Any]:
        """The case as written in YAML (only the fields it sets)."""
        data: dict[str, Any] = {"id": self.id}
        if self.turns:
            data["turns"] = list(self.turns)
        else:
            data["question"] = self.question
        data["expect"] = self.expect
        for name in (*SPAN_FIELDS, "must_not_include", "tags"):
            if getattr(self, name):
                data[name] = list(getattr(self, name))
        if self.must_include:
            data["must_include"] = [list(group) for group in self.must_include]
        if self.notes:
            data["notes"] = self.notes
        return data


@dataclass(frozen=True)
class QuestionSet:
    """A named list of cases loaded from one YAML file."""

    name: str
    description: str
    path: Path
    cases: tuple[Case, ...] = field(default_factory=tuple)


@lru_cache(maxsize=4)
def _validator(schema_file: Path) -> Draft202012Validator:
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def case_from_dict(data: dict[str, Any]) -> Case:
    """A ``Case`` from a schema-valid mapping."""
    return Case(
        id=data["id"],
        expect=data["expect"],
        question=data.get("question"),
        turns=tuple(data.get("turns") or ()),
        gold_spans=tuple(data.get("gold_spans") or ()),
        lead=tuple(data.get("lead") or ()),
        relevant=tuple(data.get("relevant") or ()),
        must_include=tuple(tuple(group) for group in data.get("must_include") or ()),
        must_not_include=tuple(data.get("must_not_include") or ()),
        tags=tuple(data.get("tags") or ()),
        notes=data.get("notes"),
    )


def _describe(error: ValidationError, data: Any) -> tuple[int, str]:
    """Where a schema error is (case id and field) and what is wrong, in words a set author can act on."""
    path = list(error.absolute_path)
    if len(path) >= 2 and path[0] == "cases" and isinstance(path[1], int):
        index = path[1]
        raw_case = data["cases"][index]
        case_id = raw_case.get("id") if isinstance(raw_case, dict) else None
        where = f"case {case_id!r}" if isinstance(case_id, str) else f"case #{index + 1}"
        rest = path[2:]
        order = index
    else:
        where, rest, order = "", path, -1
    field_name = _field_path(rest)
    message = error.message
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        field_name = _field_path([*rest, missing[0]]) if missing else field_name
        message = "is required"
    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(name for name in error.instance if name not in allowed)
        field_name = _field_path([*rest, extra[0]]) if extra else field_name
        message = f"is not a known field (known: {', '.join(sorted(allowed))})"
    elif error.validator == "oneOf" and rest == []:
        field_name = "question/turns"
        message = "a case needs exactly one of 'question' (one question) or 'turns' (a conversation)"
    parts = [where, f"field {field_name!r}" if field_name else ""]
    return order, ", ".join(p for p in parts if p) + f": {message}"


def _field_path(path: Sequence[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def validate_set_data(data: Any, source: Path | str, *, schema_file: Path = SCHEMA_FILE) -> None:
    """Check parsed YAML against the JSON Schema and for unique case ids; raise ``QuestionSetError`` if not."""
    errors = sorted((_describe(e, data) for e in _validator(schema_file).iter_errors(data)), key=lambda e: e[0])
    if errors:
        lines = list(dict.fromkeys(text for _, text in errors))
        more = f"\n  … and {len(lines) - 5} more" if len(lines) > 5 else ""
        raise QuestionSetError(f"{source}: " + "\n  ".join(lines[:5]) + more)
    seen: set[str] = set()
    for case in data["cases"]:
        if case["id"] in seen:
            raise QuestionSetError(f"{source}: case {case['id']!r}, field 'id': the id is used twice in this set")
        seen.add(case["id"])


def check_gold_spans(question_set: QuestionSet, corpus_texts: Sequence[str], corpus_dir: Path | str) -> None:
    """Every span (``gold_spans``, ``lead``, ``relevant``) must occur verbatim in an article.

    A gold span no article holds could never be retrieved; a lead or relevant span must be the article's
    own text, never a paraphrase or the bot's words.
    """
    for case in question_set.cases:
        for name in SPAN_FIELDS:
            for span in getattr(case, name):
                if not any(span in text for text in corpus_texts):
                    raise QuestionSetError(
                        f"{question_set.path}: case {case.id!r}, field {name!r}: {span!r} does not occur "
                        f"verbatim in the corpus ({corpus_dir})"
                    )


def corpus_texts(corpus_dir: Path) -> list[str]:
    """The body of every article, to check gold spans against."""
    try:
        return [document.text for document in load_corpus(corpus_dir)]
    except CorpusError as error:
        raise QuestionSetError(f"Cannot check gold spans: {error}") from error


def read_set_file(path: Path) -> Any:
    """The parsed YAML of a set file; unreadable YAML is a ``QuestionSetError`` naming the file and line."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QuestionSetError(f"{path}: no such question set file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise QuestionSetError(f"{path}: not valid YAML: {error}") from error


def load_question_set(path: Path, *, corpus_dir: Path, texts: Sequence[str] | None = None) -> QuestionSet:
    """Load one set file, validated against the schema and its gold spans against the corpus.

    Args:
        path: The YAML file.
        corpus_dir: The corpus the gold spans must occur in (``Settings.corpus_dir``).
        texts: The corpus article bodies, when the caller already loaded them.
    """
    data = read_set_file(path)
    validate_set_data(data, path)
    question_set = QuestionSet(
        name=data["name"],
        description=data["description"],
        path=path,
        cases=tuple(case_from_dict(raw) for raw in data["cases"]),
    )
    check_gold_spans(question_set, corpus_texts(corpus_dir) if texts is None else texts, corpus_dir)
    return question_set


def load_question_sets(paths: Iterable[Path], *, corpus_dir: Path) -> list[QuestionSet]:
    """Load several set files (reading the corpus once); two sets may not share a name."""
    texts = corpus_texts(corpus_dir)
    sets: list[QuestionSet] = []
    for path in paths:
        question_set = load_question_set(path, corpus_dir=corpus_dir, texts=texts)
        clash = next((s for s in sets if s.name == question_set.name), None)
        if clash is not None:
            raise QuestionSetError(f"{path}: field 'name': {question_set.name!r} is also the name of {clash.path}")
        sets.append(question_set)
    return sets


def default_set_paths(sets_dir: Path = SETS_DIR) -> list[Path]:
    """Every set file of ``eval/sets/``, in name order."""
    return sorted(sets_dir.glob("*.yaml"))


def resolve_set_path(value: str | Path, sets_dir: Path = SETS_DIR) -> Path:
    """A set given as a path, or by name (``core`` → ``eval/sets/core.yaml``)."""
    path = Path(value)
    if path.is_file():
        return path
    by_name = sets_dir / f"{value}.yaml"
    if by_name.is_file():
        return by_name
    known = ", ".join(p.stem for p in default_set_paths(sets_dir)) or "none"
    raise QuestionSetError(f"{value}: no such question set file or set name (sets in {sets_dir}: {known})")
