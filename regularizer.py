r"""The training objective: the class loss, the random-label heads' loss, and two ways to unlearn.

Notation ([Becker & Risse 2024]; [Becker et al. 2026]): $z = f(x)$ the features a random-label
head h reads, y class labels, r random labels, $\hat p = \mathrm{softmax}(h(z))$ and $\hat p_r$ its
entry at the random label, λ = `lam`. One forward pass gives
    $L = L_{class} + \sum_{taps} L_{rnd} + \lambda L_{unlearn}$,
- $L_{class} = \mathrm{CE}(g(z), y)$ trains f and g;
- $L_{rnd} = \mathrm{CE}(h(\mathrm{sg}(z)), r)$ trains each tap's head h and never f: sg is the
  stop-gradient, so the heads only observe (the metric, `--unlearn none`).

Unlearning makes f forget r at the penultimate tap (`--unlearn-taps all`: at every tap):

Gradient reversal ([Ganin & Lempitsky 2015]; used for unlearning by [Becker & Risse 2024]), `grl`:
$\mathrm{GRL}_\lambda(z) = z$ in the forward pass and $\partial L/\partial z \mapsto -\lambda\,
\partial L/\partial z$ in the backward pass. Feeding h with $\mathrm{GRL}_\lambda(z)$ instead of
$\mathrm{sg}(z)$ trains h on $L_{rnd}$ and sends $-\lambda$ times the same gradient into f, in one
head pass. At λ = 0 it is exactly the stop-gradient. $L_{unlearn}$ is reported as that tap's
$L_{rnd}$, which f ascends.

Output regularizer ([Becker et al. 2026]), `reg`: $L_{unlearn} = -\log(1 - \hat p_r)$, computed
with h's parameters frozen so that only f is pushed. The paper prints the term as
$\log(1 - \hat p_r)$, but minimizing that would *raise* $\hat p_r$, the opposite of its stated aim
of making the correct random label improbable; we minimize $-\log(1 - \hat p_r)$, which is 0 at
$\hat p_r = 0$ and grows without bound as $\hat p_r \to 1$.

The positive control (ours), `memorize`: the penultimate head reads z itself, without the
stop-gradient, so $L_{rnd}$ trains f too and the network is made to memorize r.

[Becker & Risse 2024]: https://arxiv.org/abs/2411.19640
[Becker et al. 2026]: https://arxiv.org/abs/2607.11541
[Ganin & Lempitsky 2015]: https://arxiv.org/abs/1409.7495
"""

import torch
import torch.nn.functional as F


class GradReverse(torch.autograd.Function):
    r"""Identity forward; the backward pass multiplies the incoming gradient by $-\lambda$: the
    gradient reversal layer of [Ganin & Lempitsky 2015].

    λ is a tensor, so it can change every step without recompiling under torch.compile.
    """

    @staticmethod
    def forward(ctx, z, lam):
        ctx.save_for_backward(lam)
        return z.view_as(z)

    @staticmethod
    def backward(ctx, grad):
        r"""$\partial L/\partial z \mapsto -\lambda\, \partial L/\partial z$, in the incoming
        gradient's dtype; λ itself gets no gradient."""
        (lam,) = ctx.saved_tensors
        return -lam.to(grad.dtype) * grad, None  # the gradient reversal layer of Ganin & Lempitsky


def grad_reverse(z, lam):
    r"""$\mathrm{GRL}_\lambda(z)$ ([Ganin & Lempitsky 2015]). lam: a float or a 0-d tensor,
    λ >= 0."""
    if not torch.is_tensor(lam):
        lam = torch.tensor(lam, dtype=torch.float64, device=z.device)  # float64: λ exactly
    return GradReverse.apply(z, lam)


