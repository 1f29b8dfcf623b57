"""Tests for comparing two releases that ran side by side, window by window.

A canary and the stable release share the same time windows: a burst, a slow minute of the host
or a noisy neighbour hits both. So every comparison here is *stratified by window*: canary calls
are ranked against stable calls of the same window only, and an expected figure for the canary
(its latency, its error count) is what the stable release showed in the windows the canary ran in.
A burst that slows both sides then moves nothing, however unevenly the canary's few calls fall
into it.

* :func:`stratified_mann_whitney` — the Mann–Whitney U summed over strata (its mean and variance
  too: the strata are independent under "no difference"), one-sided "canary slower". With one
  sample a side per stratum (per-window means, when no per-call sketch is kept) it is a sign test.
* :func:`poisson_sf` — P(X ≥ k) for a Poisson count: "this many canary errors, when the stable
  release's rates in the same windows predict μ".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from querywatch.detect.stats import normal_sf

Samples = Sequence[tuple[float, int]]
"""Weighted samples: ``(value, count)`` stands for ``count`` equal values (a sketch's buckets)."""

NORMAL_TAIL_FROM = 500
"""Above this many events the Poisson tail is taken from its normal approximation."""


@dataclass(frozen=True, slots=True)
class StratifiedU:
    """One-sided stratified Mann–Whitney test of "the canary tends to be slower".

    ``superiority`` is ``u / pairs``: the probability that a canary sample exceeds a stable
    sample *of the same window* (0.5 = no difference; ties count one half).
    """

    u: float
    expected_u: float
    variance: float
    pairs: int  # sum over strata of n_canary * n_stable
    strata: int  # windows in which both sides had samples
    n_canary: int
    n_stable: int
    z: float
    p_value: float

    @property
    def superiority(self) -> float:
        return self.u / self.pairs if self.pairs else 0.5


def _stratum(stable: Samples, canary: Samples) -> tuple[float, float, float, int, int, int]:
    """U of the canary side in one stratum, its mean and tie-corrected variance under H0."""
    counts: dict[float, list[int]] = {}
    for side, samples in ((0, stable), (1, canary)):
        for value, n in samples:
            if n < 0:
                raise ValueError("sample counts must not be negative")
            if n:
                counts.setdefault(value, [0, 0])[side] += n
    n1 = sum(c[0] for c in counts.values())
    n2 = sum(c[1] for c in counts.values())
    if n1 == 0 or n2 == 0:
        return 0.0, 0.0, 0.0, 0, n1, n2
    n = n1 + n2
    rank_sum, below, ties = 0.0, 0, 0.0
    for value in sorted(counts):
        c1, c2 = counts[value]
        t = c1 + c2
        rank_sum += c2 * (below + (t + 1) / 2.0)
        if t > 1:
            ties += float(t) ** 3 - t
        below += t
    u = rank_sum - n2 * (n2 + 1) / 2.0
    variance = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    return u, n1 * n2 / 2.0, max(variance, 0.0), n1 * n2, n1, n2


def stratified_mann_whitney(strata: Iterable[tuple[Samples, Samples]]) -> StratifiedU | None:
    """The test over ``(stable, canary)`` sample pairs, one pair per window; None without a
    window in which both sides have samples.

    Normal approximation of the summed U with a continuity correction of one half. Strata with
    one side empty carry no evidence and are skipped.
    """
    u = mean = var = 0.0
    pairs = used = n_c = n_s = 0
    for stable, canary in strata:
        su, sm, sv, sp, n1, n2 = _stratum(stable, canary)
        if not sp:
            continue
        u, mean, var = u + su, mean + sm, var + sv
        pairs, used, n_s, n_c = pairs + sp, used + 1, n_s + n1, n_c + n2
    if not used:
        return None
    if var <= 0.0:  # every sample tied within every window: no evidence either way
        return StratifiedU(u, mean, var, pairs, used, n_c, n_s, 0.0, 1.0)
    z = (u - mean - 0.5) / math.sqrt(var)
    return StratifiedU(u, mean, var, pairs, used, n_c, n_s, z, min(1.0, normal_sf(z)))


def poisson_sf(k: int, mu: float) -> float:
    """P(X ≥ k) for X ~ Poisson(mu): how surprising ``k`` events are when ``mu`` were expected."""
    if k <= 0:
        return 1.0
    if mu <= 0.0:
        return 0.0
    if k > NORMAL_TAIL_FROM:
        return min(1.0, normal_sf((k - 0.5 - mu) / math.sqrt(mu)))

    def log_term(i: int) -> float:
        return i * math.log(mu) - mu - math.lgamma(i + 1)

    if k > mu:  # the upper tail directly (terms fall from k on), exact far into the tail
        first = log_term(k)
        total, i, term = 0.0, k, 1.0
        while term > 1e-17 * total or i == k:
            term = math.exp(log_term(i) - first)
            total += term
            i += 1
        return min(1.0, math.exp(first) * total)
    below = sum(math.exp(log_term(i)) for i in range(k))  # 1 - P(X <= k-1); p is large here
    return min(1.0, max(0.0, 1.0 - below))


__all__ = ["Samples", "StratifiedU", "poisson_sf", "stratified_mann_whitney"]
