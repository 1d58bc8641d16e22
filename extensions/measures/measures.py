"""Does the random-label accuracy rank networks by their generalization gap? `make measures`

    python -m extensions.measures.measures results/measures

The seed paper calls the random-label accuracy a complexity metric, and a complexity metric should
order networks by how much worse they do on unseen data. The field's test (Jiang et al. 2020,
"Fantastic generalization measures and where to find them"): train a grid of networks over several
hyperparameters and report Kendall's rank correlation τ between each measure and the
generalization gap (train - test accuracy): over all networks (τ-b, with a 95% bootstrap interval
over configurations, both seeds of one together: stats.py), over the networks that reached the
training criterion (`tau_fitted`), and per hyperparameter the granulated ψ: the mean, over the
groups of networks that differ in that hyperparameter alone (the others and the seed fixed), of
the group's τ with ties counting 0 (Jiang et al.'s τ: Σ sign(Δμ)·sign(Δg) over the group's pairs,
divided by their number); Ψ is the mean of ψ over the hyperparameters. ψ's interval is exact
(Clopper–Pearson over configurations), Ψ's the mean of ψ's bounds at 95/H% (Bonferroni). Which
measure ranks better than training accuracy: the paired interval of the τ difference over the same
resamples, raw and Holm-adjusted for the family of these comparisons; only an interval off 0
says better or worse.

The measures, each on the network's training samples in eval mode:
    online          the papers' number: the online random-label head's accuracy (penultimate);
    a_train, m      a fresh head on the same labels, and m = a_fresh - a_heldout (metrics.controls);
  Jiang et al.'s baselines, on the weights of f and g (not the heads, no biases), each BatchNorm
  folded into the convolution whose output it normalizes (W·γ/√(var + ε)), at the network's end
  and at its initialization (W₀); the names and forms of Dziugaite et al. 2020's reimplementation:
    dist_fro        Σ ‖W - W₀‖²_F over layers, the Frobenius distance from initialization;
    dist_spec_init  Σ ‖W - W₀‖²₂, a convolution's kernel read as a matrix (out, in·k·k);
    param_norm      Σ ‖W‖²_F;
    inv_margin_sq   1/γ², γ the 10th percentile over the training set of the output margin
                    f_y - max_{k≠y} f_k. Jiang et al. train every network to a training
                    cross-entropy of 0.01, so their γ > 0; a network that stops at the epoch limit
                    may end with γ ≤ 0, and we rank it above every network with γ > 0 (1/γ² grows
                    without bound as γ -> 0+), all of them tied (stored as null): Jiang et al.'s
                    measure is the fitted networks' (`tau_fitted`), where γ > 0;
    <name>_n        each of the four as √(measure / n), n the training-set size: the forms in
                    which the bounds hold, and the only ones that compare networks of other n;
    mag_flatness    1/σ², σ the largest magnitude-aware perturbation w + u, u ~ N(0, σ²w² + ε²)
                    (ε = 1e-3), that lowers training accuracy by at most SHARP_DROP (on
                    SHARP_SAMPLES training samples, SHARP_DRAWS draws, bisection in log σ);
  the trivial baselines, which a measure must beat to mean anything here:
    train_acc       the training accuracy (on the labels trained on, noisy ones included);
    train_loss      the training cross-entropy;
  and ours: neg_margin = -γ, defined also where γ ≤ 0.
The networks (extensions.mk): Fashion-MNIST, the small CNN, over training-set size, label noise,
weight decay and learning rate (2 values each), 2 seeds, each trained to a training cross-entropy
criterion within a maximum of epochs (train.py --stop-at-loss; the cosine schedule spans the
maximum): each network's epochs and whether it reached the criterion are in measures.json. It
also predicts every network's a_train from its features' effective dimension (explain.py).
"""

import argparse
import copy
import glob
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from matplotlib import pyplot as plt

from data import GpuLoader
from extensions.report.markdown import save
from metrics import correct, interval_words
from plumbing import commit
from train import eval_batches

from . import explain
from .stats import (
    ALPHA,
    bootstrap_p,
    clopper_pearson,
    clusters,
    configuration_picks,
    holm,
    holm_levels,
    percentile_interval,
)

