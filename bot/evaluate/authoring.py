"""Turn a bad answer into a regression case: append a validated case to a set file, keeping the file as written."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bot.evaluate.loader import (
    Case,
    QuestionSet,
    QuestionSetError,
    case_from_dict,
    check_gold_spans,
    corpus_texts,
    load_question_set,
    read_set_file,
    validate_set_data,
)

_MAX_ID_WORDS = 6
_MAX_ID_CHARS = 48


def case_id_from(question: str, taken: Iterable[str]) -> str:
    """A readable id from the question's first words, made unique against ``taken`` (``-2``, ``-3`` …)."""
    words = re.findall(r"[a-z0-9]+", question.lower())
    base = "-".join(words[:_MAX_ID_WORDS])[:_MAX_ID_CHARS].strip("-") or "case"
    taken = set(taken)
    candidate, suffix = base, 2
    while candidate in taken:
        candidate, suffix = f"{base}-{suffix}", suffix + 1
    return candidate


def parse_alternatives(values: Sequence[str]) -> list[list[str]]:
    """``["shoulder|feet", "90"]`` → ``[["shoulder", "feet"], ["90"]]`` (the ``must_include`` groups)."""
    groups = [[alt.strip() for alt in value.split("|") if alt.strip()] for value in values]
    return [group for group in groups if group]


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()  # round-trip: keeps comments, quoting, flow style and key order
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _dump(yaml: Any, document: Any) -> str:
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    return buffer.getvalue()


def _styled(case: Case) -> Any:
    """The case as ruamel nodes written like the hand-written cases: quoted text, flow lists for tags/facts."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString as Quoted

    def flow(items: Iterable[Any]) -> CommentedSeq:
        seq = CommentedSeq(items)
        seq.fa.set_flow_style()
        return seq

    node = CommentedMap()
    node["id"] = case.id
    if case.turns:
        node["turns"] = CommentedSeq(Quoted(turn) for turn in case.turns)
    else:
        node["question"] = Quoted(case.question or "")
    node["expect"] = case.expect
    for name in ("gold_spans", "lead", "relevant"):
        if getattr(case, name):
            node[name] = CommentedSeq(Quoted(span) for span in getattr(case, name))
    if case.must_include:
        node["must_include"] = flow(flow(Quoted(alt) for alt in group) for group in case.must_include)
    if case.must_not_include:
        node["must_not_include"] = flow(Quoted(text) for text in case.must_not_include)
    if case.tags:
        node["tags"] = flow(case.tags)
    if case.notes:
        node["notes"] = case.notes
    return node


def append_case(path: Path, fields: dict[str, Any], *, corpus_dir: Path) -> Case:
    """Validate a new case and append it to the set file at ``path``; the file is untouched on any error.

    ``fields`` are the case's YAML fields; without an ``id`` one is made from the question. The new case is
    checked against the schema (with the rest of the set) and its spans (gold, lead, relevant) against the
    corpus. When the set's ``cases`` list ends the file, the file's existing text is kept byte for byte and
    the case appended; otherwise the file is rewritten by ruamel.yaml's round-trip dumper, which keeps
    comments and layout.
    """
    original = path.read_text(encoding="utf-8")
    data = read_set_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise QuestionSetError(f"{path}: field 'cases': not a list of cases, cannot append")
    taken = [str(c.get("id")) for c in data["cases"] if isinstance(c, dict)]
    fields = {key: value for key, value in fields.items() if value not in (None, [], "")}
    if "question" in fields and "turns" not in fields:
        fields.setdefault("id", case_id_from(fields["question"], taken))
    validate_set_data({**data, "cases": [*data["cases"], fields]}, path)
    case = case_from_dict(fields)
    check_gold_spans(
        QuestionSet(data["name"], data["description"], path, (case,)), corpus_texts(corpus_dir), corpus_dir
    )

    yaml = _yaml()
    document = yaml.load(original)
    without = _dump(yaml, document)
    document["cases"].append(_styled(case))
    with_case = _dump(yaml, document)
    cases_end_the_file = list(document)[-1] == "cases" and with_case.startswith(without)
    if cases_end_the_file:
        text = original if original.endswith("\n") else original + "\n"
        text += "\n" + with_case[len(without) :]
    else:
        text = with_case
    path.write_text(text, encoding="utf-8")
    try:
        load_question_set(path, corpus_dir=corpus_dir)
    except QuestionSetError:
        path.write_text(original, encoding="utf-8")
        raise
    return case
