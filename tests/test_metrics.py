"""The metric on hand-worked cases, the fresh-head fit, and the estimator of the controls on
simulated features whose truth is known: coverage where nothing differs, a planted difference
found with its stated coverage, r planted in the features seen by a_train - a_fresh and not by m,
and the smaller error of the draw-averaged m against the single-draw estimate on the same
networks."""

import math
import statistics

import torch

from metrics import (
    across_networks,
    complexity,
    controls,
    detectable,
    fit_heads,
    t_quantile,
    wilson_interval,
)


def test_complexity_hand_worked_cases():
    assert complexity(1.0, 2) == 1.0 and complexity(0.5, 2) == 0.0
    assert complexity(0.1, 10) == 0.0 and complexity(1.0, 10) == 1.0
    for a in (0.3, 0.62, 0.9):
        assert abs(complexity(a, 2) - (2 * a - 1)) < 1e-12  # K = 2: the Rademacher correlation


def test_complexity_equals_rademacher_correlation_for_binary_labels():
    torch.manual_seed(0)
    r = torch.randint(2, (1000,))
    pred = torch.where(torch.rand(1000) < 0.7, r, 1 - r)
    sigma, s = 2 * r - 1, 2 * pred - 1
    acc = (pred == r).float().mean().item()
    assert abs(complexity(acc, 2) - (sigma * s).float().mean().item()) < 1e-6


def test_wilson_interval():
    lo, hi = wilson_interval(0.5, 100)
    assert abs(lo - 0.4038) < 1e-3 and abs(hi - 0.5962) < 1e-3  # hand-computed
    assert wilson_interval(1.0, 50)[1] == 1.0 and wilson_interval(0.0, 50)[0] == 0.0


# Student's t, 97.5% quantile, computed elsewhere: scipy 1.17.1, stats.t.ppf(0.975, df), rounded
SCIPY_T = {1: 12.7062, 1.5: 6.01666, 2: 4.30265, 2.5: 3.57465, 3: 3.18245, 3.5: 2.94009}
SCIPY_T |= {4: 2.77645, 5: 2.57058, 7: 2.36462, 9.6: 2.24079, 15: 2.13145, 22.4: 2.07173}
SCIPY_T |= {29: 2.04523, 30: 2.04227, 31: 2.03951, 45.5: 2.01349, 60: 2.0003, 120: 1.97993}
SCIPY_T |= {1000: 1.96234, math.inf: 1.95996}


def test_t_quantile_against_scipy():
    """Integer and Welch (fractional) degrees of freedom, to the fifth significant digit."""
    for df, expected in SCIPY_T.items():
        assert abs(t_quantile(df) - expected) < 2e-5 * expected, (df, t_quantile(df), expected)
    assert abs(t_quantile(2, 0.9) - 1.88562) < 1e-4  # another quantile: scipy's t.ppf(0.9, 2)


def test_across_networks_hand_worked():
    one = across_networks([0.02], [0.01])  # one network: its own error, normal quantile
    assert one['n'] == 1 and abs(one['ci'][1] - 0.02 - 1.95996 * 0.01) < 1e-5
    three = across_networks([0.0, 0.01, 0.05], [0.001] * 3)  # a spread above their own errors
    sd = statistics.stdev([0.0, 0.01, 0.05])
    assert abs(three['ci'][1] - three['mean'] - 4.30265 * sd / math.sqrt(3)) < 1e-5
    assert three['between_sd'] == sd and abs(three['within_se'] - 0.001) < 1e-12
    two = across_networks([0.002, 0.002 + 9e-5], [0.0019, 0.0019])  # they agree, each errs 0.19
    assert abs(two['se'] - 0.0019 / math.sqrt(2)) < 1e-12  # never narrower than their own errors
    assert abs(detectable(0.01) - (1.95996 + 0.84162) * 0.01) < 1e-6


