"""Questions embedded together are grouped by length (``length_groups``): every one once, cheapest groups."""

from __future__ import annotations

import itertools
import random

import pytest

from bot.models.onnx_encoder import CALL_COST_TOKENS, length_groups


def cost(lengths: list[int], groups: list[list[int]]) -> int:
    return sum(CALL_COST_TOKENS + len(group) * max(lengths[i] for i in group) for group in groups)


def cheapest(lengths: list[int], most: int) -> int:
    """By brute force: every split of the sorted lengths into runs of at most ``most``."""
    ordered = sorted(lengths)
    best = None
    for cuts in itertools.product([False, True], repeat=len(ordered) - 1):
        runs, run = [], [ordered[0]]
        for length, cut in zip(ordered[1:], cuts, strict=True):
            if cut:
                runs.append(run)
                run = []
            run.append(length)
        runs.append(run)
        if all(len(r) <= most for r in runs):
            total = sum(CALL_COST_TOKENS + len(r) * max(r) for r in runs)
            best = total if best is None else min(best, total)
    assert best is not None
    return best


@pytest.mark.parametrize("seed", range(40))
def test_every_text_once_in_the_cheapest_groups(seed: int) -> None:
    rng = random.Random(seed)
    lengths = [rng.choice([rng.randint(8, 30), rng.randint(30, 256)]) for _ in range(rng.randint(1, 9))]
    most = rng.choice([2, 3, 16])
    groups = length_groups(lengths, most=most)
    assert sorted(i for group in groups for i in group) == list(range(len(lengths)))
    assert all(1 <= len(group) <= most for group in groups)
    assert cost(lengths, groups) == cheapest(lengths, most)


def test_similar_lengths_share_a_call_and_a_long_one_is_alone() -> None:
    assert length_groups([19, 21, 20, 18], most=16) == [[3, 0, 2, 1]]
    assert length_groups([19, 200, 21], most=16) == [[0, 2], [1]]
    assert length_groups([], most=16) == []
