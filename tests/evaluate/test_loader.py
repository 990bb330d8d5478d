from __future__ import annotations

from pathlib import Path

import pytest

from bot.content.corpus import load_corpus
from bot.contract import Status
from bot.evaluate.answer_shape import normalized, sentences
from bot.evaluate.loader import (
    SETS_DIR,
    QuestionSetError,
    case_from_dict,
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
    assert set(sets) >= {"core", "safety", "adversarial", "conversations", "holdout", "members"}
    assert len(sets["core"].cases) >= 60
    assert sum(len(s.cases) for s in sets.values()) >= 100


def _shipped_cases():
    return [(s.name, c) for s in load_question_sets(default_set_paths(), corpus_dir=CORPUS) for c in s.cases]


def test_every_answer_case_says_what_its_reply_should_lead_with() -> None:
    """Issue 14: an answer is judged on what it leads with and what it pads with, so every answer case says."""
    unspanned = [f"{name}/{case.id}" for name, case in _shipped_cases()
                 if case.expect == "answer" and not (case.lead and case.relevant)]  # fmt: skip
    assert unspanned == []


def test_every_lead_and_relevant_span_lies_inside_one_sentence_of_the_article() -> None:
    """A span across a sentence break could never be held by one quoted sentence: the lead would always miss."""
    article_sentences = [normalized(t) for article in load_corpus(CORPUS) for t in sentences(article.text)]
    crossing = [
        f"{name}/{case.id} {field}: {span!r}"
        for name, case in _shipped_cases()
        for field in ("lead", "relevant")
        for span in getattr(case, field)
        if not any(normalized(span) in sentence for sentence in article_sentences)
    ]
    assert crossing == []


def test_every_lead_span_is_also_a_relevant_span() -> None:
    """A later point that quotes a lead span answers the question: it must not count as padding."""
    missing = [f"{name}/{case.id}: {span!r}" for name, case in _shipped_cases() for span in case.lead
               if case.relevant and span not in case.relevant]  # fmt: skip
    assert missing == []


def test_the_members_set_holds_every_failure_class_of_issue_14() -> None:
    members = load_question_set(SETS_DIR / "members.yaml", corpus_dir=CORPUS)
    tags = {tag for case in members.cases for tag in case.tags}
    expects = [case.expect for case in members.cases]
    assert len(members.cases) >= 80
    assert {"greeting", "meta", "source", "uncovered", "negated-red-flag", "follow-up", "overview", "number"} <= tags
    assert expects.count("chat") >= 8 and expects.count("not_found") >= 10 and "escalate" in expects
    negated = [case for case in members.cases if "negated-red-flag" in case.tags]
    assert negated and all(case.expect == "answer" for case in negated)
    sources = [case for case in members.cases if "source" in case.tags]
    assert sources and all(case.must_include for case in sources)


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


@pytest.mark.parametrize("field", ["lead", "relevant"])
def test_a_lead_or_relevant_span_missing_from_the_corpus_names_the_case_and_field(tmp_path: Path, field: str) -> None:
    # the article says "2-3 times per week"; a paraphrase is not the article's text
    path = write_set(tmp_path, GOOD_CASE + f'    {field}: ["Position your feet about shoulder-width apart", "two '
                     f'or three times a week"]\n')  # fmt: skip
    with pytest.raises(QuestionSetError) as error:
        load_question_set(path, corpus_dir=CORPUS)
    message = str(error.value)
    assert str(path) in message and f"case 'foot-width', field '{field}': 'two or three times a week'" in message


def test_lead_and_relevant_spans_load_and_round_trip(tmp_path: Path) -> None:
    spans = '    lead: ["shoulder-width apart"]\n    relevant: ["shoulder-width apart", "slightly wider"]\n'
    (case,) = load_question_set(write_set(tmp_path, GOOD_CASE + spans), corpus_dir=CORPUS).cases
    assert case.lead == ("shoulder-width apart",) and case.relevant == ("shoulder-width apart", "slightly wider")
    assert case_from_dict(case.to_dict()) == case


def test_a_chat_case_expects_the_chat_status(tmp_path: Path) -> None:
    chat = '\n  - id: hello\n    question: "hey"\n    expect: chat\n    tags: [greeting]\n'
    (case,) = load_question_set(write_set(tmp_path, chat), corpus_dir=CORPUS).cases
    assert case.expected_status is Status.chat and case.expected_status.value == "chat"


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
