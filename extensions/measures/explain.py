"""Why the number is what it is: a linear head's capacity at the features' effective dimension.

    python -m extensions.measures.explain results/quick results/validate results/noise --out DIR

In metric mode f never sees r, so the papers' number a_train is what a fresh linear head
(metrics.fit_heads) reads of random labels from the training features: a property of their
geometry alone. A linear classifier with a bias realizes C(n, d) = 2 Σ_{k<d} binom(n - 1, k) of the
2^n labelings of n points in general position, d = D + 1 (Cover 1965), and without strong
regularization the training error of a linear classifier on random labels depends on the data only
through the samples per dimension (Gerace et al. 2022). If that is what happens here, one curve
a(n / D_eff, K), measured once on Gaussian features, and one number of a network's features, their
effective dimension D_eff, predict a_train for every network in metric mode, whatever it learned.

Effective dimensions of what the head sees (features standardized as fit_heads does, centered):
    width  the tap's nominal dimension D: no effective dimension at all, the baseline;
    rank   the numerical rank: singular values above RANK_RTOL of the largest;
    pr     the participation ratio (Σλ)² / Σλ² of the covariance's eigenvalues: D for isotropic
           features, r for r directions of equal variance; a spectral measure.
Per-class heads see their class's samples only, so each class is predicted from its own features.
The residual is measured − predicted, in points; networks that write r into f (--memorize,
unlearning) are marked and left out of the summary: the curve predicts what features hold for any
labels, not for r.
"""

import argparse
import glob
import json
import math
import os

import numpy as np
import torch
from matplotlib import pyplot as plt

from extensions.report.markdown import save
from metrics import fit_heads, tap_features