HYPERPARAMETERS = ('subset', 'label_noise', 'weight_decay', 'lr')
OURS = ('online', 'a_train', 'm')
JIANG = ('dist_fro', 'dist_spec_init', 'param_norm', 'inv_margin_sq')
NORMALIZED = tuple(f'{name}_n' for name in JIANG)
TRIVIAL = ('train_acc', 'train_loss')
MEASURES = (*OURS, *JIANG, *NORMALIZED, 'mag_flatness', *TRIVIAL, 'neg_margin')
TAP = 'penultimate'
BOOTSTRAP = 4000  # enough resamples for Holm's smallest level, 0.05/14: 7 in each tail
SHARP_DROP = 0.1  # the accuracy a perturbation may cost (Jiang et al.'s deviation)
SHARP_EPS = 1e-3  # the perturbation's floor, for weights near 0 (ε of Jiang et al.)
SHARP_DRAWS = 3
SHARP_STEPS = 8  # bisection steps in log σ over [1e-4, 1]: σ to within a factor 1.04
SHARP_SAMPLES = 500  # training samples it is measured on


# --- Kendall's τ, its bootstrap interval, the granulated ψ and Ψ ---------------------------------


def signs(v):
    """sign(v_i - v_j) of every pair i < j, by comparison (so +inf ties with +inf)."""
    v = np.asarray(v, float)
    i, j = np.triu_indices(len(v), 1)
    return (v[i] > v[j]).astype(int) - (v[i] < v[j]).astype(int)


def kendall_tau(x, y):
    """Kendall's τ-b: (concordant - discordant pairs) / √(pairs not tied in x · pairs not tied in
    y); nan when either has no untied pair. Hand-written: O(n²) pairs are nothing for tens of
    networks, and it keeps scipy out."""
    dx, dy = signs(x), signs(y)
    denominator = math.sqrt(np.count_nonzero(dx) * np.count_nonzero(dy))
    return float((dx * dy).sum() / denominator) if denominator else math.nan


def group_tau(x, y):
    """Jiang et al.'s τ of one group: Σ sign(Δx)·sign(Δy) over its pairs / their number; a pair
    tied in either counts 0. For two networks: +1, -1 or 0."""
    return float((signs(x) * signs(y)).mean())