def coverage(M, rho, tau, trials, g):
    """How often across_networks covers the true mean θ = 0 over simulated studies of M networks
    in pairs, as make validate's halves come: each network's estimate is u + e, u ~ N(0, tau²)
    its true value, e ~ N(0, 1) its own error, correlated rho within a pair (halves of one pool
    measured on shared held-out images or draws), its stated error sqrt(chi²_15 / 15) (16 label
    draws). Returns (the old interval's coverage, from the spread alone; the new one's)."""
    pair = torch.randn(trials, M // 2, generator=g).repeat_interleave(2, 1)
    e = math.sqrt(rho) * pair + math.sqrt(1 - rho) * torch.randn(trials, M, generator=g)
    x = tau * torch.randn(trials, M, generator=g) + e
    stated = (torch.randn(trials, M, 15, generator=g).pow(2).mean(2)).sqrt()
    old = new = 0
    for values, errors in zip(x.tolist(), stated.tolist(), strict=True):
        lo, hi = across_networks(values, errors)['ci']
        new += lo <= 0 <= hi
        half = t_quantile(M - 1) * statistics.stdev(values) / math.sqrt(M)
        old += abs(statistics.fmean(values)) <= half
    return old / trials, new / trials


def test_the_interval_over_networks_covers_where_the_spread_alone_does_not():
    """Independent networks (rho = 0): both intervals hold 95%. Pairs whose errors share half
    their variance (rho = 0.5): the spread of 2, 4 or 8 networks understates the mean's error
    (coverage 89-92%); the random-effects interval keeps >= 93%, with or without true spread."""
    g = torch.Generator().manual_seed(0)
    paired_old = []
    for M in (2, 4, 8):
        for rho, tau in ((0.0, 0.0), (0.5, 0.0), (0.5, 0.5)):
            old, new = coverage(M, rho, tau, trials=2000, g=g)
            assert new >= 0.93, (M, rho, tau, old, new)
            paired_old += [old] if rho > 0 else []
    assert sum(old < 0.93 for old in paired_old) >= 4, paired_old  # the spread alone falls short


def test_fresh_heads_read_what_is_in_the_features_and_converge():
    torch.manual_seed(0)
    n, D, C = 2000, 8, 4
    y, r = torch.randint(C, (n,)), torch.randint(2, (n,))
    informative = torch.randn(n, D) + 3 * r[:, None].float()
    noise = torch.randn(n, D)  # 500 per head >> 2D = 16: a linear head cannot memorize
    for layout in ('per-class', 'shared'):
        fit = fit_heads(informative, y, r[None], 2, C, layout)
        assert fit.accuracy[0] > 0.95 and fit.converged and fit.steps < 1000
        fit = fit_heads(noise, y, r[None], 2, C, layout)
        assert fit.accuracy[0] < 0.6 and fit.converged


def test_fresh_heads_shatter_labels_below_cover_capacity():
    """n < 2D points in general position: every labelling is linearly separable (Cover 1965)."""
    torch.manual_seed(0)
    z, r = torch.randn(40, 32), torch.randint(2, (3, 40))
    assert torch.equal(fit_heads(z, None, r, 2, 1, 'shared').accuracy, torch.ones(3))


def test_batched_fit_equals_one_fit_per_label_draw():
    torch.manual_seed(0)
    z, y, labels = torch.randn(300, 6), torch.randint(3, (300,)), torch.randint(4, (5, 300))
    together = fit_heads(z, y, labels, 4, 3, 'per-class').accuracy
    alone = torch.cat([fit_heads(z, y, row[None], 4, 3, 'per-class').accuracy for row in labels])
    assert torch.allclose(together, alone, atol=2 / 300)  # at most a sample or two differ


# --- the estimator on simulated features ----------------------------------------------------------

N, D = 200, 8  # 200 samples against 2D = 16: a regime where a head reads ~58% of any labels


def simulated(g, extra=0, signal=0.0):
    """One simulated network: training features with `extra` dimensions that held-out ones lack
    (a planted geometry difference) and `signal` of their own random labels r planted along one
    direction; untrained features that hold neither. Returns controls' three sides."""
    r = torch.randint(2, (N,), generator=g)
    z = torch.randn(N, D + extra, generator=g)
    z[:, 0] += signal * (2 * r - 1)
    held = torch.cat([torch.randn(N, D, generator=g), torch.zeros(N, extra)], 1)
    y = torch.zeros(N, dtype=torch.long)
    return (
        (z, y, r),
        (held, y, torch.randint(2, (N,), generator=g)),
        (torch.randn(N, D + extra, generator=g), y, r),
    )


def estimates(extra, signal, networks, seed):
    g = torch.Generator().manual_seed(seed)
    return [controls(*simulated(g, extra, signal), 2, 1, 'shared', seed=i) for i in range(networks)]


def covered(found, key, truth):
    return sum(f[f'{key}_ci'][0] <= truth <= f[f'{key}_ci'][1] for f in found)


def test_intervals_cover_zero_when_nothing_differs():
    """40 simulated networks that memorized nothing: m and a_train - a_fresh hold 0 in at least
    34 of 40 (95% nominal; 34 is the one-sided 2.5% binomial bound)."""
    found = estimates(extra=0, signal=0.0, networks=40, seed=0)
    assert covered(found, 'memorization', 0.0) >= 34
    assert covered(found, 'specific', 0.0) >= 34
    assert abs(statistics.mean(f['specific'] for f in found)) < 0.01  # E[a_train] = E[a_fresh]


def test_a_planted_geometry_difference_is_found_with_the_stated_coverage():
    """Training features with 16 extra dimensions that held-out features lack: a head fits more
    labels on them (about 6 points more here). The truth comes from 20 other networks; m's
    interval must cover it in >= 34 of 40 networks, exclude 0 in most, and a_train - a_fresh must
    still hold 0 (no r is planted)."""
    truth = statistics.mean(f['memorization'] for f in estimates(16, 0.0, 20, seed=1))
    found = estimates(extra=16, signal=0.0, networks=40, seed=2)
    assert truth > 0.03, truth
    assert covered(found, 'memorization', truth) >= 34
    assert sum(f['memorization_ci'][0] > 0 for f in found) >= 36
    assert covered(found, 'specific', 0.0) >= 34


def test_random_labels_planted_in_the_features_light_up_a_train_minus_a_fresh_not_m():
    """The positive control's signature: features that hold r itself. A head reads these labels
    far better than fresh ones (a_train - a_fresh > 0); fresh labels on both sides see no
    difference (m holds 0): m and a_train - a_fresh answer different questions."""
    found = estimates(extra=0, signal=1.5, networks=10, seed=3)
    assert all(f['specific_ci'][0] > 0.1 for f in found)
    assert covered(found, 'memorization', 0.0) >= 8


def test_the_draw_averaged_m_has_about_a_third_of_the_single_draw_error():
    """On the same simulated networks: the stated errors, and the spread the estimates really
    have over networks."""
    found = estimates(extra=0, signal=0.0, networks=30, seed=4)
    new = statistics.mean(f['memorization_se'] for f in found)
    old = statistics.mean(f['single_draw']['se'] for f in found)
    assert new < 0.45 * old, (new, old)
    spread_new = statistics.stdev(f['memorization'] for f in found)
    spread_old = statistics.stdev(f['single_draw']['m'] for f in found)
    assert spread_new < 0.6 * spread_old, (spread_new, spread_old)
