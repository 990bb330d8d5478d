from __future__ import annotations

import pytest

from bot.contract import Answer, Citation, Passage, Status
from bot.evaluate.answer_shape import first_sentence, leads_with, padding
from bot.evaluate.loader import Case
from bot.evaluate.metrics import (
    answer_body,
    citation_problems,
    cited_gold,
    crashed_case,
    disclaimer_present,
    forbidden_text_found,
    gold_rank,
    key_fact_coverage,
    measure_case,
    missing_key_facts,
    percentile,
    reciprocal_rank,
    summarize,
)

DISCLAIMER = "Not medical advice; see a doctor."
FEET = "Position your feet about shoulder-width apart on the platform."
LOCK = "Extend your legs until they are almost straight, but do not lock your knees at the top."
WARMUP = "Always warm up before leg pressing."


def passage(text: str, n: int = 0) -> Passage:
    return Passage(chunk_id=f"c{n}", doc_id="doc", section="S", text=text, score=1.0, start=0, end=len(text))


def citation(n: int, text: str, quote: str) -> Citation:
    return Citation(n=n, chunk_id=f"c{n}", doc_id="doc", title="T", section="S", text=text, quote=quote,
                    start=0, end=len(quote))  # fmt: skip


def reply(body: str, *, citations=(), passages=(FEET, LOCK, WARMUP), status=Status.answered, ending=DISCLAIMER):
    return Answer(question="q", status=status, answer=f"{body}\n\n---\n{ending}", disclaimer=DISCLAIMER,
                  citations=list(citations), passages=[passage(t, i) for i, t in enumerate(passages)])  # fmt: skip


def case(**fields) -> Case:
    return Case(**{"id": "c", "expect": "answer", "question": "q", **fields})


# -- retrieval ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spans", "rank"),
    [
        (["shoulder-width apart"], 1),  # the first passage holds it
        (["do not lock your knees"], 2),
        (["nowhere", "warm up before"], 3),  # any one span of several counts
        (["nowhere"], None),
    ],
)
def test_gold_rank_is_the_first_passage_holding_any_gold_span(spans, rank) -> None:
    assert gold_rank(spans, [FEET, LOCK, WARMUP]) == rank


@pytest.mark.parametrize(("rank", "expected"), [(1, 1.0), (2, 0.5), (5, 0.2), (6, 0.0), (None, 0.0)])
def test_reciprocal_rank_counts_only_the_top_five(rank, expected) -> None:
    assert reciprocal_rank(rank) == expected


def test_hits_follow_the_gold_rank() -> None:
    metrics = measure_case(case(gold_spans=("warm up before",)), reply("x"), disclaimer=DISCLAIMER, latency_ms=1)
    assert (metrics.gold_rank, metrics.hit_at_1, metrics.hit_at_3, metrics.reciprocal_rank) == (3, False, True, 1 / 3)


def test_retrieval_metrics_do_not_apply_without_gold_spans() -> None:
    metrics = measure_case(case(expect="refuse"), reply("x"), disclaimer=DISCLAIMER, latency_ms=1)
    assert metrics.hit_at_1 is None and metrics.reciprocal_rank is None and metrics.citation_hit is None


# -- key facts and forbidden text -------------------------------------------------------------------------


def test_key_facts_need_one_alternative_per_group_case_insensitively() -> None:
    groups = [["Shoulder-Width"], ["hip", "glutes"], ["valgus"]]
    text = "Feet shoulder-width apart works the GLUTES."
    assert missing_key_facts(groups, text) == [["valgus"]]
    assert key_fact_coverage(groups, text) == pytest.approx(2 / 3)
    assert key_fact_coverage([], text) is None


def test_the_disclaimer_does_not_count_as_a_key_fact() -> None:
    answer = reply("Stop and get it checked.", status=Status.escalated)
    assert answer_body(answer.answer, DISCLAIMER) == "Stop and get it checked."
    metrics = measure_case(case(expect="escalate", must_include=(("doctor",),)), answer, disclaimer=DISCLAIMER,
                           latency_ms=1)  # fmt: skip
    assert metrics.key_coverage == 0.0


