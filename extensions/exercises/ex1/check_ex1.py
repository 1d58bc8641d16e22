"""Check of exercise 1: random labels drawn once, uniform, independent of each other and of the
class, from the generator alone; and the chance check on the test set. Against closed forms and
binomial bounds, never against the reference code."""

import math

import torch

import data

N, K = 20_000, 4


def draw(n, K, seed_or_generator):
    g = seed_or_generator
    g = torch.Generator().manual_seed(g) if isinstance(g, int) else g
    return data.draw_random_labels(n, K, g)


def near(value, expected, n, what):
    """value within 4 binomial standard deviations of expected, over n trials."""
    sd = math.sqrt(expected * (1 - expected) / n)
    assert abs(value - expected) < 4 * sd, (
        f'{what}: {value:.4f}, expected {expected:.4f} ± {4 * sd:.4f}'
    )


def test_labels_have_the_right_shape_type_and_range():
    r = draw(1000, 7, 0)
    assert r.shape == (1000,) and r.dtype == torch.int64, (r.shape, r.dtype)
    assert int(r.min()) == 0 and int(r.max()) == 6, (int(r.min()), int(r.max()))


def test_labels_are_uniform():
    """Each of K values occurs n/K times, up to binomial noise: a chi-square test at 0.1%."""
    counts = torch.bincount(draw(100_000, 5, 1), minlength=5)
    chi2 = (((counts - 100_000 / 5) ** 2) / (100_000 / 5)).sum().item()
    assert chi2 < 18.47, (
        f'counts {counts.tolist()}: chi-square {chi2:.1f} > 18.47 (4 df, p = 0.001)'
    )


def test_labels_come_from_the_generator_alone():
    """The same seed gives the same labels (on any device: the generator is on the CPU), another
    seed others, and the global random state does not move them."""
    torch.manual_seed(123)
    a = draw(500, 3, 7)
    torch.manual_seed(456)
    b = draw(500, 3, 7)
    assert torch.equal(a, b), 'the same generator seed gave other labels: use `generator` only'
    near((a == draw(500, 3, 8)).float().mean().item(), 1 / 3, 500, 'agreement of seeds 7 and 8')


def test_two_draws_from_one_generator_are_independent():
    """data.load draws the training labels, then the test labels, from one generator: the second
    draw must be new labels, neither a repeat nor a prefix of the first."""
    g = torch.Generator().manual_seed(3)
    first, second = draw(N, K, g), draw(N // 2, K, g)
    near((first[: N // 2] == second).float().mean().item(), 1 / K, N // 2, 'second draw vs first')
    near((first[N // 2 :] == second).float().mean().item(), 1 / K, N // 2, 'second vs first, end')


def test_labels_of_different_seeds_agree_at_chance():
    agree = [(draw(N, K, s) == draw(N, K, s + 1)).float().mean().item() for s in range(3)]
    for s, a in enumerate(agree):
        near(a, 1 / K, N, f'agreement of seeds {s} and {s + 1}')


def test_labels_have_no_serial_pattern():
    """Neighbours agree at chance 1/K, at every lag up to 5, and the labels come in no order."""
    r = draw(N, K, 11)
    for lag in range(1, 6):
        near((r[lag:] == r[:-lag]).float().mean().item(), 1 / K, N - lag, f'labels {lag} apart')
    rises = (r[1:] > r[:-1]).float().mean().item()  # P(r_{i+1} > r_i) = (1 - 1/K) / 2
    near(rises, (1 - 1 / K) / 2, N - 1, 'share of rises between neighbours')


def test_each_sample_keeps_its_label_and_labels_ignore_the_class():
    """Drawn once over the whole training split: a subset keeps each sample's r, and within
    every class about 1/K of the samples have each label."""
    full = data.load('fake', '', 3, 2, fake_like='fashion-mnist')
    part = data.load('fake', '', 3, 2, fake_like='fashion-mnist', subset=2000)
    assert torch.equal(part.train_r, full.train_r[part.train_index]), 'a subset changed r'
    for k in range(10):
        in_class = full.train_r[full.train_y == k]
        near(in_class.float().mean().item(), 0.5, len(in_class), f'share of r = 1 in class {k}')


def test_nothing_predicts_test_labels_better_than_chance():
    """The chance check: a guess independent of the images gets the test set's own random labels
    right at 1/K, and so does the training draw, sample for sample."""
    d = data.load('fake', '', 0, 2, fake_like='fashion-mnist')
    n = len(d.test_r)
    guess = torch.randint(2, (n,), generator=torch.Generator().manual_seed(99))
    near((guess == d.test_r).float().mean().item(), 0.5, n, 'a fixed guess on test labels')
    near((d.train_r[:n] == d.test_r).float().mean().item(), 0.5, n, 'training r vs test r')
