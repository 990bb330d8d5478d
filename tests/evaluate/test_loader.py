from __future__ import annotations

from pathlib import Path

import pytest

from bot.evaluate.loader import (
    SETS_DIR,
    QuestionSetError,
    default_set_paths,
    load_question_set,
    load_question_sets,
    resolve_set_path,
)
from bot.settings import PROJECT_ROOT

CORPUS = PROJECT_ROOT / "corpus"
GOOD_CASE = """
  - id: foot-width
    question: "How far apart should my feet be?"
    expect: answer
    gold_spans: ["Position your feet about shoulder-width apart"]
    must_include: [["shoulder-width"]]
    tags: [foot-position]
"""


def write_set(tmp_path: Path, cases: str, header: str = "name: demo\ndescription: A test set.\n") -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(header + "cases:" + cases, encoding="utf-8")
    return path


def test_the_shipped_sets_load_and_are_big_enough() -> None:
    sets = {s.name: s for s in load_question_sets(default_set_paths(), corpus_dir=CORPUS)}
    assert set(sets) >= {"core", "safety", "adversarial", "conversations", "holdout"}
    assert len(sets["core"].cases) >= 60
    assert sum(len(s.cases) for s in sets.values()) >= 100


def test_a_conversation_scores_its_last_turn() -> None:
    conversations = load_question_set(SETS_DIR / "conversations.yaml", corpus_dir=CORPUS)
    case = next(c for c in conversations.cases if c.id == "conv-lock-then-why")
    assert case.scored_question == "why not?"
    assert case.earlier_turns == ("Is it ok to lock my knees at the top?",)


def test_a_good_case_loads_with_its_fields(tmp_path: Path) -> None:
    (case,) = load_question_set(write_set(tmp_path, GOOD_CASE), corpus_dir=CORPUS).cases
    assert case.id == "foot-width" and case.expected_status.value == "answered"
    assert case.must_include == (("shoulder-width",),) and case.tags == ("foot-position",)


@pytest.mark.parametrize(
    ("case_yaml", "expected"),
    [
        # a required field is missing: the message names the case and the field
        ('\n  - id: no-expect\n    question: "hi"\n', "case 'no-expect', field 'expect': is required"),
        # a value outside the enum
        ('\n  - id: typo\n    question: "hi"\n    expect: answr\n',
         "case 'typo', field 'expect': 'answr' is not one of"),
        # a misspelt field is not silently ignored
        ('\n  - id: extra\n    question: "hi"\n    expect: refuse\n    must_includes: [["a"]]\n',
         "case 'extra', field 'must_includes': is not a known field"),
        # must_include is a list of lists
        ('\n  - id: flat\n    question: "hi"\n    expect: answer\n    must_include: ["a"]\n',
         "case 'flat', field 'must_include[0]': 'a' is not of type 'array'"),
        # a case is one question or one conversation
        ('\n  - id: both\n    question: "hi"\n    turns: ["a", "b"]\n    expect: answer\n',
         "case 'both', field 'question/turns'"),
        ('\n  - id: neither\n    expect: answer\n', "case 'neither', field 'question/turns'"),
        # ids are slugs
        ('\n  - id: "Has Spaces"\n    question: "hi"\n    expect: answer\n', "case 'Has Spaces', field 'id'"),
        # a case without an id is named by its position
        ('\n  - question: "hi"\n    expect: answer\n', "case #1, field 'id': is required"),
    ],
)  # fmt: skip
def test_a_malformed_case_is_named_with_its_file_and_field(tmp_path: Path, case_yaml: str, expected: str) -> None:
    path = write_set(tmp_path, case_yaml)
    with pytest.raises(QuestionSetError) as error:
        load_question_set(path, corpus_dir=CORPUS)
    assert str(path) in str(error.value) and expected in str(error.value)


def test_a_missing_top_level_field_is_named(tmp_path: Path) -> None:
    path = write_set(tmp_path, GOOD_CASE, header="name: demo\n")
    with pytest.raises(QuestionSetError, match="field 'description': is required"):
        load_question_set(path, corpus_dir=CORPUS)


def test_a_duplicate_id_is_named(tmp_path: Path) -> None:
    with pytest.raises(QuestionSetError, match="case 'foot-width', field 'id': the id is used twice"):
        load_question_set(write_set(tmp_path, GOOD_CASE + GOOD_CASE), corpus_dir=CORPUS)


def test_a_gold_span_missing_from_the_corpus_names_the_case(tmp_path: Path) -> None:
    path = write_set(tmp_path, GOOD_CASE.replace("shoulder-width apart", "hip-width apart"))
    with pytest.raises(QuestionSetError) as error:
        load_question_set(path, corpus_dir=CORPUS)
    message = str(error.value)
    assert "case 'foot-width', field 'gold_spans'" in message and "does not occur verbatim in the corpus" in message


def test_unreadable_yaml_names_the_file(tmp_path: Path) -> None:
    path = write_set(tmp_path, "\n  - id: [unclosed\n")
    with pytest.raises(QuestionSetError, match="not valid YAML"):
        load_question_set(path, corpus_dir=CORPUS)


def test_two_sets_may_not_share_a_name(tmp_path: Path) -> None:
    first = write_set(tmp_path, GOOD_CASE)
    second = tmp_path / "copy.yaml"
    second.write_text(first.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(QuestionSetError, match="'demo' is also the name of"):
        load_question_sets([first, second], corpus_dir=CORPUS)


def test_a_set_is_found_by_name_or_path() -> None:
    assert resolve_set_path("core") == SETS_DIR / "core.yaml"
    assert resolve_set_path(SETS_DIR / "safety.yaml") == SETS_DIR / "safety.yaml"
    with pytest.raises(QuestionSetError, match="no such question set"):
        resolve_set_path("nope")