RANK_RTOL = 1e-3  # a direction counts when its singular value is above this share of the largest
DIMS = ('width', 'rank', 'pr')
CURVE_N = 2000  # samples per curve point (universality: what matters is n / D; a test checks)
CURVE_RATIOS = [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
CURVE_KS = [2, 10]
CURVE_DRAWS = 32  # label draws per point: the mean to about 0.2 points


# --- effective dimension and the capacity curve ------------------------------------------------


def standardized(z):
    """The head's input as fit_heads makes it: every feature at mean 0 and standard deviation 1
    (a dead unit stays 0), in float64 for the spectrum."""
    z = z.double()
    return (z - z.mean(0)) / (z.std(0) + 1e-6)


def effective_dims(z):
    """{'width', 'rank', 'pr'} of features z (n, D), as the module docstring defines them."""
    s = torch.linalg.svdvals(standardized(z))
    eig = s**2  # the covariance's eigenvalues, up to the factor 1/(n - 1) that cancels below
    rank = int((s > RANK_RTOL * s[0]).sum()) if s[0] > 0 else 0
    pr = float(eig.sum() ** 2 / eig.pow(2).sum()) if s[0] > 0 else 0.0
    return {'width': z.shape[1], 'rank': rank, 'pr': pr}


def capacity_curve(ks=CURVE_KS, ratios=CURVE_RATIOS, n=CURVE_N, draws=CURVE_DRAWS, seed=0):
    """a(n / D, K) of fresh heads on isotropic Gaussian features: for each K and samples per
    dimension, the mean accuracy over `draws` label draws and its spread."""
    g = torch.Generator().manual_seed(seed)
    points = []
    for K in ks:
        for ratio in ratios:
            D = max(1, round(n / ratio))
            z = torch.randn(n, D, generator=g)
            labels = torch.randint(K, (draws, n), generator=g)
            acc = fit_heads(z, None, labels, K, 1, 'shared').accuracy
            sd = acc.std().item()
            points.append(
                {'K': K, 'n': n, 'dim': D, 'ratio': n / D, 'a': acc.mean().item(), 'sd': sd}
            )
    return points


def predict(curve, K, ratio):
    """a at `ratio` samples per dimension: the curve of this K, interpolated in log ratio (held at
    its ends beyond them). None when the curve has no points for K."""
    row = sorted((p['ratio'], p['a']) for p in curve if p['K'] == K)
    if not row or ratio <= 0:
        return None
    x, a = zip(*row, strict=True)
    return float(np.interp(math.log(ratio), np.log(x), a))


def predicted_accuracy(z, y, K, layout, curve):
    """({dim: predicted a_train}, {dim: effective dimension}) for features z (n, D) with class
    labels y: one prediction per head (each class's samples under per-class heads), weighted by
    the samples it scores; the dimensions averaged over the heads."""
    z = standardized(z)
    groups = (
        [y == c for c in y.unique()] if layout == 'per-class' else [torch.ones_like(y, dtype=bool)]
    )
    heads = [(int(rows.sum()), effective_dims(z[rows])) for rows in groups]  # one SVD per head
    predicted = {
        dim: sum(n * predict(curve, K, n / max(d[dim], 1e-9)) for n, d in heads) / len(y)
        for dim in DIMS
    }
    dims = {dim: sum(d[dim] for _, d in heads) / len(heads) for dim in DIMS}
    return predicted, dims


# --- trained networks -------------------------------------------------------------------------


def metric_mode(config):
    """Whether f never sees r: no positive control and no unlearning term."""
    return not config.get('memorize') and config.get('unlearn', 'none') == 'none'


def explain_run(run_dir, curve, device='auto', loaded=None):
    """One run folder: at every tap, its effective dimensions, the predicted a_train for each, and
    the measured a_train and a_fresh of its probe.json, on as many training samples as the probe
    fitted. loaded: load_run's answer, if the caller has it already."""
    from extensions.probe.probe import load_run  # the run's data and network, as it trained

    with open(os.path.join(run_dir, 'probe.json')) as f:
        probe = json.load(f)
    cfg, data, model, _, dev = loaded or load_run(run_dir, device)
    n = probe['n']
    keep = torch.randperm(
        len(data.train_y), generator=torch.Generator().manual_seed(cfg.label_seed)
    )[:n]
    feats = tap_features(model, data.train_x[keep], data.mean, data.std, dev)
    y = data.train_y[keep]
    taps = {}
    for tap, z in feats.items():
        measured = probe['taps'][tap]
        pred, dims = predicted_accuracy(z.cpu(), y, cfg.random_labels, cfg.rlp_head, curve)
        taps[tap] = {
            'dims': dims,
            'predicted': pred,
            'a_train': measured['a_train'],
            'a_fresh': measured['a_fresh'],
        }
    return {
        'run': run_dir,
        'metric_mode': metric_mode(vars(cfg)),
        'n': n,
        'layout': cfg.rlp_head,
        'taps': taps,
    }


def residuals(runs, target='a_train'):
    """{tap: {dim: {'residual_mean', 'residual_abs_mean', 'residual_max', 'networks'}}} over the
    metric-mode runs, in points (measured - predicted)."""
    out = {}
    for run in (r for r in runs if r['metric_mode']):
        for tap, t in run['taps'].items():
            for dim in DIMS:
                out.setdefault(tap, {}).setdefault(dim, []).append(
                    100 * (t[target] - t['predicted'][dim])
                )
    return {
        tap: {
            dim: {
                'residual_mean': float(np.mean(r)),
                'residual_abs_mean': float(np.mean(np.abs(r))),
                'residual_max': float(np.max(np.abs(r))),
                'networks': len(r),
            }
            for dim, r in by_dim.items()
        }
        for tap, by_dim in out.items()
    }


def best_dim(summary):
    """The effective dimension with the smallest mean absolute residual over every tap."""
    score = {dim: np.mean([s[dim]['residual_abs_mean'] for s in summary.values()]) for dim in DIMS}
    return min(score, key=score.get)


def sentence(summary, what='a_train'):
    """What the residuals show, computed from them."""
    dim = best_dim(summary)
    worst = max(s[dim]['residual_max'] for s in summary.values())
    mean_abs = np.mean([s[dim]['residual_abs_mean'] for s in summary.values()])
    networks = max(s[dim]['networks'] for s in summary.values())
    others = ', '.join(
        f'{NAMES[d]} {np.mean([s[d]["residual_abs_mean"] for s in summary.values()]):.1f}'
        for d in DIMS
        if d != dim
    )
    return (
        f'Over {networks} metric-mode networks and {len(summary)} taps, the capacity curve at the '
        f"features' {NAMES[dim]} predicts {what} within {worst:.1f} points (mean |residual| "
        f'{mean_abs:.1f}; at the {others}).'
    )


NAMES = {'width': 'nominal width D', 'rank': 'numerical rank', 'pr': 'participation ratio'}


# --- figure and report -------------------------------------------------------------------------


def figure(folder, runs, curve, name='explain.png'):
    """Left: the capacity curves. Right: predicted (best dimension) against measured a_train."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for K in sorted({p['K'] for p in curve}):
        row = sorted((p['ratio'], 100 * p['a']) for p in curve if p['K'] == K)
        left.plot(*zip(*row, strict=True), 'o-', ms=3, label=f'Gaussian features, K = {K}')
    left.axvline(2, color='gray', ls=':', label='Cover: n = 2D')
    left.set(xscale='log', xlabel='samples per dimension n / D', ylabel='random-label accuracy (%)')
    left.set_title('capacity curve of a fresh linear head')
    dim = best_dim(residuals(runs)) if any(r['metric_mode'] for r in runs) else 'rank'
    for mode, marker, label in ((True, 'o', 'metric mode'), (False, 'x', 'memorize / unlearning')):
        pts = [
            (100 * t['predicted'][dim], 100 * t['a_train'])
            for r in runs
            if r['metric_mode'] == mode
            for t in r['taps'].values()
        ]
        if pts:
            right.plot(*zip(*pts, strict=True), marker, ms=4, ls='none', alpha=0.7, label=label)
    lo, hi = right.get_xlim()
    right.plot([lo, hi], [lo, hi], 'k-', lw=0.8, label='identity')
    right.set(xlabel=f'predicted from n / {NAMES[dim]} (%)', ylabel='measured a_train (%)')
    right.set_title('every network and tap')
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save(fig, folder, name)


def table(summary):
    """One row per tap and dimension: the residuals' mean, mean |.| and max |.| in points."""
    lines = ['| tap | D_eff | networks | mean residual | mean abs. residual | max abs. residual |']
    lines.append('| --- | --- | ---: | ---: | ---: | ---: |')
    for tap, by_dim in summary.items():
        for dim, s in by_dim.items():
            lines.append(
                f'| {tap} | {dim} | {s["networks"]} | {s["residual_mean"]:+.1f} | '
                f'{s["residual_abs_mean"]:.1f} | {s["residual_max"]:.1f} |'
            )
    return '\n'.join(lines)


def runs_in(folders):
    """Every finished run folder (probe.json and checkpoint.pt) under the given study folders."""
    found = []
    for folder in folders:
        for probe in sorted(glob.glob(os.path.join(folder, '**', 'probe.json'), recursive=True)):
            run = os.path.dirname(probe)
            if os.path.exists(os.path.join(run, 'checkpoint.pt')):
                found.append(run)
    return found


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('folders', nargs='+', help='study folders (results/quick ...)')
    p.add_argument('--out', default='results/explain', help='explain.json, report.md, explain.png')
    args = p.parse_args(argv)
    runs_found = runs_in(args.folders)
    if not runs_found:
        p.error(f'no finished run (probe.json and checkpoint.pt) under {" ".join(args.folders)}')
    curve = capacity_curve()
    runs, skipped = [], []
    for run in runs_found:
        try:
            runs.append(explain_run(run, curve))
        except RuntimeError as e:  # a network with extra modules (LIMIT's): not model.Net's
            skipped.append(f'{run} ({str(e).splitlines()[0]})')
            print(f'skipped: {skipped[-1]}')
            continue
        print(
            f'{run}: '
            + ' '.join(
                f'{tap} {100 * t["a_train"]:.1f}/{100 * t["predicted"]["rank"]:.1f}'
                for tap, t in runs[-1]['taps'].items()
            )
        )
    summary = {target: residuals(runs, target) for target in ('a_train', 'a_fresh')}
    os.makedirs(args.out, exist_ok=True)
    result = {
        'curve': curve,
        'runs': runs,
        'residuals': summary,
        'best_dim': best_dim(summary['a_train']),
    }
    with open(os.path.join(args.out, 'explain.json'), 'w') as f:
        json.dump(result, f, indent=1)
    figure(args.out, runs, curve)
    metric = sum(r['metric_mode'] for r in runs)
    text = [
        '# Predicting the random-label accuracy from n, K and the effective dimension',
        '',
        f'Runs: {len(runs)} from {", ".join(args.folders)} ({metric} in metric mode).',
        '',
        '![curve and prediction](explain.png)',
        '',
    ]
    if skipped:
        text += ["Skipped (their checkpoint is not model.Net's): " + '; '.join(skipped), '']
    for target in ('a_train', 'a_fresh'):
        text += [f'## {target}: measured − predicted (points)', '', table(summary[target]), '']
        text += [sentence(summary[target], target), '']
    with open(os.path.join(args.out, 'report.md'), 'w') as f:
        f.write('\n'.join(text))
    print('\n'.join(text))


if __name__ == '__main__':
    main()
