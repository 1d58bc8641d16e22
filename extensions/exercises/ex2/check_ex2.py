"""Check of exercise 2: the chance-corrected complexity and Wilson's interval, against closed forms
written here, the Rademacher correlation computed by hand, and the interval's coverage in
simulation. The references live inside the tests: a function that imports them fails."""

import torch

import metrics
from extensions.exercises.rules import draws, imports_no_check, reference


def closed_form(a, K):
    """ĉ = (a - 1/K) / (1 - 1/K)."""
    return (a - 1 / K) / (1 - 1 / K)


def score_interval(a, n, z=1.96):
    """Wilson's interval: the p whose normal test of a against p is not rejected."""
    center = (a + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * (a * (1 - a) / n + z * z / (4 * n * n)) ** 0.5
    return center - half, center + half


def test_the_functions_are_your_own():
    imports_no_check(metrics.complexity)
    imports_no_check(metrics.wilson_interval)


def test_complexity_against_its_closed_form_above_and_below_chance():
    """ĉ = (a - 1/K) / (1 - 1/K): 0 at chance, 1 when every label is read, and negative below
    chance (a head that reads labels wrong more often than a coin), never clipped."""
    draws('ex2.complexity')
    for K in (2, 3, 10, int(torch.randint(4, 100, ()))):
        for a in (0.0, 1 / K, 1.0, *torch.rand(5).tolist()):
            expected = reference(closed_form, a, K)
            got = metrics.complexity(a, K)
            assert abs(got - expected) < 1e-12, (
                f'complexity(a={a:.6f}, K={K}) = {got:.9f}, not {expected:.9f}'
            )
    assert metrics.complexity(0.3, 2) < 0, 'below chance, the complexity is negative'


def test_for_two_labels_it_is_the_rademacher_correlation():
    """K = 2: ĉ = (1/n) Σ σ_i s_i with σ, s = ±1, the label and the guess."""
    draws('ex2.rademacher')
    r = torch.randint(2, (10_000,))
    for p_right in (0.63, 0.5, 0.2):
        guess = torch.where(torch.rand(10_000) < p_right, r, 1 - r)
        sigma, s = 2 * r - 1, 2 * guess - 1  # ±1
        a = (guess == r).float().mean().item()
        rademacher = (sigma * s).float().mean().item()
        got = metrics.complexity(a, 2)
        assert abs(got - rademacher) < 1e-6, f'complexity(a={a}, K=2) = {got}, not {rademacher}'


def draw_ns(m):
    """m sample sizes from 5 to 5000 and, for each, a count of successes."""
    ns = torch.randint(5, 5001, (m,))
    return ns.tolist(), [int(torch.randint(0, int(n) + 1, ())) for n in ns]


def test_wilson_interval_against_its_formula_and_its_edges():
    draws('ex2.wilson')
    edges = [(0.5, 100), (0.9, 30), (0.0, 50), (1.0, 50), (0.12, 7)]
    drawn = [(k / n, n) for n, k in zip(*draw_ns(8), strict=True)]
    for a, n in edges + drawn:
        lo, hi = metrics.wilson_interval(a, n)
        ref = reference(score_interval, a, n)
        want = f'[{ref[0]:.9f}, {ref[1]:.9f}]'
        assert abs(lo - ref[0]) < 1e-9 and abs(hi - ref[1]) < 1e-9, (
            f'wilson_interval(a={a:.6f}, n={n}) = [{lo:.9f}, {hi:.9f}], not {want}'
        )
    for a, n in ((0.0, 50), (1.0, 50)):
        lo, hi = metrics.wilson_interval(a, n)
        assert 0 <= lo < hi <= 1, f'wilson_interval(a={a}, n={n}) = [{lo}, {hi}]: zero width'


def test_wilson_interval_covers_the_truth_95_percent_of_the_time():
    """Near the edge (p = 0.97, n = 60) the normal interval a ± 1.96·sqrt(a(1 - a)/n) covers
    only 84% of the time; Wilson's about 95%."""
    draws('ex2.coverage')
    for p, n in ((0.55, 200), (0.97, 60)):
        covered = 0
        for a in (torch.rand(2000, n) < p).float().mean(1).tolist():
            lo, hi = metrics.wilson_interval(a, n)
            covered += lo <= p <= hi
        assert 0.93 <= covered / 2000 <= 0.98, f'p = {p}, n = {n}: covered {covered / 2000:.3f}'
