import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.index.fusion import linear_fusion


def test_linear_fusion_normalises_unbounded_scores() -> None:
    fused = linear_fusion(
        {"dense": [("a", 0.60), ("b", 0.55)], "lexical": [("b", 12.0), ("a", 3.0)]},
        weights={"lexical": 0.5},
        normalize=frozenset({"lexical"}),
    )
    # b: 0.55 + 0.5 * 1.0 beats a: 0.60 + 0.5 * 0.25
    assert [item for item, _ in fused] == ["b", "a"]
    assert fused[0][1] == pytest.approx(1.05)


def test_linear_fusion_gives_a_missing_dense_score_the_lists_floor_and_a_missing_lexical_one_zero() -> None:
    fused = dict(
        linear_fusion({"dense": [("a", 0.7), ("b", 0.4)], "lexical": [("c", 2.0)]}, normalize=frozenset({"lexical"}))
    )
    assert fused == pytest.approx({"a": 0.7, "b": 0.4, "c": 0.4 + 1.0})


def test_fusion_breaks_ties_by_id() -> None:
    assert [i for i, _ in linear_fusion({"x": [("b", 1.0), ("a", 1.0)]})] == ["a", "b"]


def test_empty_rankings_fuse_to_nothing_and_an_empty_one_is_ignored() -> None:
    assert linear_fusion({}) == []
    assert linear_fusion({"dense": [], "lexical": [("a", 2.0)]}, normalize=frozenset({"lexical"})) == [("a", 1.0)]
    # a BM25 ranking whose best score is 0 adds nothing
    assert linear_fusion({"dense": [("a", 0.5)], "lexical": [("a", 0.0)]}, normalize=frozenset({"lexical"})) == [
        ("a", 0.5)
    ]


ids = st.sampled_from("abcdefgh")
scores = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
ranking = st.lists(st.tuples(ids, scores), max_size=6, unique_by=lambda pair: pair[0]).map(
    lambda pairs: sorted(pairs, key=lambda pair: -pair[1])
)
rankings = st.dictionaries(st.sampled_from(["text", "sentences", "lexical"]), ranking, max_size=3)
weights = st.dictionaries(st.sampled_from(["text", "sentences", "lexical"]), st.floats(0.0, 2.0), max_size=3)


@given(rankings, weights)
def test_fusion_ranks_every_id_once_best_first_with_ties_by_id(rankings, weights) -> None:
    fused = linear_fusion(rankings, weights=weights, normalize=frozenset({"lexical"}))
    assert sorted(item for item, _ in fused) == sorted({item for r in rankings.values() for item, _ in r})
    assert fused == sorted(fused, key=lambda pair: (-pair[1], pair[0]))


@given(ranking)
def test_one_ranking_alone_keeps_its_scores(ranking) -> None:
    assert dict(linear_fusion({"text": ranking})) == pytest.approx(dict(ranking))


@given(rankings, weights)
def test_doubling_every_weight_doubles_every_score(rankings, weights) -> None:
    full = {name: weights.get(name, 1.0) for name in rankings}
    once = dict(linear_fusion(rankings, weights=full, normalize=frozenset({"lexical"})))
    twice = dict(linear_fusion(rankings, weights={n: 2 * w for n, w in full.items()}, normalize=frozenset({"lexical"})))
    assert twice == pytest.approx({item: 2 * score for item, score in once.items()})


@given(ranking.filter(lambda r: r and r[0][1] > 0))
def test_a_normalised_ranking_gives_its_best_id_its_whole_weight_and_none_more(ranking) -> None:
    fused = dict(linear_fusion({"lexical": ranking}, weights={"lexical": 0.25}, normalize=frozenset({"lexical"})))
    assert fused[ranking[0][0]] == pytest.approx(0.25)
    assert all(0.0 <= score <= 0.25 + 1e-12 for score in fused.values())
