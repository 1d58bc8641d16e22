"""Check of exercise 5: the chance-corrected complexity and Wilson's interval, against closed forms,
the Rademacher correlation computed by hand, and the interval's coverage in simulation."""

import math

import torch

from metrics import complexity, wilson_interval


def test_complexity_is_zero_at_chance_and_one_when_every_label_is_read():
    for K in (2, 3, 10):
        assert abs(complexity(1 / K, K)) < 1e-12 and abs(complexity(1.0, K) - 1) < 1e-12
    assert abs(complexity(0.75, 2) - 0.5) < 1e-12
    assert abs(complexity(0.4, 4) - (0.4 - 0.25) / 0.75) < 1e-12


def test_for_two_labels_it_is_the_rademacher_correlation():
    torch.manual_seed(0)
    r = torch.randint(2, (10_000,))
    guess = torch.where(torch.rand(10_000) < 0.63, r, 1 - r)
    sigma, s = 2 * r - 1, 2 * guess - 1  # ±1
    acc = (guess == r).float().mean().item()
    assert abs(complexity(acc, 2) - (sigma * s).float().mean().item()) < 1e-6


def wilson_by_hand(a, n, z=1.96):
    """The score interval: the p whose normal test of a against p is not rejected."""
    center = (a + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(a * (1 - a) / n + z * z / (4 * n * n))
    return center - half, center + half


def test_wilson_interval_against_its_formula_and_its_edges():
    for a, n in ((0.5, 100), (0.62, 2000), (0.9, 30)):
        lo, hi = wilson_interval(a, n)
        ref = wilson_by_hand(a, n)
        assert abs(lo - ref[0]) < 1e-9 and abs(hi - ref[1]) < 1e-9
    assert wilson_interval(1.0, 50)[1] <= 1.0 and wilson_interval(0.0, 50)[0] >= 0.0
    assert wilson_interval(0.0, 50)[1] > 0  # never a zero-width interval at the edges


def test_wilson_interval_covers_the_truth_95_percent_of_the_time():
    g = torch.Generator().manual_seed(0)
    p, n, trials = 0.55, 200, 2000
    hits = torch.rand(trials, n, generator=g) < p
    covered = 0
    for a in hits.float().mean(1).tolist():
        lo, hi = wilson_interval(a, n)
        covered += lo <= p <= hi
    assert 0.93 <= covered / trials <= 0.97, covered / trials
