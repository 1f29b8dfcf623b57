"""Robust statistics and the Mann–Whitney test against hand-computed and textbook values.

scipy is not a dependency; the rank test is checked against a hand calculation (with ties), the
normal table, a brute-force pair count, and the exact permutation distribution for small samples.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest

from querywatch.detect.baseline import sketch_samples
from querywatch.detect.stats import (
    MAD_TO_SIGMA,
    leave_one_out_weighted_medians,
    mad,
    mann_whitney_greater,
    mann_whitney_greater_weighted,
    median,
    normal_sf,
    percentile,
    weighted_median,
)
from querywatch.sketch import LatencySketch


def test_median_odd_even() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    with pytest.raises(ValueError):
        median([])


def test_percentile_matches_numpy_linear_definition() -> None:
    # numpy.percentile([15, 20, 35, 40, 50], 40) == 29.0 ; ([1, 2, 3, 4], 25) == 1.75
    assert percentile([15.0, 20.0, 35.0, 40.0, 50.0], 40) == pytest.approx(29.0)
    assert percentile([1.0, 2.0, 3.0, 4.0], 25) == pytest.approx(1.75)
    assert percentile([5.0], 95) == 5.0
    assert percentile([1.0, 9.0], 0) == 1.0 and percentile([1.0, 9.0], 100) == 9.0
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_mad_textbook_example() -> None:
    # Wikipedia's example: {1, 1, 2, 2, 4, 6, 9}: median 2, deviations {1,1,0,0,2,4,7}, MAD 1.
    data = [1.0, 1.0, 2.0, 2.0, 4.0, 6.0, 9.0]
    assert mad(data) == 1.0
    assert mad(data, normal=True) == pytest.approx(MAD_TO_SIGMA)
    assert mad(data, center=0.0) == 2.0


def test_weighted_median() -> None:
    assert weighted_median([1.0, 2.0, 10.0], [1, 1, 1]) == 2.0
    # one heavy value dominates: 1000 calls at 2x outweigh three rare queries at 10x
    assert weighted_median([10.0, 10.0, 10.0, 2.0], [1, 1, 1, 1000]) == 2.0
    with pytest.raises(ValueError):
        weighted_median([1.0], [0])


def test_leave_one_out_medians_match_the_direct_computation() -> None:
    rng = random.Random(11)
    for _ in range(200):
        n = rng.randint(1, 12)
        values = [float(rng.randint(1, 6)) for _ in range(n)]
        weights = [float(rng.choice([0, 1, 2, 5, 100])) for _ in range(n)]
        got = leave_one_out_weighted_medians(values, weights)
        for i in range(n):
            others_v = values[:i] + values[i + 1 :]
            others_w = weights[:i] + weights[i + 1 :]
            want = weighted_median(others_v, others_w) if sum(others_w) > 0 else None
            assert got[i] == want, (values, weights, i)


def test_normal_tail_matches_the_table() -> None:
    assert normal_sf(0.0) == pytest.approx(0.5)
    assert normal_sf(1.959964) == pytest.approx(0.025, rel=1e-5)
    assert normal_sf(2.326348) == pytest.approx(0.01, rel=1e-5)
    assert normal_sf(3.090232) == pytest.approx(0.001, rel=1e-5)


def test_mann_whitney_hand_computed_with_ties() -> None:
    # before {1,2,2,3}, after {2,3,4,5}. Pairs where after wins, ties count 1/2:
    #   2 beats 1 and ties two 2s -> 2;  3 beats 1,2,2 and ties 3 -> 3.5;  4 -> 4;  5 -> 4.
    # U = 13.5, superiority = 13.5/16. Ties: three 2s and two 3s -> sum(t^3 - t) = 24 + 6 = 30.
    # var = 4*4/12 * (9 - 30/(8*7)) = 11.2857;  z = (13.5 - 8 - 0.5) / sqrt(var) = 1.48835;
    # p = P(Z > 1.48835) = 0.06833.
    r = mann_whitney_greater([1, 2, 2, 3], [2, 3, 4, 5])
    assert r.u == 13.5
    assert r.superiority == pytest.approx(0.84375)
    assert r.z == pytest.approx(1.48835, abs=1e-4)
    assert r.p_value == pytest.approx(0.06833, abs=1e-4)
    assert (r.n_before, r.n_after) == (4, 4)


def test_mann_whitney_complete_separation_and_no_difference() -> None:
    # 8 vs 8, every after value above every before value: U = 64, z = (64-32-0.5)/sqrt(64*17/12)
    r = mann_whitney_greater(list(range(1, 9)), list(range(9, 17)))
    assert r.u == 64 and r.superiority == 1.0
    assert r.z == pytest.approx(31.5 / math.sqrt(64 * 17 / 12))
    assert r.p_value == pytest.approx(normal_sf(31.5 / math.sqrt(64 * 17 / 12)))
    # the other direction is "not greater": p near 1
    assert mann_whitney_greater(list(range(9, 17)), list(range(1, 9))).p_value > 0.99
    # all values equal: no evidence at all
    same = mann_whitney_greater([5.0] * 10, [5.0] * 10)
    assert same.p_value == 1.0 and same.superiority == 0.5


def brute_u(before: list[float], after: list[float]) -> float:
    return sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in after for b in before)


def test_u_matches_brute_force_pair_count() -> None:
    rng = random.Random(7)
    for _ in range(50):
        before = [float(rng.randint(0, 12)) for _ in range(rng.randint(1, 15))]
        after = [float(rng.randint(0, 12)) for _ in range(rng.randint(1, 15))]
        r = mann_whitney_greater(before, after)
        assert r.u == pytest.approx(brute_u(before, after))
        assert r.superiority == pytest.approx(brute_u(before, after) / (len(before) * len(after)))


def exact_p_greater(before: list[float], after: list[float]) -> float:
    """P(U >= observed) over every relabelling of the pooled samples (the exact null)."""
    pooled = before + after
    observed = brute_u(before, after)
    n2 = len(after)
    hits = total = 0
    for idx in itertools.combinations(range(len(pooled)), n2):
        chosen = set(idx)
        a = [pooled[i] for i in idx]
        b = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        total += 1
        hits += brute_u(b, a) >= observed - 1e-9
    return hits / total


@pytest.mark.parametrize("shift", [1.0, 1.6, 2.2])
def test_normal_approximation_is_close_to_exact_for_eight_a_side(shift: float) -> None:
    rng = random.Random(int(shift * 10))
    before = [round(rng.gauss(10, 1), 1) for _ in range(8)]
    after = [round(rng.gauss(10 + shift, 1), 1) for _ in range(8)]
    approx = mann_whitney_greater(before, after).p_value
    exact = exact_p_greater(before, after)
    # within 25% relative (or 0.003 absolute) in the region where decisions are made
    assert abs(approx - exact) <= max(0.25 * exact, 0.003), (approx, exact)


def test_weighted_samples_equal_expanded_samples() -> None:
    before = [(1.0, 3), (2.0, 5), (4.0, 1)]
    after = [(2.0, 2), (4.0, 6), (8.0, 3)]

    def expand(s: list[tuple[float, int]]) -> list[float]:
        return [v for v, n in s for _ in range(n)]

    w = mann_whitney_greater_weighted(before, after)
    e = mann_whitney_greater(expand(before), expand(after))
    assert (w.u, w.p_value, w.superiority, w.n_before, w.n_after) == (
        e.u,
        e.p_value,
        e.superiority,
        e.n_before,
        e.n_after,
    )
    with pytest.raises(ValueError):
        mann_whitney_greater_weighted([], after)


def test_sketch_buckets_are_weighted_samples_that_tie_across_sketches() -> None:
    a, b = LatencySketch(), LatencySketch()
    for v in (0.1, 0.1, 0.1, 0.5):
        a.add(v)
    for v in (0.1, 18.0, 18.1, 18.0):
        b.add(v)
    sa, sb = sketch_samples(a), sketch_samples(b)
    assert sum(n for _, n in sa) == 4 and sum(n for _, n in sb) == 4
    # the 0.1 ms calls land in the same bucket value on both sides: exact ties
    assert sa[0][0] == sb[0][0]
    assert sa[0][0] == pytest.approx(0.1, rel=0.01)
    r = mann_whitney_greater_weighted(sa, sb)
    # 3 slow after-calls beat all 4 before-calls, the 0.1 ties three and loses to 0.5
    assert r.u == pytest.approx(3 * 4 + 3 * 0.5)
