"""Does the random-label accuracy rank networks by their generalization gap? `make measures`

    python -m extensions.measures.measures results/measures

The seed paper calls the random-label accuracy a complexity metric, and a complexity metric should
order networks by how much worse they do on unseen data. The field's test (Jiang et al. 2020,
"Fantastic generalization measures and where to find them"): train a grid of networks over several
hyperparameters, and report Kendall's rank correlation τ between each measure and the
generalization gap (train - test accuracy) over all networks, and per hyperparameter the granulated
τ: the mean of τ over the groups of networks that differ in that hyperparameter alone (same other
hyperparameters, same seed). With two values per hyperparameter a group is one pair, and its τ is +1
when the measure moves with the gap, -1 when against it. A 95% interval of the overall τ comes
from resampling the networks (bootstrap).

The measures (each computed on the network's training samples, eval mode):
    online          the papers' number: the online random-label head's accuracy (penultimate);
    a_train         a fresh head fitted to the same labels (metrics.controls);
    m               the memorization estimate a_fresh - a_heldout (metrics.controls);
    distance        ‖w - w₀‖ of f and g from their initialization (Jiang et al.: dist.spec.init);
    sum_of_squares  Σ‖w‖² of f and g (the weight decay's own quantity);
    neg_margin      -γ, γ the 10th percentile of the output margin f_y - max_{k≠y} f_k; it ranks as
                    Jiang et al.'s 1/γ² and stays defined when γ ≤ 0 (label noise);
    sharpness       1/σ², σ the largest magnitude-aware perturbation w + σ|w|ε, ε ~ N(0, 1),
                    that lowers training accuracy by at most SHARP_DROP (Jiang et al.'s
                    pacbayes.mag.flatness, on accuracy, found by bisection).
The networks (extensions.mk): Fashion-MNIST, the small CNN, a fixed budget of epochs with the
core's cosine schedule, over training-set size, label noise, weight decay and learning rate (2
values each), 2 seeds. It also predicts every network's a_train from its features' effective
dimension (explain.py).
"""

import argparse
import copy
import glob
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import pyplot as plt

from data import GpuLoader
from extensions.report.markdown import save
from metrics import interval_words
from plumbing import commit
from train import eval_batches

from . import explain

HYPERPARAMETERS = ('subset', 'label_noise', 'weight_decay', 'lr')
MEASURES = ('online', 'a_train', 'm', 'distance', 'sum_of_squares', 'neg_margin', 'sharpness')
TAP = 'penultimate'
BOOTSTRAP = 2000
SHARP_DROP = 0.1  # the accuracy a perturbation may cost (Jiang et al.'s deviation)
SHARP_DRAWS = 3
SHARP_STEPS = 8  # bisection steps in log σ over [1e-4, 1]: σ to within a factor 1.04
SHARP_SAMPLES = 500  # training samples it is measured on


# --- Kendall's τ, its bootstrap interval and the granulated τ --------------------------------


def kendall_tau(x, y):
    """Kendall's τ-b: (concordant - discordant pairs) / √(pairs not tied in x · pairs not tied in
    y); nan when either has no untied pair. Hand-written: O(n²) pairs are nothing for tens of
    networks, and it keeps scipy out."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    i, j = np.triu_indices(len(x), 1)
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    denominator = math.sqrt(np.count_nonzero(dx) * np.count_nonzero(dy))
    return float((dx * dy).sum() / denominator) if denominator else math.nan


def bootstrap_interval(x, y, resamples=BOOTSTRAP, seed=0):
    """The 95% percentile interval of τ over networks resampled with replacement."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    rng = np.random.default_rng(seed)
    taus = [kendall_tau(x[k], y[k]) for k in rng.integers(len(x), size=(resamples, len(x)))]
    lo, hi = np.nanpercentile(taus, [2.5, 97.5])
    return [float(lo), float(hi)]


def granulated_tau(configs, x, y, hyperparameters=HYPERPARAMETERS):
    """{hyperparameter: mean τ over the groups of networks that differ in it alone}. configs: one
    dict per network with every hyperparameter and the seed."""
    out = {}
    for h in hyperparameters:
        groups = {}
        for i, c in enumerate(configs):
            others = tuple((k, c[k]) for k in sorted(c) if k != h)
            groups.setdefault(others, []).append(i)
        taus = [kendall_tau(x[g], y[g]) for g in groups.values() if len(g) > 1]
        taus = [t for t in taus if not math.isnan(t)]
        out[h] = float(np.mean(taus)) if taus else None  # None: no pair differs in h alone
    return out


# --- the baselines ----------------------------------------------------------------------------


def body(model):
    """f and g's parameters by name: everything but the random-label heads."""
    return {k: p for k, p in model.named_parameters() if not k.startswith('rand_heads.')}


def distance_from_init(model, init_model):
    init = body(init_model)
    return math.sqrt(sum((p - init[k]).pow(2).sum().item() for k, p in body(model).items()))


def sum_of_squares(model):
    return sum(p.pow(2).sum().item() for p in body(model).values())


