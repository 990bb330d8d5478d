"""Score fusion: several retrievers' rankings of the same query, combined into one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from typing import TypeVar

#: A retriever's results: ids with its own score (higher is better), best first.
Ranking = Sequence[tuple[str, float]]
#: What the rankings are named by (a view, or any string).
Name = TypeVar("Name", bound=str)


def linear_fusion(
    rankings: Mapping[Name, Ranking],
    *,
    weights: Mapping[Name, float] | None = None,
    normalize: Set[Name] = frozenset(),
) -> list[tuple[str, float]]:
    """Fuse by score: a weighted sum of each ranking's scores. Best first, ties broken by id.

    Rankings named in ``normalize`` (unbounded scores such as BM25) are divided by their best score,
    and an id they do not list counts 0; an id missing from any other (truncated) ranking gets that
    ranking's lowest listed score, the most it could have had. A ranking without a weight counts fully.
    """
    ids = {item for ranking in rankings.values() for item, _ in ranking}
    fused = dict.fromkeys(ids, 0.0)
    for name, ranking in rankings.items():
        if not ranking:
            continue
        weight = (weights or {}).get(name, 1.0)
        scores = dict(ranking)
        if name in normalize:
            top = max(scores.values())
            scores = {item: score / top for item, score in scores.items()} if top > 0 else {}
            floor = 0.0
        else:
            floor = min(scores.values())
        for item in ids:
            fused[item] += weight * scores.get(item, floor)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))
