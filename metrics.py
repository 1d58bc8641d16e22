"""The memorization metric: random-label accuracy, its controls, and an independent measure.

Random-label accuracy a = (1/n) Σ_i [argmax_k h(z_i)_k = r_i] on the *training* set (Becker & Risse
2024, the method), in eval mode without augmentation. Chance is 1/K, so we also report the
chance-corrected complexity
    ĉ = (a - 1/K) / (1 - 1/K),
0 at chance and 1 for perfect memorization. For K = 2 it is 2a - 1 = (1/n) Σ_i σ_i s_i with
σ_i = ±1 the random label and s_i = ±1 the head's prediction: the empirical Rademacher correlation
(our reading of the workshop paper, not its formula). Intervals of a plain accuracy are Wilson's.

Fresh heads (`fit_heads`, ours): the linear head h of model.py fitted on frozen features to
convergence, as ridge-penalized multinomial logistic regression solved by full-batch L-BFGS. The
problem is strictly convex, so "the same head with the same budget" has one answer whatever the
start, and many label draws are fitted at once as one batched problem.

Memorization and its controls (`memorization`, ours; SPEC "Memorization and its controls"). A head
reads random labels from any features up to its capacity (Cover 1965: about 2D per free logit), so
the papers' decodability a_train is compared with the same fit on
    a_heldout  n held-out samples with their own random labels (same network),
    a_init     the n training samples through the network at initialization (capacity floor),
    a_fresh    the n training samples with fresh random labels the network never saw,
and the memorization estimate is m = a_train - a_heldout. Its spread comes from the draw of labels:
refitting on fresh draws measures it, and m gets a normal interval with a Welch t quantile.

Leave-out memorization (`feldman_zhang`; Feldman & Zhang 2020, eq. 1):
    mem(i) = P[f_S(x_i) = y_i | i in S] - P[f_S(x_i) = y_i | i not in S],
over networks trained on random halves S of the training set.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import parallel
from regularizer import class_loss_options, losses

PROBE_L2 = 1e-4  # ridge on standardized features: a unique optimum, too weak to limit the fit
PROBE_TOLERANCE = 1e-5  # largest gradient entry at convergence
PROBE_MAX_STEPS = 1000  # L-BFGS iterations


def complexity(acc, K):
    """ĉ = (a - 1/K) / (1 - 1/K); for K = 2 this is 2a - 1."""
    return (acc - 1 / K) / (1 - 1 / K)


def wilson_interval(acc, n, z=1.96):
    """95% Wilson score interval of a binomial proportion acc observed on n samples."""
    if n == 0:
        return [0.0, 1.0]
    center = (acc + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(acc * (1 - acc) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, center - half), min(1.0, center + half)]


def autocast(device, bf16=True):
    """bf16 autocast on CUDA (what it buys: tensor-core matmuls, half the activation bytes);
    fp32 on the CPU."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16 and device.type == 'cuda')


@torch.no_grad()
def evaluate(model, loader, cfg):
    """One full pass in eval mode: mean loss terms, class accuracy (and each sample's
    correctness, on the CPU, in the order of the loader's indices) and random-label accuracy per
    tap. Under torchrun each process scores its shard of every batch and the sums are added over
    the processes (parallel.py)."""
    model.eval()
    device = next(model.parameters()).device
    sums = torch.zeros(5 + len(model.taps), device=device)  # 3 loss sums, images, correct, taps
    hits = [torch.zeros(0, dtype=torch.bool, device=device)]  # a process may get no shard
    indices = [torch.zeros(0, dtype=torch.long, device=device)]
    for x, y, r, index in loader:
        with autocast(x.device, cfg.bf16):
            terms, logits, rand_logits = losses(
                model,
                x,
                y,
                r,
                cfg.unlearn,
                cfg.lam,
                cfg.unlearn_taps,
                cfg.label_smoothing,
                **class_loss_options(cfg),  # no index: turn-over dropout masks are off
            )
        hit = logits.argmax(1) == y
        counts = [hit.sum()] + [(out.argmax(1) == r).sum() for out in rand_logits.values()]
        loss_sums = [terms[k] * len(y) for k in ('class', 'rnd', 'unlearn')]
        sums += torch.stack(loss_sums + [x.new_full((), len(y))] + [c.float() for c in counts])
        hits.append(hit)
        indices.append(index)
    model.train()
    values = parallel.all_reduce_sum(sums).tolist()
    n = int(values[3])
    # every sample's correctness, whichever process scored it
    shards = parallel.gather((torch.cat(indices).cpu(), torch.cat(hits).cpu()))
    index, correct = (torch.cat(parts) for parts in zip(*shards, strict=True))
    return {
        'loss_class': values[0] / n,
        'loss_rnd': values[1] / n,
        'loss_unlearn': values[2] / n,
        'acc': values[4] / n,
        'rand_acc': {t: v / n for t, v in zip(model.taps, values[5:], strict=True)},
        'correct': correct[index.argsort()],
        'n': n,
    }


