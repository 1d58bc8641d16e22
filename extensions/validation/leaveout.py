"""The independent measure: leave-out memorization (Feldman & Zhang 2020, eq. 1); rank correlation.

    mem(i) = P[f_S(x_i) = y_i | i in S] - P[f_S(x_i) = y_i | i not in S],
over networks trained on random halves S of a pool. A complementary pair of networks (every pool
sample in exactly one of them) gives an unbiased estimate of mem(i) for every sample of the pool.
"""

import math

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


def spearman_critical(n):
    """|ρ| beyond which Spearman's ρ of n points differs from 0 (two-sided 5%): exact values for
    small n (Zar 1972), else the normal approximation."""
    exact = {4: 1.0, 5: 1.0, 6: 0.886, 7: 0.786, 8: 0.738, 9: 0.700, 10: 0.648}
    return exact.get(n, 1.96 / math.sqrt(max(n - 1, 1)))
