from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.evaluate.authoring import append_case, case_id_from, parse_alternatives
from bot.evaluate.loader import SETS_DIR, QuestionSetError, load_question_set
from bot.settings import PROJECT_ROOT

CORPUS = PROJECT_ROOT / "corpus"


@pytest.fixture(params=sorted(p.name for p in SETS_DIR.glob("*.yaml")))
def set_copy(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A private copy of each shipped set file."""
    return Path(shutil.copy(SETS_DIR / request.param, tmp_path / request.param))


def test_ids_come_from_the_question_and_stay_unique() -> None:
    assert case_id_from("Why do my knees HURT after the sled?!", []) == "why-do-my-knees-hurt-after"
    assert (
        case_id_from("Why do my knees hurt after it", ["why-do-my-knees-hurt-after"]) == "why-do-my-knees-hurt-after-2"
    )
    assert case_id_from("¿¿??", []) == "case"


def test_must_include_alternatives_are_split_on_bars() -> None:
    assert parse_alternatives(["shoulder | feet", "90", " | "]) == [["shoulder", "feet"], ["90"]]


def test_a_case_is_appended_and_the_file_is_kept_as_written(set_copy: Path) -> None:
    before = set_copy.read_text(encoding="utf-8")
    case = append_case(set_copy, {"question": "my knees ache after sled day, where do my feet go?", "expect": "answer",
                                  "gold_spans": ["Position your feet about shoulder-width apart"],
                                  "must_include": [["shoulder-width", "shoulder width"]], "tags": ["foot-position"]},
                       corpus_dir=CORPUS)  # fmt: skip
    after = set_copy.read_text(encoding="utf-8")
    assert after.startswith(before)  # comments, quoting and escapes untouched
    assert case.id == "my-knees-ache-after-sled-day"
    assert '    must_include: [["shoulder-width", "shoulder width"]]' in after
    reloaded = load_question_set(set_copy, corpus_dir=CORPUS).cases[-1]
    assert reloaded == case


def test_lead_and_relevant_spans_are_written_and_checked(tmp_path: Path) -> None:
    path = Path(shutil.copy(SETS_DIR / "core.yaml", tmp_path / "core.yaml"))
    fields = {
        "question": "how often?",
        "expect": "answer",
        "gold_spans": ["2-3 times per week is generally ideal"],
        "lead": ["2-3 times per week"],
        "relevant": ["2-3 times per week", "at least 48 hours of rest"],
    }
    case = append_case(path, fields, corpus_dir=CORPUS)
    text = path.read_text(encoding="utf-8")
    assert '    lead:\n      - "2-3 times per week"\n    relevant:\n      - "2-3 times per week"\n' in text
    assert load_question_set(path, corpus_dir=CORPUS).cases[-1] == case
    before = path.read_bytes()
    with pytest.raises(QuestionSetError, match="field 'lead'"):
        append_case(path, {**fields, "id": "paraphrased", "lead": ["two or three times a week"]}, corpus_dir=CORPUS)
    assert path.read_bytes() == before


def test_an_invalid_case_leaves_the_file_untouched(tmp_path: Path) -> None:
    path = Path(shutil.copy(SETS_DIR / "core.yaml", tmp_path / "core.yaml"))
    before = path.read_bytes()
    with pytest.raises(QuestionSetError, match="field 'gold_spans'"):
        append_case(
            path, {"question": "q?", "expect": "answer", "gold_spans": ["not in any article"]}, corpus_dir=CORPUS
        )
    with pytest.raises(QuestionSetError, match="field 'expect'"):
        append_case(path, {"question": "q?", "expect": "maybe"}, corpus_dir=CORPUS)
    with pytest.raises(QuestionSetError, match="case 'foot-width', field 'id': the id is used twice"):
        append_case(path, {"id": "foot-width", "question": "q?", "expect": "answer"}, corpus_dir=CORPUS)
    assert path.read_bytes() == before


def test_a_set_whose_cases_do_not_end_the_file_is_rewritten_keeping_comments(tmp_path: Path) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text('# kept\ncases:\n  - id: a  # why\n    question: "hi"\n    expect: refuse\nname: odd\n'
                    'description: Cases first.\n', encoding="utf-8")  # fmt: skip
    append_case(path, {"question": "write me a poem", "expect": "refuse"}, corpus_dir=CORPUS)
    text = path.read_text(encoding="utf-8")
    assert "# kept" in text and "# why" in text and "write-me-a-poem" in text
    assert [c.id for c in load_question_set(path, corpus_dir=CORPUS).cases] == ["a", "write-me-a-poem"]
