"""The training objective: gradient reversal, the output regularizer, confusion, and the losses
that use them.

All three act on z = f(x), the features a random-label head h reads, and leave the head's own
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

Confusion (Alvi, Zisserman & Nellåker 2018, "Turning a blind eye", the fair-AI method the seed
paper names as its inspiration; `--unlearn confusion`): L_conf = -(1/K) Σ_k log p̂_k, the
cross-entropy between the uniform distribution and the frozen head's output. It is smallest when
the head cannot tell the random labels apart (p̂ uniform, gradient 0) and, unlike gradient
reversal or the output regularizer, gives f no reward for making the head confidently wrong.

The class loss is cross-entropy, or one of the alternatives of classloss.py (robust log loss,
LIMIT's predicted gradient); under turn-over dropout (tod.py) g reads z through each sample's mask.
"""

import torch
import torch.nn.functional as F

import classloss


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


def confusion_loss(logits):
    """L_conf = mean_i -(1/K) Σ_k log p̂_{i,k} (Alvi et al. 2018). logits: (B, K), from the head
    with frozen parameters; its gradient p̂ - 1/K vanishes at a uniform head."""
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # (B, K)
    return -torch.log_softmax(logits, 1).mean(1).mean()


def unlearning_term(head, z, y, r, unlearn):
    """λ's term for one tap, from the head with frozen parameters (so that only f moves)."""
    if unlearn == 'reg':
        return output_regularizer(head(z, y, frozen=True), r)
    return confusion_loss(head(z, y, frozen=True))


def class_loss(model, x, logits, y, loss, rll_alpha, label_smoothing, limit, limit_beta):
    """(L_class, L_q): the class loss on the logits (B, C) of g, and LIMIT's loss for its
    gradient predictor q (0 without --limit)."""
    loss_q = logits.new_zeros((), dtype=torch.float32)
    if limit:  # the classifier's gradient becomes the one q predicts from x alone
        logits, loss_q = classloss.limit(logits, model.limit_q(x), y, limit_beta, label_smoothing)
    if loss == 'rll':
        return classloss.robust_log_loss(logits, y, rll_alpha), loss_q
    return F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing), loss_q


def class_loss_options(cfg):
    """The class-loss options of `losses` that a run's config selects (config keys = names)."""
    return {k: getattr(cfg, k) for k in ('loss', 'rll_alpha', 'limit', 'limit_beta')}


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
    loss='ce',
    rll_alpha=0.1,
    limit=False,
    limit_beta=1.0,
    index=None,
):
    """The training objective in one forward pass: L = L_class + Σ_taps L_rnd + λ·L_unlearn
    (+ L_q under LIMIT).

    L_class = CE(g(z), y) trains f and g; loss='rll' replaces it by the robust log loss, and
    limit=True replaces its gradient at the logits by the one q predicts (classloss.py).
    L_rnd = CE(h(sg(z)), r) trains each tap's head h and never f. unlearn picks the term that
    makes f forget r, at the penultimate tap (or every tap):
      'none':      no term; the heads only observe (the complexity metric).
      'grl':       h reads GRL_λ(z) instead of sg(z); L_unlearn is reported as that tap's L_rnd,
                   which f ascends.
      'reg':       L_unlearn = -log(1 - p̂_r) from h with frozen parameters, weight λ.
      'confusion': L_unlearn = -(1/K) Σ_k log p̂_k from h with frozen parameters, weight λ.
    memorize (the positive control, ours): the penultimate head reads z without the
    stop-gradient, so L_rnd also trains f: the network is made to memorize r.
    index: the samples' dataset indices, for turn-over dropout masks (None: no mask).
    Returns (dict of named loss terms, class logits (B, C), {tap: random-label logits (B, K)}).
    """
    assert unlearn in ('none', 'grl', 'reg', 'confusion'), f'unknown unlearning {unlearn}'
    assert loss in ('ce', 'rll'), f'unknown class loss {loss}'
    assert not (memorize and unlearn != 'none'), 'memorize and unlearn pull f opposite ways'
    out = model(x, index)
    rand_logits = {}
    loss_rnd = x.new_zeros(())
    loss_unlearn = x.new_zeros(())
    for tap, z in out.features.items():
        head = model.rand_heads[tap]
        rand_logits[tap] = head(head_input(z, tap, unlearn, lam, unlearn_taps, memorize), y)
        tap_loss = F.cross_entropy(rand_logits[tap].float(), r)
        loss_rnd = loss_rnd + tap_loss
        if unlearn != 'none' and (unlearn_taps == 'all' or tap == 'penultimate'):
            if unlearn == 'grl':  # already in the head's input: report the loss f ascends
                loss_unlearn = loss_unlearn + tap_loss
            else:
                loss_unlearn = loss_unlearn + unlearning_term(head, z, y, r, unlearn)
    loss_class, loss_q = class_loss(
        model, x, out.logits, y, loss, rll_alpha, label_smoothing, limit, limit_beta
    )
    # grl's term is in the head's input already
    weighted = lam * loss_unlearn if unlearn in ('reg', 'confusion') else 0
    total = loss_class + loss_rnd + loss_q + weighted
    terms = {'class': loss_class, 'rnd': loss_rnd, 'unlearn': loss_unlearn, 'total': total}
    if limit:
        terms['limit_q'] = loss_q
    return terms, out.logits, rand_logits