def test_forbidden_text_is_found_anywhere_in_the_reply() -> None:
    assert forbidden_text_found(["MG", "cheap-pills"], "Take 400mg.") == ["MG"]
    assert forbidden_text_found(["mg"], "No dose here.") == []


# -- disclaimer -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "present"),
    [
        (f"Body\n\n---\n{DISCLAIMER}", True),
        (f"Body\n\n---\n{DISCLAIMER}\n", True),  # trailing whitespace is fine
        (f"{DISCLAIMER}\n\nBody after it", False),  # present but not at the end
        ("Body only", False),
    ],
)
def test_the_disclaimer_must_end_the_reply(text, present) -> None:
    assert disclaimer_present(text, DISCLAIMER) is present


def test_the_replys_own_disclaimer_field_is_not_trusted() -> None:
    answer = reply("Body", ending="A different, weaker disclaimer.")
    assert answer.disclaimer == DISCLAIMER  # the reply claims the right disclaimer …
    assert not measure_case(case(), answer, disclaimer=DISCLAIMER, latency_ms=1).disclaimer_present  # … but lacks it


# -- citations ------------------------------------------------------------------------------------------


def test_valid_citations_have_no_problems() -> None:
    answer = reply(
        "Feet apart [1]. Don't lock [2].", citations=[citation(1, FEET, FEET), citation(2, LOCK, "but do not lock")]
    )
    assert citation_problems(answer) == []


@pytest.mark.parametrize(
    ("body", "citations", "problem"),
    [
        # a marker with no citation behind it
        ("Feet apart [1][3].", [citation(1, FEET, FEET)], "[3] has no citation"),
        # a passage the engine never retrieved
        ("Sleeves [1].", [citation(1, "Knee sleeves help.", "Knee sleeves help.")],
         "citation [1] cites a passage that was not retrieved"),
        # a quote that is not verbatim in its passage
        ("Lock out [1].", [citation(1, LOCK, "always lock your knees")],
         "citation [1] quotes text that is not in its passage"),
        ("Feet [1].", [citation(1, FEET, "  ")], "citation [1] has an empty quote"),
        # two sources under one number
        ("Feet [1].", [citation(1, FEET, FEET), citation(1, LOCK, LOCK)], "citation number 1 is used 2 times"),
    ],
)  # fmt: skip
def test_each_kind_of_broken_citation_is_reported(body, citations, problem) -> None:
    assert problem in citation_problems(reply(body, citations=citations))


def test_a_citation_hit_needs_a_cited_passage_with_a_gold_span() -> None:
    answer = reply("Don't lock [1].", citations=[citation(1, LOCK, "do not lock")])
    assert cited_gold(["do not lock your knees"], answer)
    assert not cited_gold(["shoulder-width"], answer)  # retrieved, but not cited


# -- the pass rule ----------------------------------------------------------------------------------------


def test_an_answer_case_passes_when_every_rule_holds() -> None:
    answer = reply("Feet shoulder-width apart [1].", citations=[citation(1, FEET, FEET)])
    metrics = measure_case(case(gold_spans=("shoulder-width",), must_include=(("shoulder-width",),)), answer,
                           disclaimer=DISCLAIMER, latency_ms=12.5)  # fmt: skip
    assert metrics.failures(case()) == [] and metrics.latency_ms == 12.5


