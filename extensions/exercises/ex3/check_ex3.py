"""Check of exercise 3: the random-label heads against a Python loop over classes (yours has none),
the shared head, the frozen head's gradients (autograd), and Cover's count for the capacity they
measure."""

import math

import torch
import torch.nn.functional as F

import model
from extensions.exercises.rules import as_fast_as_one_pass, imports_no_check


def test_the_functions_are_your_own_and_loop_over_nothing():
    """Your own, and on 50,000 samples as fast as a few tensor operations (a loop over the
    samples, wherever it hides, takes hundreds of times longer): the gather, and the per-class
    head's forward (a linear map, then the gather)."""
    for function in (model.own_class_head, model.RandomLabelHead.forward):
        imports_no_check(function)
    B, C, K = 50_000, 10, 2
    y = torch.randint(C, (B,))
    as_fast_as_one_pass(model.own_class_head, torch.randn(B, C * K), y, K)
    head = model.RandomLabelHead(16, C, K, 'per-class')
    with torch.no_grad():
        z = torch.randn(B, 16)
        as_fast_as_one_pass(lambda z, y: head(z, y), z, y, times=40)


def test_per_class_head_scores_each_sample_with_its_own_class_head():
    torch.manual_seed(0)
    C, K, D, B = 4, 3, 6, 10
    head = model.RandomLabelHead(D, C, K, 'per-class')
    z, y = torch.randn(B, D), torch.randint(C, (B,))
    W, b = head.linear.weight.view(C, K, D), head.linear.bias.view(C, K)  # class c: rows cK..cK+K-1
    expected = torch.stack([z[i] @ W[y[i]].T + b[y[i]] for i in range(B)])
    out = head(z, y)
    assert out.shape == (B, K), f'per-class head: shape {tuple(out.shape)}, not (B, K)'
    assert torch.allclose(out, expected, atol=1e-6), 'per-class head: not the own class head'
    # the gather on R heads at once, (R, B, C·K) -> (R, B, K), as metrics.fit_heads uses it
    logits = torch.randn(3, B, C * K)
    expected = torch.stack([logits[:, i, y[i] * K : (y[i] + 1) * K] for i in range(B)], 1)
    got = model.own_class_head(logits, y, K)
    assert torch.equal(got, expected), 'own_class_head on logits of shape (R, B, C·K)'


def test_shared_head_is_one_linear_map_whatever_the_class():
    torch.manual_seed(0)
    head = model.RandomLabelHead(6, 4, 3, 'shared')
    z = torch.randn(5, 6)
    expected = z @ head.linear.weight.T + head.linear.bias
    assert torch.allclose(head(z, torch.zeros(5, dtype=torch.long)), expected, atol=1e-6)
    assert torch.allclose(head(z, torch.full((5,), 3)), expected, atol=1e-6)


def test_frozen_head_sends_gradient_to_the_features_only():
    torch.manual_seed(0)
    for layout in ('per-class', 'shared'):
        head = model.RandomLabelHead(6, 4, 2, layout)
        z = torch.randn(5, 6, requires_grad=True)
        head(z, torch.randint(4, (5,)), frozen=True).sum().backward()
        assert z.grad is not None and z.grad.abs().sum() > 0, f'{layout}, frozen: no grad to z'
        frozen = head.linear.weight.grad is None and head.linear.bias.grad is None
        assert frozen, f'{layout}, frozen: the parameters of the head got a gradient'
        head(z, torch.randint(4, (5,))).sum().backward()  # not frozen: the head learns
        assert head.linear.weight.grad is not None, f'{layout}: the head gets no gradient'


def cover_fraction(n, d):
    """Cover (1965): the share of the 2^n labellings of n points in general position in d
    dimensions that a linear map through the origin separates, 2 Σ_{k<d} C(n-1, k) / 2^n."""
    return 2 * sum(math.comb(n - 1, k) for k in range(d)) / 2**n


def separated(z, labels):
    """The share of labellings (R, n) that your head, fitted to convergence, gets all right. One
    per-class head with a class per labelling fits all R at once: the gather keeps them apart."""
    R, n = labels.shape
    torch.manual_seed(0)
    head = model.RandomLabelHead(z.shape[1], R, 2, 'per-class')
    zs, y = z.repeat(R, 1), torch.arange(R).repeat_interleave(n)  # labelling j is "class" j
    r = labels.reshape(-1)
    opt = torch.optim.LBFGS(head.parameters(), max_iter=500, line_search_fn='strong_wolfe')

    def loss():
        opt.zero_grad()
        value = F.cross_entropy(head(zs, y), r, reduction='sum') / n
        value.backward()
        return value

    opt.step(loss)
    right = (head(zs, y).argmax(1) == r).view(R, n)
    return right.all(1).float().mean().item()


def test_a_linear_head_fits_random_labels_as_cover_counts():
    """With a bias a head on D features acts in D + 1 dimensions: at n = 2(D + 1) it separates
    half of all labellings, below D + 1 points all of them, well above it almost none."""
    D = 5
    assert cover_fraction(2 * (D + 1), D + 1) == 0.5
    g = torch.Generator().manual_seed(0)
    for n, low, high in ((6, 1.0, 1.0), (12, 0.25, 0.75), (36, 0.0, 0.1)):
        z = torch.randn(n, D, generator=g)
        share = separated(z, torch.randint(2, (48, n), generator=g))
        expected = cover_fraction(n, D + 1)
        assert low <= share <= high, f'n = {n}: your head fits {share:.2f}, Cover {expected:.2f}'