def bootstrap_interval(x, y, configs=None, resamples=None, seed=0):
    """The 95% percentile interval of τ over resamples of the configurations (every seed of one
    together, stats.configuration_picks; configs None: single networks)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    picks = configuration_picks(len(x), configs, resamples or BOOTSTRAP, seed)
    return percentile_interval([kendall_tau(x[k], y[k]) for k in picks])


def paired_draws(x1, x2, y, configs=None, seed=0):
    """τ(x1, y) - τ(x2, y), and the same difference on each resample of the configurations, both
    measures on the same resample."""
    x1, x2, y = (np.asarray(v, float) for v in (x1, x2, y))
    picks = configuration_picks(len(y), configs, BOOTSTRAP, seed)
    diffs = np.array([kendall_tau(x1[k], y[k]) - kendall_tau(x2[k], y[k]) for k in picks])
    return kendall_tau(x1, y) - kendall_tau(x2, y), diffs


def paired_difference(x1, x2, y, configs=None, seed=0):
    """τ(x1, y) - τ(x2, y) with its 95% paired interval: which measure ranks better than which."""
    diff, diffs = paired_draws(x1, x2, y, configs, seed)
    return {'diff': diff, 'ci': percentile_interval(diffs)}


def groups(configs, h):
    """The groups of networks that differ in hyperparameter h alone: lists of indices."""
    found = {}
    for i, c in enumerate(configs):
        found.setdefault(tuple((k, c[k]) for k in sorted(c) if k != h), []).append(i)
    return [g for g in found.values() if len(g) > 1]


def exact_psi(taus, units, alpha=ALPHA):
    """Clopper–Pearson's interval for ψ = 2p − 1, p the share of concordant groups (a tie counts
    ½): over the configurations (`units`: each group's configuration without the seed), a
    configuration's groups averaged, so that its seeds count once. Exact for concordant and
    discordant counts; never degenerate at ±1."""
    share = {}
    for tau, unit in zip(taus, units, strict=True):
        share.setdefault(unit, []).append((1 + tau) / 2)
    k, n = sum(float(np.mean(v)) for v in share.values()), len(share)
    lo, hi = clopper_pearson(k, n, alpha)
    return [2 * lo - 1, 2 * hi - 1]


def granulated_tau(configs, x, y, hyperparameters=HYPERPARAMETERS):
    """{h: {'tau': ψ_h, 'ci', 'configurations'}} and {'psi': Ψ, 'ci'}: ψ_h the mean group τ (ties
    0) over the groups that differ in h alone (None where none do), with its exact interval over
    the configurations (exact_psi); Ψ their mean over the hyperparameters, its interval the mean of
    the ψ_h's bounds each at 95/H% (Bonferroni over the H hyperparameters: conservative)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    per, wide = {}, []
    measured = [h for h in hyperparameters if groups(configs, h)]
    for h in hyperparameters:
        found = groups(configs, h)
        if not found:
            per[h] = None
            continue
        taus = [group_tau(x[g], y[g]) for g in found]
        units = [
            tuple(sorted((k, v) for k, v in configs[g[0]].items() if k not in (h, 'seed')))
            for g in found
        ]
        configurations = len(set(units))
        per[h] = {
            'tau': float(np.mean(taus)),
            'ci': exact_psi(taus, units),
            'configurations': configurations,
        }
        wide.append(exact_psi(taus, units, ALPHA / len(measured)))
    psi = None
    if wide:
        mean = float(np.mean([v['tau'] for v in per.values() if v]))
        psi = {
            'psi': mean,
            'ci': [float(np.mean([w[0] for w in wide])), float(np.mean([w[1] for w in wide]))],
        }
    return per, psi


# --- the baselines ----------------------------------------------------------------------------


def folded_weights(model):
    """{name: W} of f and g: every convolution with the BatchNorm that normalizes its output
    folded in (W·γ/√(var + ε), per output channel), and the class head g. Weights only, as
    Jiang et al.'s norm measures are; the random-label heads are not the network measured."""
    weights = {}
    for prefix, module in model.named_modules():
        if prefix.startswith('rand_heads'):
            continue
        children = list(module.named_children())
        for (name, a), (_, b) in zip(children, children[1:], strict=False):  # neighbours
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                scale = b.weight / torch.sqrt(b.running_var + b.eps)
                weights[f'{prefix}.{name}'] = a.weight * scale.view(-1, 1, 1, 1)
    return weights | {'fc': model.fc.weight}


@torch.no_grad()
def norm_measures(model, init_model, n):
    """dist_fro, dist_spec_init, param_norm, and their √(measure / n) forms."""
    w, w0 = folded_weights(model), folded_weights(init_model)
    diffs = [(w[k] - w0[k]).flatten(1) for k in w]  # a kernel as a matrix (out, in·k·k)
    found = {
        'dist_fro': sum(d.pow(2).sum().item() for d in diffs),
        'dist_spec_init': sum(torch.linalg.matrix_norm(d, ord=2).item() ** 2 for d in diffs),
        'param_norm': sum(v.pow(2).sum().item() for v in w.values()),
    }
    return found | {f'{k}_n': math.sqrt(v / n) for k, v in found.items()}


@torch.no_grad()
def class_logits(model, x, data, device):
    """Class logits g(f(x)) of uint8 images, eval mode."""
    model.eval()
    return torch.cat(
        [model(b).logits.float() for (b,) in GpuLoader(x, (), data.mean, data.std, 1024, device)]
    )


def margin(logits, y):
    """γ: the 10th percentile of f_y - max_{k≠y} f_k."""
    true = logits.gather(1, y[:, None])[:, 0]
    other = logits.scatter(1, y[:, None], -math.inf).max(1).values
    return torch.quantile(true - other, 0.1).item()


def inverse_margin(gamma, n):
    """1/γ² and √(1/(γ² n)); None (ranked as +∞) where γ ≤ 0: the module docstring's rule."""
    if gamma <= 0:
        return {'inv_margin_sq': None, 'inv_margin_sq_n': None}
    return {'inv_margin_sq': gamma**-2, 'inv_margin_sq_n': math.sqrt(gamma**-2 / n)}


@torch.no_grad()
def mag_flatness(model, params, accuracy, seed=0):
    """1/σ² for the largest σ whose perturbations w + u, u ~ N(0, σ²w² + ε²) of the tensors
    params(model), cost at most SHARP_DROP of accuracy(model), averaged over SHARP_DRAWS draws."""
    base = accuracy(model)
    g = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    lo, hi = math.log(1e-4), math.log(1.0)

    def drop(sigma):
        total = 0.0
        for _ in range(SHARP_DRAWS):
            noisy = copy.deepcopy(model)
            for p in params(noisy):
                std = (sigma**2 * p.pow(2) + SHARP_EPS**2).sqrt()
                p.add_(std * torch.randn(p.shape, generator=g, device=p.device))
            total += base - accuracy(noisy)
        return total / SHARP_DRAWS

    for _ in range(SHARP_STEPS):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if drop(math.exp(mid)) <= SHARP_DROP else (lo, mid)
    return 1 / math.exp(lo) ** 2


def body(model):
    """f and g's parameters: everything but the random-label heads."""
    return [p for k, p in model.named_parameters() if not k.startswith('rand_heads.')]


def loss_and_accuracy(model, data, split, device):
    """Mean class cross-entropy and accuracy on a split's own labels (noisy ones in training)."""
    model.eval()
    total, hits, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y, _ in eval_batches(data, split, device):
            logits = model(x).logits.float()
            total += F.cross_entropy(logits, y, reduction='sum').item()
            hits += correct(logits, y).sum().item()
            n += len(y)
    return total / n, hits / n


def network(run_dir, curve):
    """One run folder: its hyperparameters, gaps, measures and explained a_train."""
    from extensions.probe.probe import load_run

    with open(os.path.join(run_dir, 'results.json')) as f:
        results = json.load(f)
    with open(os.path.join(run_dir, 'probe.json')) as f:
        probe = json.load(f)
    loaded = load_run(run_dir, 'cpu')
    cfg, data, model, init_model, device = loaded
    train_loss, train_acc = loss_and_accuracy(model, data, 'train', device)
    test_loss, test_acc = loss_and_accuracy(model, data, 'test', device)
    n = len(data.train_y)
    gamma = margin(class_logits(model, data.train_x, data, device), data.train_y.to(device))
    g = torch.Generator().manual_seed(cfg.seed)
    keep = torch.randperm(n, generator=g)[:SHARP_SAMPLES]
    x, y = data.train_x[keep], data.train_y[keep].to(device)

    def accuracy(m):
        return correct(class_logits(m, x, data, device), y).float().mean().item()

    tap = probe['taps'][TAP]
    measures = {
        'online': results['final']['rand_acc'][TAP],
        'a_train': tap['a_train'],
        'm': tap['memorization'],
        **norm_measures(model, init_model, n),
        **inverse_margin(gamma, n),
        'mag_flatness': mag_flatness(model, body, accuracy, seed=cfg.seed),
        'train_acc': train_acc,
        'train_loss': train_loss,
        'neg_margin': -gamma,
    }
    config = {h: getattr(cfg, h) for h in HYPERPARAMETERS} | {'seed': cfg.seed}
    stop = results['final'].get('stop')  # train.py --stop-at-loss: epochs used, reached or not
    return {
        'run': run_dir,
        'config': config,
        'epochs': results['final']['epoch'],
        'reached': stop['reached'] if stop else None,
        'criterion': stop['at_loss'] if stop else None,
        'train_acc': train_acc,
        'test_acc': test_acc,
        'gen_gap': train_acc - test_acc,
        'loss_gap': test_loss - train_loss,
        'train_loss': train_loss,
        'margin': gamma,
        'measures': measures,
        'm_ci': tap['memorization_ci'],
        'explained': explain.explain_run(run_dir, curve, loaded=loaded),
    }


# --- the study ----------------------------------------------------------------------------------


def ranked(networks, name):
    """A measure over the networks, None (γ ≤ 0) ranked as +∞."""
    return np.array([math.inf if (v := n['measures'][name]) is None else v for n in networks])


def rank_correlation(x, gap, configs=None):
    """{'tau', 'ci'} of a measure against a gap; None where τ is undefined (a constant measure)."""
    tau = kendall_tau(x, gap)
    if math.isnan(tau):
        return {'tau': None, 'ci': None}
    return {'tau': tau, 'ci': bootstrap_interval(x, gap, configs)}


def versus_train_acc(networks):
    """τ − τ(train_acc) of every other measure, paired over resampled configurations: a family of
    comparisons with one baseline, so each has its raw interval and p-value and Holm's (stats.py):
    `ci_holm`, `p_holm`. None where τ is undefined."""
    gap = np.array([n['gen_gap'] for n in networks])
    configs = [n['config'] for n in networks]
    trivial = ranked(networks, 'train_acc')
    found, draws = {}, {}
    for name in MEASURES:
        x = ranked(networks, name)
        undefined = math.isnan(kendall_tau(x, gap)) or math.isnan(kendall_tau(trivial, gap))
        if name == 'train_acc' or undefined:
            found[name] = None
            continue
        diff, draws[name] = paired_draws(x, trivial, gap, configs)
        found[name] = {'diff': diff, 'ci': percentile_interval(draws[name])}
        found[name]['p'] = bootstrap_p(draws[name])
    family = list(draws)
    adjusted = holm([found[k]['p'] for k in family])
    levels = holm_levels([found[k]['p'] for k in family])
    for name, p, level in zip(family, adjusted, levels, strict=True):
        found[name] |= {'p_holm': p, 'ci_holm': percentile_interval(draws[name], level)}
        found[name]['holm_level'] = level
    return found


def correlations(networks):
    """Per measure: τ with the accuracy gap and the loss gap, ψ per hyperparameter and Ψ, and τ
    minus the trivial baseline's τ (training accuracy), paired and Holm-adjusted; τ and the
    comparison again over the networks that reached the training criterion (`*_fitted`)."""
    gap = np.array([n['gen_gap'] for n in networks])
    loss_gap = np.array([n['loss_gap'] for n in networks])
    configs = [n['config'] for n in networks]
    out = {k: {} for k in ('tau', 'tau_loss_gap', 'granulated', 'psi', 'tau_fitted')}
    fitted = [n for n in networks if n.get('reached')]
    fitted_gap = np.array([n['gen_gap'] for n in fitted])
    fitted_configs = [n['config'] for n in fitted]
    for name in MEASURES:
        x = ranked(networks, name)
        out['tau'][name] = rank_correlation(x, gap, configs)
        out['tau_loss_gap'][name] = rank_correlation(x, loss_gap, configs)
        out['granulated'][name], out['psi'][name] = granulated_tau(configs, x, gap)
        enough = len(fitted) >= 2
        xf = ranked(fitted, name)
        out['tau_fitted'][name] = (
            rank_correlation(xf, fitted_gap, fitted_configs)
            if enough
            else {'tau': None, 'ci': None}
        )
    out['versus_train_acc'] = versus_train_acc(networks)
    out['versus_train_acc_fitted'] = versus_train_acc(fitted) if len(fitted) >= 2 else None
    out['fitted_rule'] = fitted_rule(networks)
    out['fitted_networks'] = len(fitted)
    out['configurations'] = len(clusters(configs))
    return out


def fitted_rule(networks):
    """One sentence: which networks `tau_fitted` is over."""
    criteria = {n['criterion'] for n in networks}
    if criteria == {None}:
        return 'none: these networks were trained for a fixed budget, without a criterion'
    reached = [n for n in networks if n['reached']]
    most = max(n['epochs'] for n in networks)
    return (
        f'the {len(reached)} of {len(networks)} networks whose training cross-entropy (an '
        f"epoch's mean over the batches it trained on) reached {', '.join(map(str, criteria))} "
        f'within at most {most} epochs (train.py --stop-at-loss); the others stopped at {most}'
    )


def learning_rate_claim(networks):
    """The online head against a_train, overall and within each learning rate: τ with the gap,
    and the paired difference of the two τ, each with its interval."""
    out = {}
    for lr in [None, *sorted({n['config']['lr'] for n in networks})]:
        part = [n for n in networks if lr is None or n['config']['lr'] == lr]
        gap = np.array([n['gen_gap'] for n in part])
        configs = [n['config'] for n in part]
        online, fresh = ranked(part, 'online'), ranked(part, 'a_train')
        out['all' if lr is None else str(lr)] = {
            'networks': len(part),
            'online': rank_correlation(online, gap, configs),
            'a_train': rank_correlation(fresh, gap, configs),
            'difference': paired_difference(online, fresh, gap, configs),
        }
    return out


def interval_text(ci):
    return f'[{ci[0]:+.2f}, {ci[1]:+.2f}]'


def measure_sentence(name, tau, versus):
    """What τ says of one measure, from its interval's bounds, and against training accuracy: a
    verdict only from the Holm-adjusted paired interval (`ci_holm`), the raw one beside it."""
    if tau['tau'] is None:
        return f'**{name}**: constant over these networks, so τ is undefined.'
    words = interval_words(*tau['ci'])
    text = f'**{name}**: τ = {tau["tau"]:+.2f}, within {interval_text(tau["ci"])}'
    text += {'above 0': ': it ranks the networks with their gap', 'below 0': ': against it'}.get(
        words, ''
    )
    if name != 'train_acc' and versus is not None:
        adjusted = versus.get('ci_holm', versus['ci'])
        than = {'above 0': 'better than', 'below 0': 'worse than'}.get(interval_words(*adjusted))
        text += f'; τ − τ(train_acc) = {versus["diff"]:+.2f} {interval_text(versus["ci"])}'
        if 'ci_holm' in versus:
            text += f' (Holm-adjusted {interval_text(adjusted)})'
        text += f': it ranks {than} training accuracy alone' if than else ''
    return text + '.'


def lr_sentence(claim):
    """The learning-rate question, stated as far as the intervals carry it."""
    every, parts = claim['all'], []
    for lr, c in claim.items():
        if lr != 'all':
            o = c['online']
            parts.append(
                f'at lr {lr} ({c["networks"]} networks) {o["tau"]:+.2f} {interval_text(o["ci"])}'
            )
    d = every['difference']
    side = interval_words(*d['ci'])
    verdict = {
        'above 0': 'the online head ranks better than a fresh head on the same features',
        'below 0': 'a fresh head on the same features ranks better than the online head',
    }.get(side, 'an interval that holds 0, so these networks do not order the two')
    return (
        f'The online head against a fresh head (a_train): τ = {every["online"]["tau"]:+.2f} '
        f'against {every["a_train"]["tau"]:+.2f}; the online head within each learning rate: '
        f'{"; ".join(parts)}. The paired difference τ(online) − τ(a_train) = {d["diff"]:+.2f} '
        f'{interval_text(d["ci"])}: {verdict}.'
    )


def figure(folder, networks):
    """A scatter per measure against the gap: colour by label noise, marker by training-set size."""
    shown = [m for m in MEASURES if not m.endswith('_n')] + ['dist_fro_n']
    fig, axes = plt.subplots(3, 5, figsize=(18, 10))
    noise_values = sorted({n['config']['label_noise'] for n in networks})
    size_values = sorted({n['config']['subset'] for n in networks})
    markers = dict(zip(size_values, 'os^v', strict=False))
    colors = dict(zip(noise_values, ('tab:blue', 'tab:red', 'tab:green'), strict=False))
    for ax, name in zip(axes.flat, shown, strict=False):
        for n in networks:
            c, value = n['config'], n['measures'][name]
            if value is not None:
                marker, color = markers[c['subset']], colors[c['label_noise']]
                ax.plot(100 * n['gen_gap'], value, marker, color=color, alpha=0.7)
        ax.set(xlabel='generalization gap (points)', title=name)
        if name in ('mag_flatness', 'param_norm', 'dist_fro', 'dist_spec_init', 'inv_margin_sq'):
            ax.set_yscale('log')
        ax.grid(alpha=0.3)
    legend = axes.flat[-1]
    for noise, color in colors.items():
        legend.plot([], [], 's', color=color, label=f'label noise {noise}')
    for size, marker in markers.items():
        legend.plot([], [], marker, color='gray', label=f'n = {size}')
    legend.legend(loc='center')
    legend.axis('off')
    for ax in axes.flat[len(shown) : -1]:
        ax.axis('off')
    return save(fig, folder, 'measures.png')


def tau_cell(t):
    return '—' if t is None or t['tau'] is None else f'{t["tau"]:+.2f} {interval_text(t["ci"])}'


def report(folder, networks, found, claim, prediction, curve):
    lines = [
        '# Does the random-label accuracy rank networks by their generalization gap?',
        '',
        f'{len(networks)} networks (Fashion-MNIST, small CNN), over {grid(networks)}. Kendall τ-b '
        'of each measure with the accuracy gap (train − test) and the loss gap (test − train), '
        f'with a 95% bootstrap interval over the {found["configurations"]} configurations (both '
        'seeds of one resampled together); the same over the networks that reached the training '
        f'criterion (τ fitted: {found["fitted_rule"]}); τ − τ(train_acc): how much better the '
        'measure ranks than training accuracy alone, with a paired interval over the same '
        'resamples, raw and Holm-adjusted for the family of the comparisons with training accuracy '
        "(p_holm: Holm's adjusted p-value); Ψ and ψ: Jiang et al.'s granulated τ (ties count 0), "
        'with exact (Clopper–Pearson) intervals over the configurations, Ψ the mean of the ψ '
        'bounds at 95/H% each (Bonferroni over the H hyperparameters). The measures are defined in '
        'extensions/measures/measures.py; inv_margin_sq ranks a network with γ ≤ 0 above every '
        "network with γ > 0 (Jiang et al.'s 1/γ² is defined where γ > 0, as in every fitted "
        'network); neg_margin = −γ is ours.',
        '',
        '| measure | τ (accuracy gap) [95%] | τ fitted [95%] | τ − τ(train_acc) [95%] '
        '| Holm-adjusted [95%] | p_holm | τ (loss gap) [95%] | Ψ [exact 95%] |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ]
    for name in MEASURES:
        versus = found['versus_train_acc'][name]
        cells = [tau_cell(found['tau'][name]), tau_cell(found['tau_fitted'][name])]
        cells += versus_cells(versus)
        cells += [tau_cell(found['tau_loss_gap'][name])]
        psi = found['psi'][name]
        cells.append('—' if psi is None else tau_cell({'tau': psi['psi'], 'ci': psi['ci']}))
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    if found['versus_train_acc_fitted']:
        lines += ['', f'Over the {found["fitted_networks"]} fitted networks alone:', '']
        lines.append(
            '| measure | τ fitted [95%] | τ − τ(train_acc) [95%] | Holm-adjusted [95%] | p_holm |'
        )
        lines.append('| --- | ---: | ---: | ---: | ---: |')
        for name in MEASURES:
            cells = [tau_cell(found['tau_fitted'][name])]
            cells += versus_cells(found['versus_train_acc_fitted'][name])
            lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    lines += ['', 'Granulated τ (ψ) per hyperparameter [exact 95%]:', '']
    lines.append('| measure | ' + ' | '.join(HYPERPARAMETERS) + ' |')
    lines.append('| --- | ' + ' | '.join('---:' for _ in HYPERPARAMETERS) + ' |')
    for name in MEASURES:
        cells = [tau_cell(found['granulated'][name][h]) for h in HYPERPARAMETERS]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    lines += ['', budget_note(networks), '', figure(folder, networks), '']
    lines += ['All networks:', '']
    lines += [
        '- ' + measure_sentence(name, found['tau'][name], found['versus_train_acc'][name])
        for name in MEASURES
    ]
    if found['versus_train_acc_fitted']:
        lines += ['', f'The {found["fitted_networks"]} fitted networks:', '']
        lines += [
            '- '
            + measure_sentence(
                name, found['tau_fitted'][name], found['versus_train_acc_fitted'][name]
            )
            for name in MEASURES
        ]
    lines += ['', lr_sentence(claim), '', '## The networks', '']
    shown = ('online', 'a_train', 'm', 'dist_fro', 'inv_margin_sq', 'mag_flatness')
    lines.append(
        '| '
        + ' | '.join(HYPERPARAMETERS)
        + ' | seed | epochs | reached | train | test | gap | train loss | γ | '
        + ' | '.join(shown)
        + ' |'
    )
    lines.append('|' + ' --- |' * (len(HYPERPARAMETERS) + 8 + len(shown)))
    for n in networks:
        c, m = n['config'], n['measures']
        cells = [str(c[h]) for h in HYPERPARAMETERS] + [str(c['seed'])]
        reached = {True: 'yes', False: 'no', None: '—'}[n.get('reached')]
        cells += [str(n.get('epochs', '—')), reached]
        cells += [
            f'{100 * n["train_acc"]:.1f}',
            f'{100 * n["test_acc"]:.1f}',
            f'{100 * n["gen_gap"]:.1f}',
            f'{n["train_loss"]:.3f}',
            f'{n["margin"]:+.3g}',
        ]
        cells += ['—' if m[k] is None else f'{m[k]:.3g}' for k in shown]
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines += ['', '## Predicting a_train from the effective dimension (explain.py)', '']
    lines += [explain.figure(folder, [n['explained'] for n in networks], curve), '']
    lines += [explain.table(prediction), '', explain.sentence(prediction), '']
    with open(os.path.join(folder, 'report.md'), 'w') as f:
        f.write('\n'.join(lines))
    return '\n'.join(lines)


def grid(networks):
    """'subset {1000, 2000}, ..., seed {0, 1}': what the networks vary."""
    keys = (*HYPERPARAMETERS, 'seed')
    values = {k: sorted({n['config'][k] for n in networks}) for k in keys}
    return ', '.join(f'{k} {{{", ".join(str(v) for v in values[k])}}}' for k in keys)


def versus_cells(versus):
    """The comparison with training accuracy: raw, Holm-adjusted, Holm's p."""
    if versus is None:
        return ['—', '—', '—']
    cells = [tau_cell({'tau': versus['diff'], 'ci': versus['ci']})]
    cells.append(tau_cell({'tau': versus['diff'], 'ci': versus['ci_holm']}))
    p = versus['p_holm']  # a bootstrap p of 0: no resample on the other side of 0
    return cells + [f'{p:.3f}' if p >= 0.001 else '< 0.001']


def budget_note(networks):
    lo = min(n['train_acc'] for n in networks)
    hi = max(n['train_acc'] for n in networks)
    negative = sum(n['margin'] <= 0 for n in networks)
    ended = (
        f'training accuracy ends between {100 * lo:.1f} and {100 * hi:.1f}% (on the labels trained '
        f'on, noisy ones included), and {negative} of {len(networks)} networks end with a margin '
        'γ ≤ 0'
    )
    criteria = {n.get('criterion') for n in networks}
    if criteria == {None}:
        return f'A fixed budget, not a loss criterion: {ended}.'
    reached = [n for n in networks if n['reached']]
    epochs = sorted(n['epochs'] for n in reached)
    used = f' in {epochs[0]} to {epochs[-1]} epochs' if epochs else ''
    negative_fitted = sum(n['margin'] <= 0 for n in reached)
    return (
        f'Trained to a criterion, training cross-entropy ≤ {", ".join(map(str, criteria))} (Jiang '
        f'et al. 2020 use 0.01, beyond a 2-core CPU budget for this grid), within at most '
        f'{max(n["epochs"] for n in networks)} epochs: {len(reached)} of {len(networks)} networks '
        f'reached it{used}, {negative_fitted} of them with γ ≤ 0; {ended}.'
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument(
        'folder', help='the study folder: <run>/seed<N>/ with results.json and probe.json'
    )
    args = p.parse_args(argv)
    runs = sorted(
        os.path.dirname(f) for f in glob.glob(os.path.join(args.folder, '*', 'seed*', 'probe.json'))
    )
    if len(runs) < 2:
        p.error(f'{args.folder}: fewer than 2 finished runs; run make measures')
    curve = explain.capacity_curve()
    networks = []
    for run in runs:
        networks.append(network(run, curve))
        n = networks[-1]
        shown = ' '.join(f'{k} {v:.3g}' for k, v in n['measures'].items() if v is not None)
        print(f'{run}: gap {100 * n["gen_gap"]:.1f} | {shown}', flush=True)
    found = correlations(networks)
    claim = learning_rate_claim(networks)
    prediction = explain.residuals([n['explained'] for n in networks])
    best = explain.best_dim(prediction)
    keep = ('run', 'config', 'epochs', 'reached', 'gen_gap', 'loss_gap', 'train_acc', 'test_acc')
    keep += ('margin', 'measures')
    result = {
        'networks': [{k: n[k] for k in keep} for n in networks],
        **found,
        'learning_rate': claim,
        'prediction': {tap: by_dim[best] | {'dim': best} for tap, by_dim in prediction.items()},
        'explained': [n['explained'] for n in networks],
        'curve': curve,
        'commit': commit(),
    }
    with open(os.path.join(args.folder, 'measures.json'), 'w') as f:
        json.dump(result, f, indent=1)
    print(report(args.folder, networks, found, claim, prediction, curve))


if __name__ == '__main__':
    main()