def test_missing_key_facts_fail_answer_and_chat_cases_only() -> None:
    answer = reply("See a doctor soon.", status=Status.escalated)
    escalation = case(expect="escalate", must_include=(("urgent",),))
    assert measure_case(escalation, answer, disclaimer=DISCLAIMER, latency_ms=1).failures(escalation) == []
    answered = case(must_include=(("urgent",),))
    metrics = measure_case(answered, reply("See a doctor soon."), disclaimer=DISCLAIMER, latency_ms=1)
    assert metrics.failures(answered) == ["key facts missing: urgent"]
    # a question about the sources must name them
    source = case(expect="chat", must_include=(("Good Mind + Body",), ("Knee Pain After Leg Press",)))
    credits = reply("I quote *Knee Pain After Leg Press*, an article.", status=Status.chat)
    metrics = measure_case(source, credits, disclaimer=DISCLAIMER, latency_ms=1)
    assert metrics.failures(source) == ["key facts missing: Good Mind + Body"]


def test_every_broken_rule_is_a_reason() -> None:
    broken = case(expect="refuse", must_not_include=("lock",))
    answer = reply("Lock out [1].", citations=[citation(1, LOCK, "lock out hard")], ending="bye")
    reasons = measure_case(broken, answer, disclaimer=DISCLAIMER, latency_ms=1).failures(broken)
    assert reasons == [
        "status answered, expected out_of_scope",
        "the disclaimer is missing from the end of the reply",
        "invalid citation: citation [1] quotes text that is not in its passage",
        "forbidden text in the reply: 'lock'",
    ]


def test_a_crash_fails_the_case_and_every_metric_it_is_measured_on() -> None:
    crashing = case(gold_spans=("x",), must_include=(("y",),))
    metrics = crashed_case(crashing, RuntimeError("boom"), latency_ms=3)
    assert metrics.failures(crashing) == ["crashed: RuntimeError: boom"]
    assert (metrics.hit_at_3, metrics.key_coverage, metrics.disclaimer_present) == (False, 0.0, False)


# -- leading with the answer ----------------------------------------------------------------------------

FREQUENCY = "2-3 times per week is generally ideal for most individuals."
BALANCE = "It's important to balance frequency, intensity, and recovery."
REPS = "Use a rep range of 8-12 for muscle hypertrophy."


def test_a_reply_leads_with_the_answer_only_if_its_first_sentence_holds_a_lead_span() -> None:
    assert leads_with(["2-3 times per week"], f"{FREQUENCY} [1]\n\n- {BALANCE} [2]") is True
    # the answer is there, but second: the reply restates the question first
    assert leads_with(["2-3 times per week"], f"{BALANCE} [1]\n\n- {FREQUENCY} [2]") is False
    # two sentences of one quote: only the first counts
    assert leads_with(["2-3 times per week"], f"{BALANCE} {FREQUENCY} [1]") is False
    assert leads_with([], f"{FREQUENCY} [1]") is None  # the case says nothing about its lead


def test_any_one_lead_span_will_do() -> None:
    body = "Muscle imbalances and weakness can cause it. [1]"
    assert leads_with(["Using improper technique", "muscle weakness and imbalances", "imbalances and weakness"], body)


@pytest.mark.parametrize(
    ("body", "first"),
    [
        # emphasis, list markers and citation markers go; case and spacing don't matter to the comparison
        ("- **2-3 Times**   per week works. [1]\n- More. [2]", "2-3 Times per week works."),
        ("1. Rest 48 hours! Then train. [1]", "Rest 48 hours!"),
        ("Why? Because. [1]", "Why?"),
        # a line break ends a sentence: a heading or a list's lead-in is a first sentence of its own
        ("Frequency\n2-3 times per week. [1]", "Frequency"),
        ("\n\n---\n", ""),
    ],
)  # fmt: skip
def test_the_first_sentence_is_split_on_end_punctuation_and_line_breaks(body: str, first: str) -> None:
    assert first_sentence(body) == first


def test_the_lead_is_compared_without_case_emphasis_spacing_or_curly_quotes() -> None:
    assert leads_with(["it’s important to balance frequency"], "**IT'S important   to balance** frequency. [1]")
    assert not leads_with(["it’s important to balance frequency"], "It is important to balance frequency. [1]")


