r"""The memorization metric: random-label accuracy, its chance correction, and its controls.

Random-label accuracy ([Becker & Risse 2024], the method) on the *training* set, eval mode, no
augmentation: $a = \frac{1}{n} \sum_i [\mathrm{argmax}_k\, h(z_i)_k = r_i]$. Chance is $1/K$, so
we also report the chance-corrected complexity
    $\hat c = (a - 1/K) / (1 - 1/K)$,
0 at chance and 1 when every random label is read. For K = 2 it is
$2a - 1 = \frac{1}{n} \sum_i \sigma_i s_i$ with $\sigma_i = \pm 1$ the random label and
$s_i = \pm 1$ the head's guess: the empirical Rademacher correlation (our reading of the workshop
paper, not its formula). A plain accuracy gets Wilson's binomial interval ([Wilson 1927]).

Fresh heads (`fit_heads`, ours): the linear head h of model.py fitted on frozen features to
convergence, as ridge-penalized multinomial logistic regression solved by full-batch L-BFGS. The
problem is strictly convex, so "the same head with the same budget" has one answer whatever the
start, and many label draws are fitted at once as one batched problem.

The controls (`controls`, ours). A linear head reads random labels from any features, up to its
capacity ([Cover 1965]: about 2D samples per free logit), so a random-label accuracy means nothing
alone. At every tap the same fresh head is fitted on n samples each:
- a_train: the training samples' features with their own random labels r (the papers' number);
- a_fresh: the same features with R fresh label draws that nobody trained on (their mean);
- a_heldout: n held-out samples (never trained on) with R label draws of their own (their mean);
- a_init: the training samples through the untrained network, R draws (the capacity floor).

In metric mode f never sees r, so a_train is one draw among the fresh ones:
$E[a_{train}] = E[a_{fresh}]$. Two differences carry everything:
- `specific` $= a_{train} - a_{fresh}$: what a head reads of *these* labels beyond any labels: the
  luck of one draw in metric mode, r written into f under `--memorize` or unlearning;
- $m = a_{fresh} - a_{heldout}$: the memorization estimate: how many more random labels the
  training features hold than held-out ones, from R draws on each side. In metric mode it is all a
  network can memorize into the features' geometry, and 0 for one that treats seen and unseen
  samples alike, whatever the head's capacity.

Their sum $a_{train} - a_{heldout}$ is the single-draw estimate, whose error is about 3x larger.
And `trained` $= a_{fresh} - a_{init}$: how many more random labels the trained features hold than
the untrained network's, R draws a side: capacity's share.

Errors. A fit's accuracy varies over label draws with a spread s; m gets the Welch interval of two
means of R draws, specific that of one draw against a mean of R. Across M networks (seeds that vary
the initialization, the data order, the training subset and the random labels) an estimate gets a
random-effects interval (`across_networks`): the networks' spread, but never less than their own
errors imply.

[Becker & Risse 2024]: https://arxiv.org/abs/2411.19640
[Cover 1965]: https://doi.org/10.1109/PGEC.1965.264137
[Wilson 1927]: https://www.jstor.org/stable/2276774
"""

import math
import statistics
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from data import GpuLoader
from model import own_class_head
from plumbing import t_quantile

DRAWS = 16  # label draws R per side: m's error is sqrt(2/R) of one fit's spread
FIT_L2 = 1e-4  # ridge on standardized features: a unique optimum, too weak to limit the fit
FIT_TOLERANCE = 1e-5  # largest gradient entry at convergence
FIT_MAX_STEPS = 1000  # L-BFGS iterations
POWER_Z = statistics.NormalDist().inv_cdf(0.8)  # 80% power: what an estimate could have detected


# --- the papers' number ---------------------------------------------------------------------


def complexity(acc, K):
    r"""$\hat c = (a - 1/K) / (1 - 1/K)$; for K = 2 this is $2a - 1$ ([Becker & Risse 2024], read
    as the module docstring says)."""
    return (acc - 1 / K) / (1 - 1 / K)


def correct(logits, labels):
    """Which samples a head gets right: argmax over the last dimension equals the label. Every
    accuracy here (class, random-label, online, fresh heads) is the mean of this."""
    return logits.argmax(-1) == labels


def capacity(dim, n, num_classes, K, layout):
    """What a head's number must be read against: its input width D, the samples each head sees,
    and Cover's count $2D(K - 1)$, about how many random labels a linear head fits on any D
    features ([Cover 1965]: 2D samples per free logit, K - 1 free logits)."""
    per_head = n / (num_classes if layout == 'per-class' else 1)
    return {'dim': dim, 'samples_per_head': per_head, 'cover': 2 * dim * (K - 1)}


def wilson_interval(acc, n, z=1.96):
    """95% Wilson score interval ([Wilson 1927]) of a binomial proportion acc observed on n
    samples."""
    if n == 0:
        return [0.0, 1.0]
    center = (acc + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(acc * (1 - acc) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, center - half), min(1.0, center + half)]


