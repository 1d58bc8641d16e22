"""Check of exercise 2: the chance-corrected complexity and Wilson's interval, against closed forms
written here, the Rademacher correlation computed by hand, and the interval's coverage in
simulation. The references live inside the tests: a function that imports them fails."""

import math

import torch

import metrics
from extensions.exercises.rules import imports_no_check


def test_the_functions_are_your_own():
    imports_no_check(metrics.complexity)
    imports_no_check(metrics.wilson_interval)


def test_complexity_against_its_closed_form_above_and_below_chance():
    """ĉ = (a - 1/K) / (1 - 1/K): 0 at chance, 1 when every label is read, and negative below
    chance (a head that reads labels wrong more often than a coin), never clipped."""
    for K in (2, 3, 10):
        for a in (0.0, 0.05, 1 / K, 0.4, 0.77, 1.0):
            expected = (a - 1 / K) / (1 - 1 / K)
            got = metrics.complexity(a, K)
            assert abs(got - expected) < 1e-12, f'complexity(a={a}, K={K}) = {got}, not {expected}'
    assert metrics.complexity(0.3, 2) < 0, 'below chance, the complexity is negative'


def test_for_two_labels_it_is_the_rademacher_correlation():
    """K = 2: ĉ = (1/n) Σ σ_i s_i with σ, s = ±1, the label and the guess."""
    torch.manual_seed(0)
    r = torch.randint(2, (10_000,))
    for p_right in (0.63, 0.5, 0.2):
        guess = torch.where(torch.rand(10_000) < p_right, r, 1 - r)
        sigma, s = 2 * r - 1, 2 * guess - 1  # ±1
        a = (guess == r).float().mean().item()
        rademacher = (sigma * s).float().mean().item()
        got = metrics.complexity(a, 2)
        assert abs(got - rademacher) < 1e-6, f'complexity(a={a}, K=2) = {got}, not {rademacher}'


def test_wilson_interval_against_its_formula_and_its_edges():
    def score_interval(a, n, z=1.96):  # the p whose normal test of a against p is not rejected
        center = (a + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(a * (1 - a) / n + z * z / (4 * n * n))
        return center - half, center + half

    for a, n in ((0.5, 100), (0.62, 2000), (0.9, 30), (0.0, 50), (1.0, 50), (0.12, 7)):
        lo, hi = metrics.wilson_interval(a, n)
        ref = score_interval(a, n)
        want = f'[{ref[0]:.6f}, {ref[1]:.6f}]'
        assert abs(lo - ref[0]) < 1e-9 and abs(hi - ref[1]) < 1e-9, (
            f'wilson_interval(a={a}, n={n}) = [{lo:.6f}, {hi:.6f}], not {want}'
        )
    for a, n in ((0.0, 50), (1.0, 50)):
        lo, hi = metrics.wilson_interval(a, n)
        assert 0 <= lo < hi <= 1, f'wilson_interval(a={a}, n={n}) = [{lo}, {hi}]: zero width'


def test_wilson_interval_covers_the_truth_95_percent_of_the_time():
    """Near the edge (p = 0.97, n = 60) the normal interval a ± 1.96·sqrt(a(1 - a)/n) covers
    only 84% of the time; Wilson's about 95%."""
    g = torch.Generator().manual_seed(0)
    for p, n in ((0.55, 200), (0.97, 60)):
        covered = 0
        for a in (torch.rand(2000, n, generator=g) < p).float().mean(1).tolist():
            lo, hi = metrics.wilson_interval(a, n)
            covered += lo <= p <= hi
        assert 0.93 <= covered / 2000 <= 0.98, f'p = {p}, n = {n}: covered {covered / 2000:.3f}'
