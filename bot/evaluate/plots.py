"""The report's figures as inline SVG (text drawn as paths, so the page needs no fonts or files)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from bot.evaluate.metrics import GroupSummary

#: The metrics drawn per set, in this order.
PLOTTED_METRICS = ("hit@1", "hit@3", "mrr@5", "key_coverage", "citation_validity", "status_accuracy", "pass_rate")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory only
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "path", "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False})  # fmt: skip
    return plt


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    _pyplot().close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: the SVG sits inside HTML


def metrics_per_set(summaries: Mapping[str, GroupSummary]) -> str:
    """Grouped bars: each plotted metric for each set (a metric a set does not measure is left out)."""
    plt = _pyplot()
    scopes = list(summaries)
    width = 0.8 / max(len(scopes), 1)
    figure, axes = plt.subplots(figsize=(9, 3.4))
    for i, scope in enumerate(scopes):
        values = [summaries[scope].metrics.get(m) for m in PLOTTED_METRICS]
        positions = [j + (i - (len(scopes) - 1) / 2) * width for j in range(len(PLOTTED_METRICS))]
        measured = [(p, v) for p, v in zip(positions, values, strict=True) if v is not None]
        axes.bar([p for p, _ in measured], [v for _, v in measured], width=width * 0.95, label=scope)
    axes.set_xticks(range(len(PLOTTED_METRICS)), [m.replace("_", "\n") for m in PLOTTED_METRICS])
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("share of cases")
    axes.set_title("Metrics per set")
    axes.legend(ncol=len(scopes), loc="lower center", bbox_to_anchor=(0.5, -0.32), frameon=False)
    axes.grid(axis="y", alpha=0.3)
    return _svg(figure)


def pass_rate_per_tag(tags: Mapping[str, GroupSummary]) -> str:
    """Horizontal bars: the pass rate of every tag, worst first, with its number of cases."""
    plt = _pyplot()
    ordered = sorted(tags.items(), key=lambda item: (item[1].metrics["pass_rate"] or 0.0, item[0]), reverse=True)
    figure, axes = plt.subplots(figsize=(9, 0.6 + 0.17 * max(len(ordered), 1)))
    names = [f"{tag} ({summary.cases})" for tag, summary in ordered]
    rates = [summary.metrics["pass_rate"] or 0.0 for _, summary in ordered]
    colours = ["#2e7d32" if rate == 1 else "#c62828" for rate in rates]
    axes.barh(range(len(ordered)), rates, color=colours, height=0.75)
    axes.set_yticks(range(len(ordered)), names, fontsize=7)
    axes.set_xlim(0, 1)
    axes.set_ylim(-0.6, len(ordered) - 0.4)
    axes.set_xlabel("pass rate (cases per tag in brackets)")
    axes.set_title("Pass rate per tag")
    axes.grid(axis="x", alpha=0.3)
    return _svg(figure)


def latency_distribution(latencies_by_set: Mapping[str, Sequence[float]]) -> str:
    """Histogram of the scored ``ask`` latencies, stacked by set, with the overall p50 and p95."""
    from bot.evaluate.metrics import percentile

    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(9, 3))
    everything = [v for values in latencies_by_set.values() for v in values]
    if everything:
        names = [name for name, values in latencies_by_set.items() if values]
        axes.hist([latencies_by_set[n] for n in names], bins=30, stacked=True, label=names)
        for q, style in ((50, "--"), (95, ":")):
            value = percentile(everything, q)
            if value is not None:
                axes.axvline(value, color="black", linestyle=style, linewidth=1)
                axes.annotate(f"p{q} {value:.0f} ms", (value, 1), xycoords=("data", "axes fraction"),
                              xytext=(3, -10), textcoords="offset points", fontsize=8)  # fmt: skip
        axes.legend(frameon=False)
    axes.set_xlabel("latency of the scored ask (ms, measured by the harness)")
    axes.set_ylabel("cases")
    axes.set_title("Latency distribution")
    return _svg(figure)
