"""Robust statistics for detection, in plain Python (no scipy: the agent stays light to install).

Latencies are skewed and full of outliers, so baselines use medians and the median absolute
deviation rather than means and standard deviations, and "is it slower?" is a rank test
(Mann–Whitney U), which assumes nothing about the shape of the distribution.

The rank test works on *weighted* samples, ``(value, count)`` pairs: a latency sketch's buckets
are exactly that, so thousands of calls are tested without expanding them one by one (and without
thinning them: the result is the same as for the expanded samples).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAD_TO_SIGMA = 1.4826
"""Scales a MAD to the standard deviation of a normal distribution with the same spread."""


def median(values: Sequence[float]) -> float:
    """The middle value (mean of the two middle ones for an even count); ValueError when empty."""
    return percentile(values, 50.0)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), interpolated linearly between order statistics.

    The same definition as numpy's default (``linear``), so figures match what people compute.
    """
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    frac = pos - lo
    return ordered[lo] + (ordered[hi] - ordered[lo]) * frac


def mad(values: Sequence[float], *, center: float | None = None, normal: bool = False) -> float:
    """Median absolute deviation from ``center`` (default: the median).

    ``normal=True`` scales it by 1.4826 so it estimates a standard deviation for normal data.
    """
    c = median(values) if center is None else center
    raw = median([abs(v - c) for v in values])
    return raw * MAD_TO_SIGMA if normal else raw


def weighted_median(values: Sequence[float], weights: Sequence[float]) -> float:
    """The value below which half the total weight lies (lower median on an exact split).

    Used for the load control: the typical slowdown of the other queries, weighted by calls, so
    a thousand calls of a hot query count more than one call of a rare one.
    """
    if len(values) != len(weights):
        raise ValueError("values and weights differ in length")
    pairs = sorted((v, w) for v, w in zip(values, weights, strict=True) if w > 0)
    if not pairs:
        raise ValueError("weighted median needs at least one positive weight")
    half = sum(w for _, w in pairs) / 2.0
    seen = 0.0
    for v, w in pairs:
        seen += w
        if seen >= half:
            return v
    return pairs[-1][0]  # unreachable: the weights add up past half


def leave_one_out_weighted_medians(
    values: Sequence[float], weights: Sequence[float]
) -> list[float | None]:
    """For each item, the weighted median of all the *other* items (None if they weigh nothing).

    The load control: each query is compared with the typical change of the others. Sorting once
    and bisecting the cumulative weights makes it O(n log n), so 10,000 fingerprints are cheap.
    """
    if len(values) != len(weights):
        raise ValueError("values and weights differ in length")
    order = sorted(range(len(values)), key=lambda i: values[i])
    sorted_values = [values[i] for i in order]
    cum: list[float] = []
    acc = 0.0
    for i in order:
        acc += max(weights[i], 0.0)
        cum.append(acc)
    rank = {i: r for r, i in enumerate(order)}
    out: list[float | None] = []
    for i in range(len(values)):
        own = max(weights[i], 0.0)
        rest = acc - own
        if rest <= 0:
            out.append(None)
            continue
        half, r_i = rest / 2.0, rank[i]
        lo, hi = 0, len(order) - 1
        while lo < hi:  # first position whose cumulative weight without item i reaches half
            mid = (lo + hi) // 2
            if cum[mid] - (own if r_i <= mid else 0.0) >= half:
                hi = mid
            else:
                lo = mid + 1
        # lo is never item i: the prefix without i already reaches half one position earlier
        out.append(sorted_values[lo])
    return out


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z (the upper tail), accurate far into the tail."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@dataclass(frozen=True, slots=True)
class MannWhitney:
    """One-sided Mann–Whitney U test of "after tends to be greater than before".

    ``u`` counts the (before, after) pairs where after is greater, ties counting one half;
    ``superiority`` is ``u / (n_before * n_after)``: the probability that a random after-sample
    exceeds a random before-sample (the common-language effect size; 0.5 means no difference).
    """

    u: float
    p_value: float
    superiority: float
    z: float
    n_before: int
    n_after: int


def mann_whitney_greater(before: Sequence[float], after: Sequence[float]) -> MannWhitney:
    """The test on plain samples (each value counts once)."""
    return mann_whitney_greater_weighted([(v, 1) for v in before], [(v, 1) for v in after])


def mann_whitney_greater_weighted(
    before: Iterable[tuple[float, int]], after: Iterable[tuple[float, int]]
) -> MannWhitney:
    """The test on weighted samples: ``(value, count)`` stands for ``count`` equal values.

    Normal approximation with the tie correction of the variance and a continuity correction of
    one half; for 8 or more samples a side it is within a few percent of the exact p-value (in
    the region that matters here, p around 0.01 and below). Equal values across sides are ties
    (a latency sketch's bucket is one value, so calls within 1% of each other tie).
    """
    counts: dict[float, list[int]] = {}
    for side, samples in ((0, before), (1, after)):
        for value, n in samples:
            if n < 0:
                raise ValueError("sample counts must not be negative")
            if n:
                slot = counts.setdefault(value, [0, 0])
                slot[side] += n
    n1 = sum(c[0] for c in counts.values())
    n2 = sum(c[1] for c in counts.values())
    if n1 == 0 or n2 == 0:
        raise ValueError("Mann–Whitney needs at least one sample on each side")
    n = n1 + n2
    rank_after = 0.0  # rank sum of the after side
    below = 0  # samples of both sides strictly below the current value
    tie_term = 0.0
    for value in sorted(counts):
        c_before, c_after = counts[value]
        t = c_before + c_after
        mid_rank = below + (t + 1) / 2.0  # ranks below+1 .. below+t, averaged over the tie
        rank_after += c_after * mid_rank
        if t > 1:
            tie_term += float(t) ** 3 - t
        below += t
    u = rank_after - n2 * (n2 + 1) / 2.0
    mean_u = n1 * n2 / 2.0
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0.0:  # every sample equal: no evidence either way
        return MannWhitney(u, 1.0, u / (n1 * n2), 0.0, n1, n2)
    z = (u - mean_u - 0.5) / math.sqrt(variance)
    return MannWhitney(u, min(1.0, normal_sf(z)), u / (n1 * n2), z, n1, n2)