def output_regularizer(logits, r):
    r"""$L_{reg} = \frac{1}{B} \sum_i -\log(1 - \hat p_{i, r_i})$ ([Becker et al. 2026], the sign
    explained above).

    logits: (B, K) from the head with frozen parameters; r: (B,) random labels. Computed as the
    logsumexp over all K logits minus the logsumexp over the K - 1 wrong ones, which equals
    $-\log(1 - \hat p_r)$ exactly and never takes log(0): the numerically safe form of clamping
    $1 - \hat p_r$.
    """
    assert logits.shape[1] >= 2, 'the regularizer needs K >= 2 random labels'
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16 rounds 1 - p̂_r to 0
    is_r = torch.arange(logits.shape[1], device=r.device) == r[:, None]  # (B, K)
    wrong = logits.masked_fill(is_r, float('-inf'))
    return (torch.logsumexp(logits, 1) - torch.logsumexp(wrong, 1)).mean()


def head_input(z, lam, unlearn, memorize):
    r"""What a random-label head reads: $\mathrm{sg}(z)$ (the metric), $\mathrm{GRL}_\lambda(z)$
    (`grl`), or z (`memorize`)."""
    if memorize:
        return z
    return grad_reverse(z, lam) if unlearn == 'grl' else z.detach()


def losses(
    model,
    x,
    y,
    r,
    lam,
    unlearn='none',
    unlearn_taps='penultimate',
    memorize=False,
    label_smoothing=0.0,
):
    r"""The objective of one batch, in one forward pass:
    $L = L_{class} + \sum_{taps} L_{rnd} + \lambda L_{unlearn}$ ([Becker & Risse 2024]).

    model: model.Net; x: (B, C, H, W) images; y, r: (B,) class and random labels; lam: λ (a float
    or a 0-d tensor); the options as in `random_label_losses`; label_smoothing: of L_class.
    Returns the named loss terms, the class logits (B, C) and each tap's random-label logits (B, K).
    """
    out = model(x)
    loss_rnd, loss_unlearn, rand_logits = random_label_losses(
        model.rand_heads, out.features, y, r, lam, unlearn, unlearn_taps, memorize
    )
    loss_class = F.cross_entropy(out.logits.float(), y, label_smoothing=label_smoothing)
    total = loss_class + loss_rnd + (lam * loss_unlearn if unlearn == 'reg' else 0)
    terms = {'class': loss_class, 'rnd': loss_rnd, 'unlearn': loss_unlearn, 'total': total}
    return terms, out.logits, rand_logits


def random_label_losses(heads, features, y, r, lam, unlearn, unlearn_taps, memorize):
    r"""$\sum_{taps} L_{rnd}$, $L_{unlearn}$ (unweighted) and each tap's random-label logits (B, K).

    heads: {tap: model.RandomLabelHead}; features: {tap: (B, D) z}; unlearn: 'none', 'grl' or
    'reg', at the penultimate tap (unlearn_taps='all': at every tap); memorize: the positive
    control (the penultimate head trains f on r).
    """
    assert unlearn in ('none', 'grl', 'reg'), f'unknown unlearning {unlearn}'
    assert not (memorize and unlearn != 'none'), 'memorize and unlearn pull f opposite ways'
    loss_rnd = loss_unlearn = torch.zeros((), device=y.device)
    rand_logits = {}
    for tap, z in features.items():
        head = heads[tap]
        unlearned = unlearn != 'none' and (unlearn_taps == 'all' or tap == 'penultimate')
        how = unlearn if unlearned else 'none'
        rand_logits[tap] = head(head_input(z, lam, how, memorize and tap == 'penultimate'), y)
        tap_loss = F.cross_entropy(rand_logits[tap].float(), r)
        loss_rnd = loss_rnd + tap_loss
        if unlearned and unlearn == 'grl':  # the reversal is in the head's input already
            loss_unlearn = loss_unlearn + tap_loss
        elif unlearned:  # reg: the same head, frozen, on z itself, so that only f moves
            loss_unlearn = loss_unlearn + output_regularizer(head(z, y, frozen=True), r)
    return loss_rnd, loss_unlearn, rand_logits