# --- fresh heads and the controls -----------------------------------------------------------


@dataclass
class HeadFit:
    accuracy: torch.Tensor  # (R,) each head's accuracy on the labels it was fitted to
    steps: int  # L-BFGS iterations
    converged: bool  # every gradient entry below FIT_TOLERANCE, or no further progress
    loss: float  # mean cross-entropy over the heads at the end: how well they fit


def fit_heads(z, y, labels, K, num_classes, layout, l2=FIT_L2, max_steps=FIT_MAX_STEPS):
    r"""Fresh random-label heads on frozen features z (N, D), one per row of labels (R, N).

    Each head is model.RandomLabelHead's linear map (per-class: the head of the sample's class y
    scores it), fitted by minimizing mean CE + $(l_2/2) \lVert W \rVert^2$ on standardized
    features. The R problems are independent, so their sum is minimized at once by full-batch
    L-BFGS.
    """
    R, N = labels.shape
    z = z.float()
    z = (z - z.mean(0)) / (z.std(0) + 1e-6)  # one penalty and tolerance suit every tap
    z = torch.cat([z, torch.ones_like(z[:, :1])], 1)  # (N, D + 1); the last column is the bias
    groups = num_classes if layout == 'per-class' else 1
    W = torch.zeros(R, z.shape[1], groups * K, device=z.device, requires_grad=True)
    labels = labels.to(z.device)

    def logits():
        out = torch.einsum('nd,rdk->rnk', z, W)  # (R, N, groups * K)
        return own_class_head(out, y, K) if groups > 1 else out  # (R, N, K)

    def objective():
        opt.zero_grad()
        ce = F.cross_entropy(logits().reshape(R * N, K), labels.reshape(-1), reduction='sum')
        loss = ce / N + 0.5 * l2 * W[:, :-1].pow(2).sum()  # no penalty on the bias
        loss.backward()
        return loss

    opt = torch.optim.LBFGS(
        [W],
        max_iter=max_steps,
        tolerance_grad=FIT_TOLERANCE,
        tolerance_change=1e-9,
        history_size=20,
        line_search_fn='strong_wolfe',
    )
    opt.step(objective)
    steps = opt.state[W]['n_iter']
    with torch.no_grad():
        out = logits()
        accuracy = correct(out, labels).float().mean(1).cpu()
        loss = F.cross_entropy(out.reshape(R * N, K), labels.reshape(-1)).item()
    converged = steps < max_steps or W.grad.abs().max().item() <= FIT_TOLERANCE
    return HeadFit(accuracy, steps, converged, loss)


def controls(train, heldout, init, K, num_classes, layout, draws=DRAWS, seed=0):
    """a_train, a_fresh, a_heldout, a_init, the memorization estimate m, `specific` and `trained`
    at one tap, with their errors (the module docstring says what each is).

    train, heldout, init: (z, y, r) of n samples each: the training samples' features with their
    random labels, held-out samples' with theirs, the training samples' through the untrained
    network. The held-out side's first draw is its own r; the other draws come from `seed`.
    """
    n = len(train[0])
    assert len(heldout[0]) == len(init[0]) == n, 'the same n samples on every side'
    g = torch.Generator().manual_seed(seed)
    fresh = torch.randint(K, (3, draws, n), generator=g).to(train[0].device)  # (side, R, n)
    labels = {
        'train': torch.cat([train[2][None], fresh[0]]),  # r, then R fresh draws
        'heldout': torch.cat([heldout[2][None], fresh[1, 1:]]),  # its own r, then R - 1 draws
        'init': fresh[2],
    }
    sides = {'train': train, 'heldout': heldout, 'init': init}
    fit = {k: fit_heads(z, y, labels[k], K, num_classes, layout) for k, (z, y, _) in sides.items()}
    a_train, fresh_train = fit['train'].accuracy[0].item(), fit['train'].accuracy[1:]
    m = mean_difference(fresh_train, fit['heldout'].accuracy)
    trained = mean_difference(fresh_train, fit['init'].accuracy)
    sd = fresh_train.std().item()  # one fit's spread over label draws
    specific = a_train - fresh_train.mean().item()
    specific_se = sd * math.sqrt(1 + 1 / draws)
    single_se = math.sqrt(sd**2 + fit['heldout'].accuracy.var().item() / draws)
    return {
        'a_train': a_train,
        'a_fresh': fresh_train.mean().item(),
        'a_heldout': fit['heldout'].accuracy.mean().item(),
        'a_init': fit['init'].accuracy.mean().item(),
        'memorization': m['diff'],
        'memorization_se': m['se'],
        'memorization_ci': m['ci'],
        'specific': specific,
        'specific_se': specific_se,
        'specific_ci': interval(specific, specific_se, draws - 1),
        'trained': trained['diff'],
        'trained_se': trained['se'],
        'trained_ci': trained['ci'],
        'single_draw': {'m': a_train - fit['heldout'].accuracy.mean().item(), 'se': single_se},
        'sd_fit': sd,
        'draws': draws,
        'steps': max(f.steps for f in fit.values()),
        'converged': all(f.converged for f in fit.values()),
        'final_fit': fit['train'].loss,  # mean cross-entropy of the training fits at the end
    }


