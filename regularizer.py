"""The training objective: gradient reversal, the output regularizer, and the losses that use them.

Both act on z = f(x), the features a random-label head h reads, and both leave the head's own
objective L_rnd = CE(h(z), r) unchanged: h keeps trying to read the random labels r, and f learns
to hide them.

Gradient reversal (Ganin & Lempitsky 2015, "Unsupervised Domain Adaptation by Backpropagation";
used for unlearning by Becker & Risse 2024): GRL_λ(z) = z in the forward pass, dL/dz -> -λ dL/dz in
the backward pass. Feeding h with GRL_λ(z) instead of sg(z) trains h on L_rnd and sends -λ times
the same gradient into f, in one head pass. At λ = 0 it is exactly the stop-gradient sg.

Output regularizer (Becker et al. 2026, the RLP-head regularizer): with p̂ = softmax(h(z)) and p̂_r
its entry at the random label, L_reg = -log(1 - p̂_r), with h's parameters frozen so that only f is
pushed. The paper prints the term as log(1 - p̂_r), but minimizing that would *raise* p̂_r, the
opposite of its stated aim of making the correct random label improbable; we minimize
-log(1 - p̂_r), which is 0 at p̂_r = 0 and grows without bound as p̂_r -> 1.
"""

import torch
import torch.nn.functional as F


class GradReverse(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by -λ.

    λ is a tensor, so it can change every step without recompiling under torch.compile.
    """

    @staticmethod
    def forward(ctx, z, lam):
        ctx.save_for_backward(lam)
        return z.view_as(z)

    @staticmethod
    def backward(ctx, grad):
        (lam,) = ctx.saved_tensors
        # the gradient reversal layer of Ganin & Lempitsky 2015
        return -lam.to(grad.dtype) * grad, None


def grad_reverse(z, lam):
    """GRL_λ(z); lam is a float or a 0-d tensor.

    train.py keeps it a device tensor, checked λ >= 0.
    """
    # float64: exact λ
    lam = lam if torch.is_tensor(lam) else torch.tensor(lam, dtype=torch.float64, device=z.device)
    return GradReverse.apply(z, lam)


def output_regularizer(logits, r):
    """L_reg = mean_i -log(1 - p̂_{i, r_i}) (Becker et al. 2026, sign as explained above).

    logits: (B, K) from the head with frozen parameters, r: (B,) random labels.
    Computed as logsumexp over all K logits minus logsumexp over the K-1 wrong ones, which equals
    -log(1 - p̂_r) exactly and never takes log(0): the numerically safe form of clamping 1 - p̂_r.
    """
    # (B, K); bf16 rounds 1 - p̂_r to 0 early
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    assert logits.shape[1] >= 2, 'the regularizer needs K >= 2 random labels'
    # (B, K); one_hot may sync to check r
    is_r = torch.arange(logits.shape[1], device=r.device) == r[:, None]
    others = logits.masked_fill(is_r, float('-inf'))
    return (torch.logsumexp(logits, 1) - torch.logsumexp(others, 1)).mean()


def head_input(z, tap, unlearn, lam, unlearn_taps, memorize):
    """What the random-label head at `tap` reads: sg(z) (the metric), GRL_λ(z) (unlearning), or z
    itself (the positive control --memorize, at the penultimate tap: f is trained on r)."""
    if memorize and tap == 'penultimate':
        return z
    if unlearn == 'grl' and (unlearn_taps == 'all' or tap == 'penultimate'):
        return grad_reverse(z, lam)
    return z.detach()


def losses(
    model,
    x,
    y,
    r,
    unlearn='none',
    lam=0.0,
    unlearn_taps='penultimate',
    label_smoothing=0.0,
    memorize=False,
):
    """The training objective in one forward pass: L = L_class + Σ_taps L_rnd + λ·L_unlearn.

    L_class = CE(g(z), y) trains f and g. L_rnd = CE(h(sg(z)), r) trains each tap's head h and
    never f. unlearn picks the term that makes f forget r, at the penultimate tap (or every tap):
      'none': no term; the heads only observe (the complexity metric).
      'grl':  h reads GRL_λ(z) instead of sg(z); L_unlearn is reported as that tap's L_rnd,
              which f ascends.
      'reg':  L_unlearn = -log(1 - p̂_r) from h with frozen parameters, added with weight λ.
    memorize (the positive control, ours): the penultimate head reads z without the
    stop-gradient, so L_rnd also trains f: the network is made to memorize r.
    Returns (dict of named loss terms, class logits (B, C), {tap: random-label logits (B, K)}).
    """
    assert unlearn in ('none', 'grl', 'reg'), f'unknown unlearning mechanism {unlearn}'
    assert not (memorize and unlearn != 'none'), 'memorize and unlearn pull f opposite ways'
    out = model(x)
    rand_logits = {}
    loss_rnd = x.new_zeros(())
    loss_unlearn = x.new_zeros(())
    for tap, z in out.features.items():
        head = model.rand_heads[tap]
        rand_logits[tap] = head(head_input(z, tap, unlearn, lam, unlearn_taps, memorize), y)
        tap_loss = F.cross_entropy(rand_logits[tap].float(), r)
        loss_rnd = loss_rnd + tap_loss
        if unlearn != 'none' and (unlearn_taps == 'all' or tap == 'penultimate'):
            if unlearn == 'reg':
                loss_unlearn = loss_unlearn + output_regularizer(head(z, y, frozen=True), r)
            else:
                loss_unlearn = loss_unlearn + tap_loss
    loss_class = F.cross_entropy(out.logits.float(), y, label_smoothing=label_smoothing)
    total = loss_class + loss_rnd + (lam * loss_unlearn if unlearn == 'reg' else 0)
    terms = {'class': loss_class, 'rnd': loss_rnd, 'unlearn': loss_unlearn, 'total': total}
    return terms, out.logits, rand_logits
