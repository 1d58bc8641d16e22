"""Check of exercise 3: stop-gradient, gradient reversal and the λ schedule, against autograd in
float64 and the schedule's closed form."""

import math
from types import SimpleNamespace

import torch

from regularizer import grad_reverse, head_input
from train import lam_at


def plain_gradient(z, w):
    (g,) = torch.autograd.grad((z @ w).sin().sum(), z)
    return g


def test_reversal_is_the_identity_forward_and_minus_lambda_backward():
    torch.manual_seed(0)
    z = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(7, 3, dtype=torch.float64)
    plain = plain_gradient(z, w)
    for lam in (0.0, 0.3, 2.5):
        out = grad_reverse(z, lam)
        assert torch.equal(out, z)
        (reversed_,) = torch.autograd.grad((out @ w).sin().sum(), z)
        assert torch.allclose(reversed_, -lam * plain, rtol=0, atol=1e-14), lam
    lam = torch.tensor(0.7, dtype=torch.float64)  # a tensor λ, as train.py passes it
    (reversed_,) = torch.autograd.grad((grad_reverse(z, lam) @ w).sin().sum(), z)
    assert torch.allclose(reversed_, -0.7 * plain, rtol=0, atol=1e-14)


def test_what_a_head_reads_in_each_mode():
    """sg(z) sends no gradient to f; GRL_λ(z) sends -λ times it; --memorize sends it as it is."""
    torch.manual_seed(1)
    z = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, dtype=torch.float64)
    plain = plain_gradient(z, w)
    for unlearn, memorize, factor in (
        ('none', False, 0.0),
        ('reg', False, 0.0),
        ('grl', False, -2.0),
        ('none', True, 1.0),
    ):
        out = head_input(z, 2.0, unlearn, memorize)
        assert torch.equal(out, z)  # the forward pass never changes
        g = torch.zeros_like(z)  # sg: out is cut from z's graph, so no gradient at all
        if out.requires_grad:
            (g,) = torch.autograd.grad((out @ w).sin().sum(), z)
        assert torch.allclose(g, factor * plain, rtol=0, atol=1e-14), (unlearn, memorize)


def test_the_dann_ramp_and_the_constant_schedule():
    """λ_p = λ (2 / (1 + exp(-10 p)) - 1) (Ganin & Lempitsky 2015): 0 at the start, about λ at
    the end, rising in between; `constant` is λ throughout."""
    cfg = SimpleNamespace(lam=3.0, lam_schedule='dann')
    assert lam_at(0.0, cfg) == 0.0
    assert math.isclose(lam_at(0.5, cfg), 3.0 * (2 / (1 + math.exp(-5)) - 1))
    assert abs(lam_at(1.0, cfg) - 3.0) < 1e-3
    values = [lam_at(p / 10, cfg) for p in range(11)]
    assert values == sorted(values)
    cfg.lam_schedule = 'constant'
    assert {lam_at(p / 10, cfg) for p in range(11)} == {3.0}