@torch.no_grad()
def tap_features(model, images, mean, std, device):
    """{tap: (N, D) fp32 features} of uint8 images, normalized as in training, in eval mode."""
    model.eval()
    batches = [model.features(x) for (x,) in GpuLoader(images, (), mean, std, 1024, device)]
    return {tap: torch.cat([b[tap].float() for b in batches]) for tap in model.taps}


def measure(model, init_model, data, K, layout, seed, device, features=tap_features):
    """Every tap's controls for a trained model.Net: probe.json's dict without its commit.

    n training samples against n held-out ones (training images the run never saw, else the
    test split), the same seeded n every time; also the online head's accuracy on them, where a
    tap has one. features(model, images, mean, std, device) -> {tap: (N, D)}: the taps.
    """
    split = 'heldout' if len(data.heldout_y) else 'test'
    sets = {'train': [data.train_x, data.train_y, data.train_r]}
    sets['heldout'] = [getattr(data, f'{split}_{k}') for k in 'xyr']
    n = min(len(data.train_y), len(sets['heldout'][1]))
    g = torch.Generator().manual_seed(seed)
    for side, (x, y, r) in sets.items():  # the same seeded n samples of each side every time
        keep = torch.randperm(len(y), generator=g)[:n].sort().values
        sets[side] = [x[keep], y[keep].to(device), r[keep].to(device)]
    z = {side: features(model, s[0], data.mean, data.std, device) for side, s in sets.items()}
    z_init = features(init_model, sets['train'][0], data.mean, data.std, device)
    (_, y, r), (_, y_held, r_held) = sets['train'], sets['heldout']
    taps = {}
    for tap, z_train in z['train'].items():
        sides = (z_train, y, r), (z['heldout'][tap], y_held, r_held), (z_init[tap], y, r)
        taps[tap] = capacity(z_train.shape[1], n, data.num_classes, K, layout)
        taps[tap] |= controls(*sides, K, data.num_classes, layout, seed=seed + 1)
        taps[tap]['online'] = None
        if tap in model.rand_heads:
            with torch.no_grad():
                hits = correct(model.rand_heads[tap](z_train, y), r)
            taps[tap]['online'] = hits.float().mean().item()
    source = 'training images not trained on' if split == 'heldout' else 'test split'
    return {'status': 'done', 'n': n, 'draws': DRAWS, 'heldout': source, 'seed': seed, 'taps': taps}


# --- intervals ------------------------------------------------------------------------------


def interval(value, se, df):
    """value ± t(df)·se: a 95% interval."""
    half = t_quantile(max(df, 1)) * se
    return [value - half, value + half]


def mean_difference(a, b):
    """mean(a) - mean(b) of two independent samples, its standard error and Welch interval."""
    va, vb = a.var().item() / len(a), b.var().item() / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1) + 1e-30)
    diff = a.mean().item() - b.mean().item()
    return {'diff': diff, 'se': se, 'ci': interval(diff, se, df)}


def across_networks(values, errors):
    r"""One estimate over M networks: their mean with a 95% random-effects interval. The mean's
    variance is $(\tau^2 + \bar\sigma^2) / M$, with $\bar\sigma^2$ the mean of the networks' own
    error² (`errors`: label draws, within a network) and $\tau^2$ the variance of their true values,
    estimated as the networks' spread $s^2$ less $\bar\sigma^2$ (at least 0):
    $\max(s^2, \bar\sigma^2) / M$. So the interval is never narrower than each
    network's own error implies, however closely a few networks happen to agree; t with M - 1
    degrees of freedom (M = 1: the network's own error, normal)."""
    M = len(values)
    mean = statistics.fmean(values)
    within = statistics.fmean(e**2 for e in errors)
    between = statistics.variance(values) if M > 1 else None
    se = math.sqrt(max(between or 0.0, within) / M)
    ci = interval(mean, se, M - 1 if M > 1 else math.inf)
    spread = math.sqrt(between) if M > 1 else None
    return {
        'mean': mean,
        'ci': ci,
        'se': se,
        'n': M,
        'between_sd': spread,
        'within_se': math.sqrt(within),
    }


def detectable(se, df=math.inf):
    """The smallest true effect an estimate with this error detects at 5% with 80% power."""
    return (t_quantile(max(df, 1)) + POWER_Z) * se


def interval_words(lo, hi):
    """Where a 95% interval lies against 0, in the words every table uses."""
    return 'above 0' if lo > 0 else 'below 0' if hi < 0 else 'holds 0'