@dataclass
class HeadFit:
    accuracy: torch.Tensor  # (R,) each head's accuracy on the labels it was fitted to
    steps: int  # L-BFGS iterations
    converged: bool  # every gradient entry below PROBE_TOLERANCE, or no further progress
    loss: float  # mean cross-entropy over the heads at the end: the final fit


def fit_heads(z, y, labels, K, num_classes, layout, l2=PROBE_L2, max_steps=PROBE_MAX_STEPS):
    """Fresh random-label heads on frozen features z (N, D), one per row of labels (R, N).

    Each head is model.RandomLabelHead's linear map (per-class: the head of the sample's class y
    scores it), fitted by minimizing mean CE + (l2/2)·|W|² on standardized features. The R
    problems are independent, so their sum is minimized at once by full-batch L-BFGS.
    """
    R, N = labels.shape
    z = z.float()
    z = (z - z.mean(0)) / (z.std(0) + 1e-6)  # one penalty and tolerance suit every tap
    z = torch.cat([z, torch.ones_like(z[:, :1])], 1)  # (N, D + 1); the last column is the bias
    groups = num_classes if layout == 'per-class' else 1
    W = torch.zeros(R, z.shape[1], groups * K, device=z.device, requires_grad=True)
    rows = torch.arange(N, device=z.device)
    labels = labels.to(z.device)

    def logits():
        out = torch.einsum('nd,rdk->rnk', z, W)  # (R, N, groups * K)
        if groups > 1:
            out = out.view(R, N, groups, K)[:, rows, y]  # (R, N, K): each sample's class head
        return out

    def objective():
        opt.zero_grad()
        ce = F.cross_entropy(logits().reshape(R * N, K), labels.reshape(-1), reduction='sum')
        loss = ce / N + 0.5 * l2 * W[:, :-1].pow(2).sum()  # no penalty on the bias
        loss.backward()
        return loss

    opt = torch.optim.LBFGS(
        [W],
        lr=1,
        max_iter=max_steps,
        tolerance_grad=PROBE_TOLERANCE,
        tolerance_change=1e-9,
        history_size=20,
        line_search_fn='strong_wolfe',
    )
    opt.step(objective)
    steps = opt.state[W]['n_iter']
    with torch.no_grad():
        out = logits()
        accuracy = (out.argmax(-1) == labels).float().mean(1).cpu()
        ce = F.cross_entropy(out.reshape(R * N, K), labels.reshape(-1)).item()
    converged = steps < max_steps or W.grad.abs().max().item() <= PROBE_TOLERANCE
    return HeadFit(accuracy, steps, converged, ce)


def t_quantile(df, z=1.959964):
    """The 97.5% quantile of Student's t with df degrees of freedom (Cornish-Fisher expansion:
    within 0.05 of the exact value for df >= 4)."""
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def difference_interval(a, null_train, heldout):
    """m = a - mean(heldout), its standard error and 95% interval, where a is one fit whose spread
    is that of the null_train refits, and heldout are refits on other labels (Welch t)."""
    v_train = null_train.var().item()
    v_heldout = heldout.var().item() / len(heldout)
    df = (v_train + v_heldout) ** 2 / (
        v_train**2 / (len(null_train) - 1) + v_heldout**2 / (len(heldout) - 1) + 1e-30
    )
    m = a - heldout.mean().item()
    se = math.sqrt(v_train + v_heldout)
    half = t_quantile(max(df, 1.0)) * se
    return m, se, [m - half, m + half]


