"""The independent measure: leave-out memorization (Feldman & Zhang 2020, eq. 1); rank correlation.

    mem(i) = P[f_S(x_i) = y_i | i in S] - P[f_S(x_i) = y_i | i not in S],
over networks trained on random halves S of a pool. A complementary pair of networks (every pool
sample in exactly one of them) gives an unbiased estimate of mem(i) for every sample of the pool.
"""

import itertools
import math
import statistics

import torch


def feldman_zhang(correct, member):
    """Per-sample leave-out memorization from one complementary pair: correct, member: (2, N)
    bool, network j classifies sample i correctly / trained on it. Returns (N,) in {-1, 0, 1}."""
    c, m = correct.float(), member.bool()
    assert bool((m[0] ^ m[1]).all()), 'the two networks must split the samples between them'
    return torch.where(m[0], c[0] - c[1], c[1] - c[0])


def mean_and_error(per_pair):
    """Mean over pairs of each pair's mean, and its standard error over the P pairs (None for
    one pair). per_pair: a list of (N_p,) tensors, one per pair (pools may differ)."""
    means = [v.float().mean().item() for v in per_pair if len(v)]
    if not means:
        return None, None
    error = statistics_sd(means) / math.sqrt(len(means)) if len(means) > 1 else None
    return sum(means) / len(means), error


def statistics_sd(xs):
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def spearman(x, y):
    """Spearman's rank correlation (average ranks for ties); None below 3 points."""
    if len(x) < 3:
        return None

    def ranks(v):
        v = torch.tensor(v, dtype=torch.float64)
        rank = torch.empty_like(v)
        rank[v.argsort()] = torch.arange(len(v), dtype=torch.float64)
        for value in v.unique():  # ties share their average rank
            rank[v == value] = rank[v == value].mean()
        return rank

    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = (rx.norm() * ry.norm()).item()
    return (rx @ ry).item() / denominator if denominator > 0 else None


def spearman_exact(n, alpha=0.05):
    """Spearman's ρ of n points against the null of no order, from its exact permutation
    distribution (all n! orders, n ≤ 8; the normal approximation above): (the smallest |ρ| whose
    two-sided p is ≤ alpha, or None where no ρ reaches it; the p of |ρ| = 1). At n = 4 even
    |ρ| = 1 has p = 2/24; at n = 5, 2/120."""
    if n < 3:  # one or two points order nothing
        return None, 1.0
    if n > 8:
        critical = statistics.NormalDist().inv_cdf(1 - alpha / 2) / math.sqrt(n - 1)
        return critical, 2 / math.factorial(n)
    d = n * (n * n - 1)
    rhos = [
        1 - 6 * sum((i - j) ** 2 for i, j in enumerate(p)) / d
        for p in itertools.permutations(range(n))
    ]
    size = len(rhos)
    p_one = sum(abs(r) >= 1 - 1e-12 for r in rhos) / size
    for c in sorted({round(abs(r), 12) for r in rhos}):
        if sum(abs(r) >= c - 1e-12 for r in rhos) / size <= alpha:
            return c, p_one
    return None, p_one
