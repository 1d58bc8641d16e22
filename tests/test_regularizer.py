"""Gradient reversal and the output regularizer against independent references, in float64."""

import torch

from model import Net
from regularizer import grad_reverse, losses, output_regularizer


def test_grl_is_identity_forward_and_reverses_gradient_by_lambda():
    z = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(7, 3, dtype=torch.float64)
    (plain,) = torch.autograd.grad((z @ w).sin().sum(), z)
    for lam in (0.0, 0.3, 2.5):
        out = grad_reverse(z, lam)
        assert torch.equal(out, z)
        (reversed_,) = torch.autograd.grad((out @ w).sin().sum(), z)
        assert torch.allclose(reversed_, -lam * plain, rtol=0, atol=1e-15)


def test_grl_at_zero_is_stop_gradient():
    z = torch.randn(4, 3, requires_grad=True)
    (g,) = torch.autograd.grad(grad_reverse(z, 0.0).pow(2).sum(), z)
    assert torch.count_nonzero(g) == 0


def reference_regularizer(logits, r):
    p = torch.softmax(logits, 1)
    return -torch.log(1 - p[torch.arange(len(r)), r]).mean()


def test_output_regularizer_matches_formula_and_gradcheck():
    torch.manual_seed(0)
    for K in (2, 5):
        logits = torch.randn(6, K, dtype=torch.float64, requires_grad=True)
        r = torch.randint(K, (6,))
        assert torch.allclose(
            output_regularizer(logits, r).double(), reference_regularizer(logits, r)
        )
        assert torch.autograd.gradcheck(
            lambda logits, r=r: output_regularizer(logits, r), (logits,)
        )


def test_output_regularizer_descent_lowers_the_random_label_probability():
    """The sign the papers intend: minimizing the term makes the correct random label improbable."""
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]], requires_grad=True)
    r = torch.tensor([0, 1])
    (g,) = torch.autograd.grad(output_regularizer(logits, r), logits)
    assert g[0, 0] > 0 and g[1, 1] > 0  # descent lowers the logit of r ...
    assert g[0, 1] < 0 and g[1, 0] < 0  # ... and raises the others


def test_output_regularizer_is_finite_when_saturated():
    logits = torch.tensor([[80.0, -80.0]], requires_grad=True)
    value = output_regularizer(logits, torch.tensor([0]))
    value.backward()
    assert torch.isfinite(value) and value > 100 and torch.isfinite(logits.grad).all()


def backbone_and_head_grads(unlearn, lam=1.0, term='total', memorize=False):
    torch.manual_seed(0)
    model = Net('cnn', 1, 10, random_labels=2, taps='all', image_size=8).double()
    x = torch.randn(8, 1, 8, 8, dtype=torch.float64)
    y, r = torch.randint(10, (8,)), torch.randint(2, (8,))
    terms, _, _ = losses(model, x, y, r, lam, unlearn=unlearn, memorize=memorize)
    body = [p for n, p in model.named_parameters() if not n.startswith('rand_heads.')]
    heads = list(model.rand_heads.parameters())
    grads = torch.autograd.grad(terms[term], body + heads, allow_unused=True)

    def zero(g):
        return g is None or torch.count_nonzero(g) == 0

    return [zero(g) for g in grads[: len(body)]], [zero(g) for g in grads[len(body) :]]


def test_random_label_loss_never_reaches_the_backbone_without_unlearning():
    body_zero, head_zero = backbone_and_head_grads('none', term='rnd')
    assert all(body_zero) and not any(head_zero)


def test_grl_sends_the_random_label_gradient_into_the_backbone():
    body_zero, _ = backbone_and_head_grads('grl', term='rnd')
    assert not all(body_zero)


def test_regularizer_term_updates_the_backbone_and_not_the_heads():
    body_zero, head_zero = backbone_and_head_grads('reg', term='unlearn')
    assert all(head_zero) and not all(body_zero)


def test_positive_control_trains_the_backbone_on_the_random_labels():
    """--memorize: the penultimate head reads z itself, so L_rnd reaches f (and only through it)."""
    body_zero, head_zero = backbone_and_head_grads('none', term='rnd', memorize=True)
    assert not all(body_zero) and not any(head_zero)


def test_the_objective_adds_its_terms_as_written():
    """L = L_class + Σ_taps L_rnd + λ·L_unlearn for reg; grl's λ lives in the backward pass."""
    torch.manual_seed(0)
    model = Net('cnn', 1, 10, random_labels=2, taps='all', image_size=8).double()
    x, y, r = (
        torch.randn(8, 1, 8, 8, dtype=torch.float64),
        torch.randint(10, (8,)),
        torch.randint(2, (8,)),
    )
    for unlearn, lam in (('none', 3.0), ('reg', 0.7), ('grl', 5.0)):
        t, _, _ = losses(model, x, y, r, lam, unlearn=unlearn)
        weight = lam if unlearn == 'reg' else 0
        assert torch.allclose(t['total'], t['class'] + t['rnd'] + weight * t['unlearn'])
