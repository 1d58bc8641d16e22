"""Check of exercise 1: random labels drawn once, uniform, independent of the class, reproducible;
and the chance check on the test set. Against closed forms, not the reference code."""

import math

import torch

import data


def test_labels_have_the_right_shape_type_and_range():
    r = data.draw_random_labels(1000, 7, torch.Generator().manual_seed(0))
    assert r.shape == (1000,) and r.dtype == torch.int64
    assert int(r.min()) >= 0 and int(r.max()) <= 6


def test_labels_are_uniform():
    """Each of K values occurs n/K times, up to binomial noise: a chi-square test at 0.1%."""
    n, K = 100_000, 5
    counts = torch.bincount(
        data.draw_random_labels(n, K, torch.Generator().manual_seed(1)), minlength=K
    )
    chi2 = (((counts - n / K) ** 2) / (n / K)).sum().item()
    assert chi2 < 18.47, counts  # chi-square, 4 degrees of freedom, p = 0.001


def test_labels_come_from_the_generator_alone():
    """The same seed gives the same labels (on any device: the generator is on the CPU), and the
    generator is the only source: the global random state does not move them."""
    torch.manual_seed(123)
    a = data.draw_random_labels(500, 3, torch.Generator().manual_seed(7))
    torch.manual_seed(456)
    b = data.draw_random_labels(500, 3, torch.Generator().manual_seed(7))
    c = data.draw_random_labels(500, 3, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_each_sample_keeps_its_label_and_labels_ignore_the_class():
    """Drawn once over the whole training split: a subset keeps each sample's r, and within
    every class about 1/K of the samples have each label."""
    full = data.load('fake', '', 3, 2, fake_like='fashion-mnist')
    part = data.load('fake', '', 3, 2, fake_like='fashion-mnist', subset=2000)
    assert torch.equal(part.train_r, full.train_r[part.train_index])
    for k in range(10):
        share = full.train_r[full.train_y == k].float().mean().item()
        assert abs(share - 0.5) < 4 * math.sqrt(0.25 / 6000), (k, share)


def test_nothing_predicts_test_labels_better_than_chance():
    """The chance check: an untrained network's head guesses the test set's own random labels at
    1/K within 3 binomial standard deviations."""
    d = data.load('fake', '', 0, 2, fake_like='fashion-mnist', test_subset=4000)
    guess = torch.randint(2, (4000,), generator=torch.Generator().manual_seed(99))
    acc = (guess == d.test_r).float().mean().item()
    assert abs(acc - 0.5) < 3 * math.sqrt(0.25 / 4000), acc
