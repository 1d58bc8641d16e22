"""The metric on hand-worked cases, the fresh-head fit, the memorization interval on simulated
features whose truth is known, and the leave-out memorization of Feldman & Zhang."""

import math

import torch

from metrics import (
    complexity,
    feldman_zhang,
    fit_heads,
    mean_and_error,
    memorization,
    spearman,
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
    wide, narrow = wilson_interval(0.6, 100), wilson_interval(0.6, 10000)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


def test_t_quantile_against_tables():
    for df, exact in ((4, 2.776), (10, 2.228), (30, 2.042), (1000, 1.962)):
        assert abs(t_quantile(df) - exact) < 0.05


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


def simulated(n, D, signal, generator):
    """Training features that carry `signal` of the random labels (0: none), held-out and
    initial features that carry none: m's truth is known in sign."""
    r_train = torch.randint(2, (n,), generator=generator)
    direction = torch.zeros(D)
    direction[0] = 1.0
    z_train = (
        torch.randn(n, D, generator=generator) + signal * (2 * r_train[:, None] - 1) * direction
    )
    y = torch.zeros(n, dtype=torch.long)
    heldout = (
        torch.randn(n, D, generator=generator),
        y,
        torch.randint(2, (n,), generator=generator),
    )
    init = (torch.randn(n, D, generator=generator), y, r_train)
    fresh = torch.randint(2, (16, n), generator=generator)
    return (z_train, y, r_train), heldout, init, fresh


def test_memorization_interval_covers_zero_when_nothing_was_memorized():
    """Coverage of the 95% interval on 40 simulated networks that memorized nothing."""
    g = torch.Generator().manual_seed(0)
    covered = 0
    for _ in range(40):
        result = memorization(
            *simulated(200, 8, 0.0, g)[:3], 2, 1, 'shared', simulated(200, 8, 0, g)[3]
        )
        lo, hi = result['memorization_ci']
        covered += lo <= 0 <= hi
    assert covered >= 34, covered  # 95% nominal; 34/40 is its one-sided binomial 2.5% bound


def test_memorization_interval_excludes_zero_when_the_features_hold_the_labels():
    g = torch.Generator().manual_seed(1)
    train, heldout, init, fresh = simulated(400, 8, 1.0, g)
    result = memorization(train, heldout, init, 2, 1, 'shared', fresh)
    assert result['memorization_ci'][0] > 0.1 and result['a_train'] > result['a_fresh'] + 0.1
    assert abs(result['a_heldout'] - result['a_init']) < 0.06  # neither holds the labels


def test_feldman_zhang_on_hand_worked_models():
    # four samples, two complementary pairs; sample 0 is right only when trained on (mem 1),
    # sample 1 always right (0), sample 2 never (0), sample 3 right when left out (-1)
    member = torch.tensor(
        [[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1]], dtype=torch.bool
    )
    correct = torch.stack([torch.tensor([m[0], True, False, not m[3]]) for m in member.tolist()])
    per_pair = feldman_zhang(correct, member)
    assert per_pair.tolist() == [[1, 0, 0, -1], [1, 0, 0, -1]]
    mean, error = mean_and_error(per_pair)
    assert mean == 0.0 and error == 0.0
    assert mean_and_error(per_pair, torch.tensor([True, False, False, False]))[0] == 1.0


def test_feldman_zhang_recovers_a_simulated_memorizer():
    """Models right on every training sample and on a left-out one with probability 0.3."""
    g = torch.Generator().manual_seed(0)
    n, pairs = 5000, 4
    member = []
    for _ in range(pairs):
        first = torch.rand(n, generator=g) < 0.5
        member += [first, ~first]
    member = torch.stack(member)
    correct = member | (torch.rand(2 * pairs, n, generator=g) < 0.3)
    mean, error = mean_and_error(feldman_zhang(correct, member))
    assert abs(mean - 0.7) < 3 * error + 0.01 and error < 0.02


def test_spearman_hand_worked():
    assert abs(spearman([1, 2, 3, 4], [10, 20, 30, 40]) - 1) < 1e-12
    assert abs(spearman([1, 2, 3, 4], [4, 3, 2, 1]) + 1) < 1e-12
    assert abs(spearman([1, 2, 3], [1, 1, 2]) - math.sqrt(3) / 2) < 1e-12  # ties: ranks 1.5, 1.5, 3
    assert spearman([1, 2], [1, 2]) is None
