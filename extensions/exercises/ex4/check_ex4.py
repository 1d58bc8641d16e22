"""Check of exercise 4: stop-gradient, gradient reversal and the λ schedule, against autograd in
float64 and the schedule's closed form at many points."""

import math
from types import SimpleNamespace

import torch

import regularizer
import train
from extensions.exercises.rules import imports_no_check


def test_the_functions_are_your_own():
    for f in (regularizer.GradReverse.backward, regularizer.head_input, train.lam_at):
        imports_no_check(f)


def plain_gradient(z, w):
    (g,) = torch.autograd.grad((z @ w).sin().sum(), z)
    return g


def test_reversal_is_the_identity_forward_and_minus_lambda_backward():
    """GRL_λ(z) = z forward; the gradient reaching z is -λ times the plain one, exactly: the
    sign and the scale, for λ = 0, small, 1 and large, as a float and as a tensor (train.py's)."""
    torch.manual_seed(0)
    z = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(7, 3, dtype=torch.float64)
    plain = plain_gradient(z, w)
    for lam in (0.0, 0.3, 1.0, 2.5, torch.tensor(0.7, dtype=torch.float64)):
        out = regularizer.grad_reverse(z, lam)
        assert torch.equal(out, z), f'λ = {float(lam)}: the forward pass changed z'
        (reversed_,) = torch.autograd.grad((out @ w).sin().sum(), z)
        ratio = (reversed_ * plain).sum() / (plain * plain).sum()  # the factor the gradient got
        assert torch.allclose(reversed_, -float(lam) * plain, rtol=0, atol=1e-14), (
            f'λ = {float(lam)}: the gradient got the factor {ratio.item():+.3f}, not -λ'
        )


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
        out = regularizer.head_input(z, 2.0, unlearn, memorize)
        assert torch.equal(out, z), f'{unlearn}, memorize={memorize}: forward changed z'
        g = torch.zeros_like(z)  # sg: out is cut from z's graph, so no gradient at all
        if out.requires_grad:
            (g,) = torch.autograd.grad((out @ w).sin().sum(), z)
        assert torch.allclose(g, factor * plain, rtol=0, atol=1e-14), (
            f'unlearn={unlearn}, memorize={memorize}: the gradient to z is not {factor} x plain'
        )


def test_the_dann_ramp_and_the_constant_schedule():
    """λ_p = λ (2 / (1 + exp(-10 p)) - 1) (Ganin & Lempitsky 2015) at 21 points of training,
    and `constant` is λ throughout."""
    for lam in (3.0, 0.5):
        cfg = SimpleNamespace(lam=lam, lam_schedule='dann')
        for p in [i / 20 for i in range(21)]:
            expected = lam * (2 / (1 + math.exp(-10 * p)) - 1)
            got = train.lam_at(p, cfg)
            assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12), (
                f'dann, λ = {lam}, p = {p}: {got}, not {expected}'
            )
        cfg.lam_schedule = 'constant'
        values = {train.lam_at(p / 20, cfg) for p in range(21)}
        assert values == {lam}, f'constant, λ = {lam}: {sorted(values)}'
