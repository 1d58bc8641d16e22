"""The capacity map: what a fresh head reads from features that learned nothing, and near capacity.

A linear head fits random labels on any features up to about 2D per free logit (Cover 1965). At
initialization the network learned nothing, so what a fresh head reads there is capacity alone:
the map gives the chance-corrected ĉ against samples per parameter, n / (D(K - 1)), for every tap
and K. On trained networks (clean labels, fully random class labels, the positive control) it
gives m and a_train - a_fresh against samples per head: does anything appear near capacity?
"""

import torch
from matplotlib import pyplot as plt
from matplotlib.ticker import NullFormatter

from extensions.report.markdown import save
from metrics import complexity, controls, fit_heads, tap_features

SIZES = [125, 250, 500, 1000, 2000, 4000]  # samples per head, at initialization
KS = [2, 10]
DRAWS = 4
TRAINED_SIZES = [64, 125, 250, 500, 1000]  # samples per head, on trained networks


def at_init(init_model, images, data, device):
    """ĉ of fresh heads on the untrained network's features, every tap, K and size."""
    feats = tap_features(init_model, images, data.mean, data.std, device)
    g = torch.Generator().manual_seed(2)
    points = []
    for tap, z in feats.items():
        for K in KS:
            for n in SIZES:
                labels = torch.randint(K, (DRAWS, n), generator=g).to(device)
                a = fit_heads(z[:n], None, labels, K, 1, 'shared').accuracy.mean().item()
                points.append({'tap': tap, 'dim': z.shape[1], 'K': K, 'n': n, 'a': a})
                points[-1]['c'] = complexity(a, K)
    return points


def trained_curve(model, data, device):
    """m and a_train - a_fresh at the penultimate tap, K = 2, on nested subsamples of one
    network's training and held-out samples."""
    n_max = min(len(data.train_y), len(data.heldout_y))
    g = torch.Generator().manual_seed(3)
    sides = []
    for x, r in ((data.train_x, data.train_r), (data.heldout_x, data.heldout_r)):
        keep = torch.randperm(len(r), generator=g)[:n_max]
        z = tap_features(model, x[keep], data.mean, data.std, device)['penultimate']
        sides.append((z, r[keep].to(device)))
    points = []
    for n in [s for s in TRAINED_SIZES if s <= n_max]:
        (z, r), (z_held, r_held) = ((z[:n], r[:n]) for z, r in sides)
        found = controls((z, None, r), (z_held, None, r_held), (z, None, r), 2, 1, 'shared', seed=n)
        keys = ('a_train', 'a_fresh', 'a_heldout', 'memorization', 'memorization_ci', 'specific_ci')
        points.append({'n': n, 'dim': z.shape[1]} | {k: found[k] for k in keys})
    return points


def figure(folder, capacity):
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    points = capacity['at_init']
    for tap in dict.fromkeys(p['tap'] for p in points):
        for K in KS:
            row = [p for p in points if p['tap'] == tap and p['K'] == K]
            x = [p['n'] / (p['dim'] * (K - 1)) for p in row]
            left.plot(x, [p['c'] for p in row], 'o-', label=f'{tap} (D = {row[0]["dim"]}), K = {K}')
    left.axvline(2, color='gray', ls=':', label='Cover: 2 samples per parameter')
    left.set(xscale='log', xlabel='samples per head / (D·(K − 1))', ylabel='chance-corrected ĉ')
    left.set_title('at initialization (capacity floor)')
    for name, row in capacity['trained'].items():
        x = [p['n'] / (2 * p['dim']) for p in row]
        line = right.plot(x, [100 * p['memorization'] for p in row], 'o-', label=f'm, {name}')[0]
        lo, hi = ([100 * p['memorization_ci'][i] for p in row] for i in (0, 1))
        right.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15)
    right.axhline(0, color='black', lw=0.8)
    right.axvline(1, color='gray', ls=':', label='Cover: 2D samples')
    right.set(xscale='log', xlabel='samples per head / 2D (K = 2, penultimate)')
    right.set(ylabel='m = a_fresh − a_heldout (points)', title='trained networks')
    right.xaxis.set_minor_formatter(NullFormatter())
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save(fig, folder, 'capacity.png')


def sentence(capacity):
    """Where the floor falls to chance, and where a trained network's estimates leave 0."""
    points = capacity['at_init']
    low = [p['n'] / (p['dim'] * (p['K'] - 1)) for p in points if p['c'] < 0.05]
    text = ''
    if low:
        text = f'At initialization a fresh head reads ĉ < 0.05 from {min(low):.0f} samples per '
        text += 'parameter on. '
    for name, row in capacity['trained'].items():
        sizes = [p['n'] for p in row]
        lit = [p['n'] for p in row if p['memorization_ci'][0] > 0] or 'none'
        specific = [p['n'] for p in row if p['specific_ci'][0] > 0] or 'none'
        text += f'{name} (n = {sizes}): m above 0 at {lit}, a_train − a_fresh at {specific}. '
    return text.strip()