@torch.no_grad()
def class_logits(model, x, data, device):
    """Class logits g(f(x)) of uint8 images, eval mode."""
    model.eval()
    return torch.cat(
        [model(b).logits.float() for (b,) in GpuLoader(x, (), data.mean, data.std, 1024, device)]
    )


def margin(logits, y):
    """The 10th percentile of f_y - max_{k≠y} f_k."""
    true = logits.gather(1, y[:, None])[:, 0]
    other = logits.scatter(1, y[:, None], -math.inf).max(1).values
    return torch.quantile(true - other, 0.1).item()


@torch.no_grad()
def sharpness(model, x, y, data, device, seed=0):
    """1/σ² for the largest σ whose perturbations cost at most SHARP_DROP training accuracy."""
    base = (class_logits(model, x, data, device).argmax(1) == y).float().mean().item()
    g = torch.Generator(device=device).manual_seed(seed)
    lo, hi = math.log(1e-4), math.log(1.0)

    def drop(sigma):
        total = 0.0
        for _ in range(SHARP_DRAWS):
            noisy = copy.deepcopy(model)
            for p in body(noisy).values():
                p.add_(sigma * p.abs() * torch.randn(p.shape, generator=g, device=device))
            total += (
                base - (class_logits(noisy, x, data, device).argmax(1) == y).float().mean().item()
            )
        return total / SHARP_DRAWS

    for _ in range(SHARP_STEPS):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if drop(math.exp(mid)) <= SHARP_DROP else (lo, mid)
    return 1 / math.exp(lo) ** 2


def loss_and_accuracy(model, data, split, device):
    """Mean class cross-entropy and accuracy on a split's own labels (noisy ones in training)."""
    model.eval()
    total, hits, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y, _ in eval_batches(data, split, device):
            logits = model(x).logits.float()
            total += F.cross_entropy(logits, y, reduction='sum').item()
            hits += (logits.argmax(1) == y).sum().item()
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
    g = torch.Generator().manual_seed(cfg.seed)
    keep = torch.randperm(len(data.train_y), generator=g)[:SHARP_SAMPLES]
    x, y = data.train_x[keep], data.train_y[keep].to(device)
    tap = probe['taps'][TAP]
    measures = {
        'online': results['final']['rand_acc'][TAP],
        'a_train': tap['a_train'],
        'm': tap['memorization'],
        'distance': distance_from_init(model, init_model),
        'sum_of_squares': sum_of_squares(model),
        'neg_margin': -margin(class_logits(model, x, data, device), y),
        'sharpness': sharpness(model, x, y, data, device, seed=cfg.seed),
    }
    config = {h: getattr(cfg, h) for h in HYPERPARAMETERS} | {'seed': cfg.seed}
    return {
        'run': run_dir,
        'config': config,
        'train_acc': train_acc,
        'test_acc': test_acc,
        'gen_gap': train_acc - test_acc,
        'loss_gap': test_loss - train_loss,
        'train_loss': train_loss,
        'measures': measures,
        'm_ci': tap['memorization_ci'],
        'explained': explain.explain_run(run_dir, curve, loaded=loaded),
    }


# --- the study ----------------------------------------------------------------------------------


def rank_correlation(x, gap):
    """{'tau', 'ci'} of a measure against a gap; None where τ is undefined (a constant measure)."""
    tau = kendall_tau(x, gap)
    if math.isnan(tau):
        return {'tau': None, 'ci': None}
    return {'tau': tau, 'ci': bootstrap_interval(x, gap)}


def correlations(networks):
    """Overall τ with its interval (accuracy gap and loss gap) and the granulated τ, per measure."""
    gap = np.array([n['gen_gap'] for n in networks])
    loss_gap = np.array([n['loss_gap'] for n in networks])
    configs = [n['config'] for n in networks]
    tau, tau_loss, granulated = {}, {}, {}
    for name in MEASURES:
        x = np.array([n['measures'][name] for n in networks])
        tau[name] = rank_correlation(x, gap)
        tau_loss[name] = rank_correlation(x, loss_gap)
        granulated[name] = granulated_tau(configs, x, gap)
    return tau, tau_loss, granulated


def measure_sentence(name, tau, granulated):
    """What τ says about one measure, computed from its interval and the granulated τ."""
    if tau['tau'] is None:
        return f'**{name}**: constant over these networks, so τ is undefined.'
    t, (lo, hi) = tau['tau'], tau['ci']
    words = interval_words(lo, hi)
    verdict = {
        'above 0': 'ranks the networks with their gap',
        'below 0': 'ranks them against their gap',
        'holds 0': 'cannot be told from no ranking over this grid',
    }[words]
    per = ', '.join(f'{h} {v:+.2f}' for h, v in granulated.items() if v is not None)
    head = f'**{name}**: τ = {t:+.2f} [{lo:+.2f}, {hi:+.2f}], {words}: it {verdict}'
    return f'{head}; per hyperparameter {per}.'


