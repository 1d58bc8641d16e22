"""Check of exercise 4: stop-gradient, gradient reversal and the λ schedule, against autograd in
float64 and the schedule's closed form at many points."""

import math
from types import SimpleNamespace

import torch

import regularizer
import train
from extensions.exercises.rules import draws, imports_no_check, reference


def test_the_functions_are_your_own():
    for f in (regularizer.GradReverse.backward, regularizer.head_input, train.lam_at):
        imports_no_check(f)


def dann_ramp(p, lam):
    """λ_p = λ (2 / (1 + exp(-10 p)) - 1), at every p of a tensor."""
    return lam * (2 / (1 + torch.exp(-10 * p)) - 1)


def plain_gradient(z, w):
    (g,) = torch.autograd.grad((z @ w).sin().sum(), z)
    return g


def test_reversal_is_the_identity_forward_and_minus_lambda_backward():
    """GRL_λ(z) = z forward; the gradient reaching z is -λ times the plain one: the sign and the
    scale, for λ = 0, small, 1, large and one drawn afresh, as a float and as a tensor (train.py's),
    in float64 (exactly) and in float32, the dtype training uses (to float32's precision)."""
    draws('ex4.reversal')
    for dtype, tol in ((torch.float64, 1e-14), (torch.float32, 1e-6)):
        z = torch.randn(5, 7, dtype=dtype, requires_grad=True)
        w = torch.randn(7, 3, dtype=dtype)
        plain = plain_gradient(z, w)
        drawn = float(torch.empty(()).uniform_(0.01, 10))
        for lam in (0.0, 0.3, 1.0, 2.5, drawn, torch.tensor(0.7, dtype=dtype)):
            out = regularizer.grad_reverse(z, lam)
            assert torch.equal(out, z), f'λ = {float(lam):.4g}: the forward pass changed z'
            (reversed_,) = torch.autograd.grad((out @ w).sin().sum(), z)
            ratio = (reversed_ * plain).sum() / (plain * plain).sum()  # the factor it got
            assert reversed_.dtype == dtype, f'{dtype} in, a {reversed_.dtype} gradient out'
            assert torch.allclose(reversed_, -float(lam) * plain, rtol=tol, atol=tol), (
                f'{dtype}, λ = {float(lam):.6g}: the gradient got the factor '
                f'{ratio.item():+.6f}, not {-float(lam):+.6f}'
            )


def test_what_a_head_reads_in_each_mode():
    """sg(z) sends no gradient to f; GRL_λ(z) sends -λ times it; --memorize sends it as it is."""
    draws('ex4.reads')
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
        g = None  # sg: out is cut from z's graph (detach(), or a new leaf), so no gradient
        if out.requires_grad:
            (g,) = torch.autograd.grad((out @ w).sin().sum(), z, allow_unused=True)
        g = torch.zeros_like(z) if g is None else g
        ratio = (g * plain).sum() / (plain * plain).sum()  # the factor the gradient got
        assert torch.allclose(g, factor * plain, rtol=0, atol=1e-14), (
            f'--unlearn {unlearn}{" --memorize" if memorize else ""}: the gradient to z is '
            f'{ratio.item():+.4f} x the plain one, not {factor:+.1f} x'
        )


def test_the_dann_ramp_and_the_constant_schedule():
    """λ_p = λ (2 / (1 + exp(-10 p)) - 1) (Ganin & Lempitsky 2015) at the ends of training and at
    200 points drawn afresh on every run (no fixed grid to be exact on), and `constant` is λ
    throughout."""
    draws('ex4.ramp')
    points = torch.cat([torch.tensor([0.0, 1.0], dtype=torch.float64), torch.rand(200).double()])
    for lam in (3.0, 0.5, float(torch.empty(1).uniform_(0.01, 10))):
        cfg = SimpleNamespace(lam=lam, lam_schedule='dann')
        ramp = reference(dann_ramp, points, lam).tolist()
        for p, expected in zip(points.tolist(), ramp, strict=True):
            got = float(train.lam_at(p, cfg))
            assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12), (
                f'--lam-schedule dann, --lam {lam:.4g}, p = {p:.6f}: λ = {got:.9f}, '
                f'not {expected:.9f}'
            )
        cfg.lam_schedule = 'constant'
        values = {float(train.lam_at(p, cfg)) for p in points.tolist()}
        assert values == {lam}, f'--lam-schedule constant, --lam {lam:.4g}: {sorted(values)[:5]}'