def test_the_lead_is_measured_on_the_body_not_the_disclaimer() -> None:
    answer = reply("Rest a while. [1]", citations=[citation(1, WARMUP, WARMUP)])
    leading = case(lead=("see a doctor",))  # only the disclaimer says it
    assert measure_case(leading, answer, disclaimer=DISCLAIMER, latency_ms=1).lead is False


def test_a_missed_lead_fails_the_case_and_names_the_first_sentence() -> None:
    leading = case(lead=("shoulder-width apart",))
    good = reply(f"{FEET} [1]\n\n- {LOCK} [2]", citations=[citation(1, FEET, FEET), citation(2, LOCK, LOCK)])
    assert measure_case(leading, good, disclaimer=DISCLAIMER, latency_ms=1).failures(leading) == []
    bad = reply(f"{LOCK} [1]\n\n- {FEET} [2]", citations=[citation(1, LOCK, LOCK), citation(2, FEET, FEET)])
    metrics = measure_case(leading, bad, disclaimer=DISCLAIMER, latency_ms=1)
    assert metrics.lead is False and metrics.first_sentence == LOCK
    assert metrics.failures(leading) == [f"the first sentence does not lead with the answer: {LOCK!r}"]


def test_a_refusal_for_an_answerable_question_misses_the_lead() -> None:
    leading = case(lead=("shoulder-width apart",))
    answer = reply("I can only help with knee pain after the leg press.", status=Status.out_of_scope)
    assert measure_case(leading, answer, disclaimer=DISCLAIMER, latency_ms=1).lead is False


# -- padding ----------------------------------------------------------------------------------------------


def test_padding_is_the_share_of_points_after_the_first_with_no_relevant_span() -> None:
    body = f"{FREQUENCY} [1]\n\n- {BALANCE} [1]\n- {REPS} [2]\n- Your lower body muscles will thank you. [3]"
    measured = padding(["2-3 times per week", "balance frequency, intensity, and recovery"], body)
    assert measured is not None
    assert measured.points == (BALANCE, REPS, "Your lower body muscles will thank you.")
    assert measured.padded == (REPS, "Your lower body muscles will thank you.")
    assert measured.share == pytest.approx(0.6667)


def test_the_first_statement_is_the_lead_not_a_point() -> None:
    # an irrelevant first statement is the lead metric's business; padding looks at what follows it
    body = f"{REPS} [1]\n\n- {FREQUENCY} [2]"
    measured = padding(["2-3 times per week"], body)
    assert measured is not None and measured.share == 0.0


def test_padding_is_not_measured_without_relevant_spans_or_points() -> None:
    assert padding([], f"{FREQUENCY} [1]\n\n- {REPS} [2]") is None
    assert padding(["2-3 times per week"], f"{FREQUENCY} [1]") is None  # one statement: no point after it
    assert padding(["2-3 times per week"], "The articles don't cover that.") is None  # cites nothing


def test_a_list_lead_in_is_one_statement_and_its_items_are_not_points() -> None:
    body = "Consider alternatives like: [1]\n\n- wall sits\n- deadlifts\n\nAlso worth knowing:\n\n- Rest. [2]"
    measured = padding(["alternative movements like"], body)
    assert measured is not None and measured.points == ("Rest.",) and measured.share == 1.0


def test_padding_is_recorded_per_case_with_the_padded_points() -> None:
    padded = case(relevant=("shoulder-width apart",))
    answer = reply(f"{FEET} [1]\n\n- {LOCK} [2]", citations=[citation(1, FEET, FEET), citation(2, LOCK, LOCK)])
    metrics = measure_case(padded, answer, disclaimer=DISCLAIMER, latency_ms=1)
    assert (metrics.padding, metrics.padded_points) == (1.0, [LOCK])
    assert metrics.failures(padded) == []  # padding is reported, it does not fail a case


# -- group summaries --------------------------------------------------------------------------------------