def figure(folder, networks):
    """A scatter per measure against the gap: colour by label noise, marker by training-set size."""
    fig, axes = plt.subplots(2, 4, figsize=(15, 7))
    noise_values = sorted({n['config']['label_noise'] for n in networks})
    size_values = sorted({n['config']['subset'] for n in networks})
    markers = dict(zip(size_values, 'os^v', strict=False))
    colors = dict(zip(noise_values, ('tab:blue', 'tab:red', 'tab:green'), strict=False))
    for ax, name in zip(axes.flat, MEASURES, strict=False):  # the last axis: the legend
        for n in networks:
            c = n['config']
            ax.plot(
                100 * n['gen_gap'],
                n['measures'][name],
                markers[c['subset']],
                color=colors[c['label_noise']],
                alpha=0.7,
            )
        ax.set(xlabel='generalization gap (points)', title=name)
        if name == 'sharpness' or name == 'sum_of_squares':
            ax.set_yscale('log')
        ax.grid(alpha=0.3)
    legend = axes.flat[-1]
    for noise, color in colors.items():
        legend.plot([], [], 's', color=color, label=f'label noise {noise}')
    for size, marker in markers.items():
        legend.plot([], [], marker, color='gray', label=f'n = {size}')
    legend.legend(loc='center')
    legend.axis('off')
    return save(fig, folder, 'measures.png')


def report(folder, networks, tau, tau_loss, granulated, prediction, curve):
    lines = [
        '# Does the random-label accuracy rank networks by their generalization gap?',
        '',
        f'{len(networks)} networks (Fashion-MNIST, small CNN), over {grid(networks)}. Kendall τ of '
        'each measure with the accuracy gap (train − test) and the loss gap (test − train), 95% '
        'bootstrap interval over networks; per hyperparameter the granulated τ: the mean τ over '
        'the groups of networks that differ in it alone (— where none do).',
        '',
        '| measure | τ (accuracy gap) [95%] | τ (loss gap) [95%] | '
        + ' | '.join(HYPERPARAMETERS)
        + ' |',
        '| --- | ---: | ---: | ' + ' | '.join('---:' for _ in HYPERPARAMETERS) + ' |',
    ]
    for name in MEASURES:
        cells = [tau_cell(tau[name]), tau_cell(tau_loss[name])]
        cells += [
            '—' if granulated[name][h] is None else f'{granulated[name][h]:+.2f}'
            for h in HYPERPARAMETERS
        ]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    lines += ['', budget_note(networks), '', figure(folder, networks), '']
    lines += ['- ' + measure_sentence(name, tau[name], granulated[name]) for name in MEASURES]
    lines += ['', '## The networks', '']
    lines.append(
        '| '
        + ' | '.join(HYPERPARAMETERS)
        + ' | seed | train | test | gap | train loss | '
        + ' | '.join(MEASURES)
        + ' |'
    )
    lines.append('|' + ' --- |' * (len(HYPERPARAMETERS) + 5 + len(MEASURES)))
    for n in networks:
        c, m = n['config'], n['measures']
        cells = [str(c[h]) for h in HYPERPARAMETERS] + [str(c['seed'])]
        cells += [
            f'{100 * n["train_acc"]:.1f}',
            f'{100 * n["test_acc"]:.1f}',
            f'{100 * n["gen_gap"]:.1f}',
            f'{n["train_loss"]:.3f}',
        ]
        cells += [f'{m[k]:.3g}' for k in MEASURES]
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


def tau_cell(t):
    return '—' if t['tau'] is None else f'{t["tau"]:+.2f} [{t["ci"][0]:+.2f}, {t["ci"][1]:+.2f}]'


def budget_note(networks):
    lo = min(n['train_acc'] for n in networks)
    hi = max(n['train_acc'] for n in networks)
    return (
        f'A fixed budget, not a loss criterion: training accuracy ends between {100 * lo:.1f} and '
        f'{100 * hi:.1f}% (on the labels trained on, noisy ones included).'
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
        print(
            f'{run}: gap {100 * n["gen_gap"]:.1f} | '
            + ' '.join(f'{k} {v:.3g}' for k, v in n['measures'].items()),
            flush=True,
        )
    tau, tau_loss, granulated = correlations(networks)
    prediction = explain.residuals([n['explained'] for n in networks])
    best = explain.best_dim(prediction)
    result = {
        'networks': [
            {
                k: n[k]
                for k in (
                    'run',
                    'config',
                    'gen_gap',
                    'loss_gap',
                    'train_acc',
                    'test_acc',
                    'measures',
                )
            }
            for n in networks
        ],
        'tau': tau,
        'tau_loss_gap': tau_loss,
        'granulated': granulated,
        'prediction': {tap: by_dim[best] | {'dim': best} for tap, by_dim in prediction.items()},
        'explained': [n['explained'] for n in networks],
        'curve': curve,
        'commit': commit(),
    }
    with open(os.path.join(args.folder, 'measures.json'), 'w') as f:
        json.dump(result, f, indent=1)
    print(report(args.folder, networks, tau, tau_loss, granulated, prediction, curve))


if __name__ == '__main__':
    main()
