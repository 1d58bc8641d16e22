"""Check of exercise 4: the output regularizer -log(1 - p̂_r) against its formula (written with
softmax), autograd's numerical gradient, the direction descent moves p̂_r, and saturation."""

import torch

from regularizer import output_regularizer


def formula(logits, r):
    p = torch.softmax(logits, 1)
    return -torch.log(1 - p[torch.arange(len(r)), r]).mean()


def test_equals_the_formula_and_passes_gradcheck():
    torch.manual_seed(0)
    for K in (2, 5):
        logits = torch.randn(6, K, dtype=torch.float64, requires_grad=True)
        r = torch.randint(K, (6,))
        assert torch.allclose(output_regularizer(logits, r).double(), formula(logits, r))
        assert torch.autograd.gradcheck(lambda a, r=r: output_regularizer(a, r), (logits,))


def test_descent_makes_the_correct_random_label_improbable():
    """The sign the papers intend: a step down the term lowers p̂_r (and minimizing the printed
    log(1 - p̂_r) would raise it)."""
    torch.manual_seed(1)
    logits = torch.randn(8, 3, requires_grad=True)
    r = torch.randint(3, (8,))
    p_before = torch.softmax(logits, 1)[torch.arange(8), r].detach()
    (g,) = torch.autograd.grad(output_regularizer(logits, r), logits)
    p_after = torch.softmax(logits - 0.1 * g, 1)[torch.arange(8), r]
    assert (p_after < p_before).all()
    (g_printed,) = torch.autograd.grad(-formula(logits, r), logits)  # log(1 - p̂_r), minimized
    p_printed = torch.softmax(logits - 0.1 * g_printed, 1)[torch.arange(8), r]
    assert (p_printed > p_before).all()


def test_finite_when_the_head_is_certain():
    logits = torch.tensor([[80.0, -80.0], [-80.0, 80.0]], requires_grad=True)
    value = output_regularizer(logits, torch.tensor([0, 1]))
    value.backward()
    assert torch.isfinite(value) and value > 100 and torch.isfinite(logits.grad).all()
    assert output_regularizer(logits.detach(), torch.tensor([1, 0])) < 1e-6  # p̂_r near 0: free
