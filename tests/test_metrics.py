"""The metric on hand-worked cases, and the post-hoc probe on features with known content."""

import torch

from metrics import complexity, fit_probe, wilson_interval


def test_complexity_hand_worked_cases():
    assert complexity(1.0, 2) == 1.0 and complexity(0.5, 2) == 0.0
    assert complexity(0.1, 10) == 0.0 and complexity(1.0, 10) == 1.0
    for a in (0.3, 0.62, 0.9):
        assert (
            abs(complexity(a, 2) - (2 * a - 1)) < 1e-12
        )  # K = 2: the Rademacher correlation 2a - 1


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


def test_probe_reads_labels_that_are_in_the_features_and_not_those_that_are_not():
    torch.manual_seed(0)
    n, D, C = 2000, 8, 4
    y, r = torch.randint(C, (n,)), torch.randint(2, (n,))
    informative = torch.randn(n, D) + 3 * r[:, None].float()
    head, (mean, std), _ = fit_probe(informative, y, r, C, 2, 'per-class')
    assert (head((informative - mean) / std, y).argmax(1) == r).float().mean() > 0.95
    noise = torch.randn(n, D)  # n per head (500) >> 2D (16): a linear head cannot memorize
    head, (mean, std), _ = fit_probe(noise, y, r, C, 2, 'per-class')
    assert (head((noise - mean) / std, y).argmax(1) == r).float().mean() < 0.6