def test_a_summary_measures_each_metric_on_the_cases_it_applies_to() -> None:
    good = case(id="good", gold_spans=("shoulder-width",), must_include=(("shoulder",),))
    refusal = case(id="refusal", expect="refuse")
    crash = case(id="crash", expect="escalate")
    scored = [
        (good, measure_case(good, reply("Feet shoulder-width [1].", citations=[citation(1, FEET, FEET)]),
                            disclaimer=DISCLAIMER, latency_ms=10)),
        (refusal, measure_case(refusal, reply("Off topic.", status=Status.out_of_scope), disclaimer=DISCLAIMER,
                               latency_ms=30)),
        (crash, crashed_case(crash, ValueError("x"), latency_ms=0)),
    ]  # fmt: skip
    summary = summarize(scored)
    assert (summary.cases, summary.passed, summary.crashes) == (3, 2, 1)
    assert summary.metrics["hit@3"] == 1.0 and summary.measured["hit@3"] == 1
    assert summary.metrics["refusal_rate"] == 1.0 and summary.metrics["escalation_rate"] == 0.0
    assert summary.metrics["invalid_rate"] is None and summary.measured["invalid_rate"] == 0
    assert summary.metrics["crash_free"] == pytest.approx(0.6667)
    assert summary.latency_ms["p50"] == 20.0  # crashed cases have no latency


def test_a_summary_measures_lead_padding_and_chat_on_the_cases_they_apply_to() -> None:
    two_points = f"{FEET} [1]\n\n- {LOCK} [2]\n- {WARMUP} [3]"
    cites = [citation(1, FEET, FEET), citation(2, LOCK, LOCK), citation(3, WARMUP, WARMUP)]
    leads = case(id="leads", lead=("shoulder-width",), relevant=("shoulder-width", "do not lock"))
    buried = case(id="buried", lead=("warm up",), relevant=("warm up",))
    unspanned = case(id="unspanned")
    greeting = case(id="hi", expect="chat")
    crash = case(id="crash", lead=("x",), relevant=("x",))
    scored = [
        (leads, measure_case(leads, reply(two_points, citations=cites), disclaimer=DISCLAIMER, latency_ms=1)),
        (buried, measure_case(buried, reply(two_points, citations=cites), disclaimer=DISCLAIMER, latency_ms=1)),
        (unspanned, measure_case(unspanned, reply(two_points, citations=cites), disclaimer=DISCLAIMER, latency_ms=1)),
        (greeting, measure_case(greeting, reply("Hi!", status=Status.chat), disclaimer=DISCLAIMER, latency_ms=1)),
        (crash, crashed_case(crash, ValueError("x"), latency_ms=0)),
    ]  # fmt: skip
    summary = summarize(scored)
    # lead: leads ✓, buried ✗ (its answer is the last point), crash ✗; unspanned is not measured
    assert (summary.metrics["lead"], summary.measured["lead"]) == (pytest.approx(0.3333), 3)
    # padding: leads 1/2 (the warm-up point), buried 1/2 (the lock point); the crash made no points
    assert (summary.metrics["padding"], summary.measured["padding"]) == (0.5, 2)
    assert summary.metrics["no_padding"] == 0.5
    assert (summary.metrics["chat_rate"], summary.measured["chat_rate"]) == (1.0, 1)
    assert summary.metrics["answer_rate"] == pytest.approx(0.75)  # the greeting is not an answer case


def test_a_crashed_case_misses_its_lead() -> None:
    crashing = case(lead=("x",), relevant=("x",))
    metrics = crashed_case(crashing, RuntimeError("boom"), latency_ms=3)
    assert metrics.lead is False and metrics.padding is None


def test_percentiles_interpolate() -> None:
    assert percentile([10, 20, 30, 40], 50) == 25.0
    assert percentile([10, 20, 30, 40, 50], 95) == 48.0
    assert percentile([], 50) is None