def memorization(train, heldout, init, K, num_classes, layout, fresh):
    """m = a_train - a_heldout at one tap, with the controls and a 95% interval.

    train, heldout, init: (z, y, r) with n samples each; init holds the training samples'
    features through the network at initialization. fresh: (R, n) random labels nobody
    trained on (R >= 2), fitted on the training and on the held-out features: their spread is
    the label-draw spread of a fit, and on the held-out set they average a_heldout.
    """
    z_train, y_train, r_train = train
    z_heldout, y_heldout, r_heldout = heldout
    args = (K, num_classes, layout)
    fit_train = fit_heads(z_train, y_train, torch.cat([r_train[None], fresh]), *args)
    fit_heldout = fit_heads(z_heldout, y_heldout, torch.cat([r_heldout[None], fresh]), *args)
    fit_init = fit_heads(init[0], init[1], init[2][None], *args)
    a_train = fit_train.accuracy[0].item()
    fresh_train = fit_train.accuracy[1:]
    m, se, ci = difference_interval(a_train, fresh_train, fit_heldout.accuracy)
    fits = (fit_train, fit_heldout, fit_init)
    return {
        'a_train': a_train,
        'a_heldout': fit_heldout.accuracy.mean().item(),
        'a_init': fit_init.accuracy[0].item(),
        'a_fresh': fresh_train.mean().item(),
        'memorization': m,
        'memorization_ci': ci,
        'memorization_se': se,
        'sd_fit': fresh_train.std().item(),  # one fit's spread over label draws
        'steps': max(f.steps for f in fits),
        'converged': all(f.converged for f in fits),
        'final_fit': fit_train.loss,  # mean cross-entropy of the training fits at the end
    }


def interval_words(lo, hi):
    """Where a 95% interval of m lies against 0, in the words every table uses."""
    return 'above 0' if lo > 0 else 'below 0' if hi < 0 else 'holds 0'


def feldman_zhang(correct, member):
    """Leave-out memorization from models in complementary pairs (2k, 2k+1).

    correct, member: (M, N) bool: model j classifies sample i correctly / trained on it. In a
    complementary pair every sample is in exactly one model, so each pair gives an unbiased
    estimate of mem(i) for every i. Returns (P, N): the P pairs' estimates.
    """
    assert len(correct) % 2 == 0, 'the leave-out models come in complementary pairs'
    c, m = correct.float(), member.bool()
    assert bool((m[0::2] ^ m[1::2]).all()), 'models 2k and 2k+1 must split the samples'
    in_first = m[0::2]  # (P, N): sample i is in the pair's first model
    return torch.where(in_first, c[0::2] - c[1::2], c[1::2] - c[0::2])


def mean_and_error(per_pair, mask=None):
    """Mean over samples (those in mask) and its standard error over the P pairs."""
    values = per_pair if mask is None else per_pair[:, mask]
    if values.shape[1] == 0:
        return None, None
    pair_means = values.float().mean(1)  # (P,)
    error = pair_means.std().item() / math.sqrt(len(pair_means)) if len(pair_means) > 1 else None
    return pair_means.mean().item(), error


def spearman(x, y):
    """Spearman's rank correlation (average ranks for ties); None below 3 points."""
    if len(x) < 3:
        return None

    def ranks(v):
        v = torch.tensor(v, dtype=torch.float64)
        rank = torch.empty_like(v)
        rank[v.argsort()] = torch.arange(len(v), dtype=torch.float64)
        for value in v.unique():  # ties share their average rank
            rank[v == value] = rank[v == value].mean()
        return rank

    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = (rx.norm() * ry.norm()).item()
    return (rx @ ry).item() / denominator if denominator > 0 else None
