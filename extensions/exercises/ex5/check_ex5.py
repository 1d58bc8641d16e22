"""Check of exercise 5: the output regularizer -log(1 - p̂_r) against its formula (written with
softmax, in float64), autograd's numerical gradient, the direction descent moves p̂_r, and the
analytic gradient where the head is certain (p̂_r -> 1), in at least float32 (promoted, never
downcast: float32 for bf16 and float16 logits, float64 for float64)."""

import torch

import regularizer
from extensions.exercises.rules import draws, imports_no_check, reference


def formula(logits, r):
    """-log(1 - p̂_r) written with softmax, in float64."""
    p = torch.softmax(logits.double(), 1)
    return -torch.log(1 - p[torch.arange(len(r)), r]).mean()


def after_a_printed_step(logits, r):
    """p̂_r after a step down the printed log(1 - p̂_r)."""
    logits = logits.detach().requires_grad_()
    (g,) = torch.autograd.grad(-formula(logits, r), logits)
    return torch.softmax(logits - 0.1 * g.float(), 1)[torch.arange(len(r)), r].detach()


def gradient_at_saturation(logits, r):
    """d/dlogit_k of the batch mean: (p̂_k - q_k) / B, q the softmax over the wrong labels."""
    p = torch.softmax(logits.double(), 1)
    is_r = torch.arange(logits.shape[1]) == r[:, None]
    q = torch.softmax(logits.double().masked_fill(is_r, float('-inf')), 1)
    return (p - q) / len(r)


def test_the_function_is_your_own():
    imports_no_check(regularizer.output_regularizer)


def test_equals_the_formula_and_passes_gradcheck():
    draws('ex5.formula')
    for K in (2, 5, int(torch.randint(3, 9, ()))):
        logits = torch.randn(6, K, dtype=torch.float64, requires_grad=True)
        r = torch.randint(K, (6,))
        got = regularizer.output_regularizer(logits, r)
        want = reference(formula, logits.detach(), r)
        assert got.dtype == torch.float64, (
            f'float64 logits gave a {got.dtype} term: promote to at least float32, never downcast'
        )
        assert torch.allclose(got, want), f'K = {K}: {got.item():.6f}, not {want.item():.6f}'
        assert torch.autograd.gradcheck(
            lambda a, r=r: regularizer.output_regularizer(a, r), (logits,)
        )


def test_descent_makes_the_correct_random_label_improbable():
    """The sign the papers intend: a step down the term lowers p̂_r (and minimizing the printed
    log(1 - p̂_r) would raise it)."""
    draws('ex5.descent')
    logits = torch.randn(8, 3, requires_grad=True)
    r = torch.randint(3, (8,))
    p_before = torch.softmax(logits, 1)[torch.arange(8), r].detach()
    (g,) = torch.autograd.grad(regularizer.output_regularizer(logits, r), logits)
    p_after = torch.softmax(logits - 0.1 * g, 1)[torch.arange(8), r]
    assert (p_after < p_before).all(), (
        'a step down the term raised p̂_r: the sign is the printed one'
    )
    assert (reference(after_a_printed_step, logits.detach(), r) > p_before).all()


def test_the_gradient_where_the_head_is_certain():
    """At p̂_r -> 1 the term is large and its gradient is not 0: d/dlogit_k = p̂_k - q_k, with q
    the softmax over the wrong labels only (q_r = 0). A clamped 1 - p̂_r stays finite but loses the
    gradient there, so the backbone would get no push exactly where the head is most certain."""
    logits = torch.tensor([[80.0, -80.0, -79.0], [-80.0, 80.0, -80.0]], requires_grad=True)
    r = torch.tensor([0, 1])
    value = regularizer.output_regularizer(logits, r)
    value.backward()
    assert torch.isfinite(value) and value > 100, f'value {value.item()} at p̂_r -> 1'
    draws('ex5.saturation')
    analytic = reference(gradient_at_saturation, logits.detach(), r)
    assert torch.allclose(logits.grad.double(), analytic, atol=1e-6), (
        f'gradient at saturation {logits.grad.tolist()}, not {analytic.tolist()}'
    )
    assert regularizer.output_regularizer(logits.detach(), torch.tensor([1, 0])) < 1e-6  # p̂_r ≈ 0


def test_at_least_float32_promoted_never_downcast():
    """Under bf16 autocast the head's logits come in bf16 (8 bits of mantissa): the term must be
    computed and returned in float32, as close to the float64 formula as float32 allows; float16
    likewise; float32 and float64 logits keep their dtype (gradcheck needs float64)."""
    draws('ex5.dtypes')
    logits, r = 4 * torch.randn(64, 3), torch.randint(3, (64,))
    for dtype, out in (
        (torch.bfloat16, torch.float32),
        (torch.float16, torch.float32),
        (torch.float32, torch.float32),
        (torch.float64, torch.float64),
    ):
        low = logits.to(dtype)
        got, want = regularizer.output_regularizer(low, r), reference(formula, low, r)
        assert got.dtype == out, f'{dtype} logits: returned {got.dtype}, not {out}'
        close = torch.allclose(got.double(), want, rtol=1e-5)
        assert close, f'{dtype} logits: {got.item():.6f}, not {want.item():.6f}'
