"""Does the random-label metric measure memorization? Dose-response against an independent measure.

    make validate          (trains and probes every network, then: python validate.py DIR)

Each setting (label noise p, training-set size n) trains M networks with `train.py --half j` on
complementary random halves of one seeded pool of 2n training images, so every network sees n
images and every pool image is in exactly one network of each pair. The same networks give
  m      the memorization estimate a_train - a_heldout of fresh heads at every tap (probe.py,
         metrics.memorization), averaged over the M networks, with its controls, and
  mem    the leave-out memorization of Feldman & Zhang 2020 (metrics.feldman_zhang): how much
         more often a network classifies a pool image correctly when it trained on it.
The positive control (`train.py --memorize`, f trained on the random labels) must light m up. The
rank correlation of m and mem across settings and a verdict written from the numbers end it.

Capacity map: what a fresh head reads from features that learned nothing (the network at
initialization) against samples per head over D(K-1), and m against samples per head on networks
trained on clean and on fully random class labels and on the positive control, so a reader sees in
which regime a head reads anything beyond capacity.

Writes DIR/validation.json, DIR/capacity.json (cached), DIR/report.md and PNG figures.
"""

import dataclasses
import glob
import json
import math
import os
import statistics
import sys

import matplotlib

matplotlib.use('Agg')  # headless: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

import data as data_lib  # noqa: E402
import probe as probe_lib  # noqa: E402
import train as train_lib  # noqa: E402
from metrics import (  # noqa: E402
    complexity,
    evaluate,
    feldman_zhang,
    fit_heads,
    interval_words,
    mean_and_error,
    memorization,
    spearman,
)
from report import save  # noqa: E402 (atomic PNG, as in the study report)

CAPACITY_SIZES = [125, 250, 500, 1000, 2000, 4000]  # samples per head at initialization
CAPACITY_K = [2, 10]
CAPACITY_DRAWS = 4
TRAINED_SIZES = [64, 125, 250, 500, 1000, 2000]  # samples per head on trained networks


class ValidateError(Exception):
    """A folder that is not a finished validation study: one line, exit code 2."""


def load_runs(folder):
    """{setting: [(run dir, results, probe)]} of finished networks, settings in order."""
    settings = {}
    for path in sorted(glob.glob(os.path.join(folder, '*', 'half*', 'results.json'))):
        run_dir = os.path.dirname(path)
        with open(path) as f:
            results = json.load(f)
        probe_path = os.path.join(run_dir, 'probe.json')
        if not os.path.exists(probe_path):
            raise ValidateError(f'{run_dir} has no probe.json; run make validate')
        with open(probe_path) as f:
            probe = json.load(f)
        settings.setdefault(os.path.basename(os.path.dirname(run_dir)), []).append(
            (run_dir, results, probe)
        )
    return settings


def run_config(results, **changes):
    cfg = train_lib.build_parser().parse_args([])
    vars(cfg).update(results['config'], **changes)
    return cfg


def network(cfg, data, device, run_dir=None):
    """The run's network: trained (from its checkpoint) or, without run_dir, at initialization."""
    model = train_lib.build_model(cfg, data, device)
    if run_dir is not None:
        ckpt = torch.load(os.path.join(run_dir, 'checkpoint.pt'), map_location=device)
        model.load_state_dict(ckpt['model'])
    return model.eval()


def tap_features(model, images, data, device):
    """Pooled features {tap: (N, D)} of uint8 images through a run's own taps, as probe.py sees
    them (normalized as in training, in batches)."""
    unlabelled = TensorDataset(images, torch.zeros(len(images), dtype=torch.long))
    transform = probe_lib.normalize(data.mean, data.std)
    return probe_lib.features(model.features, unlabelled, device, transform, batch_size=512)[0]


def leave_out(runs, device):
    """Feldman & Zhang's memorization of one setting's networks, over the whole pool. Each
    network's membership is the training set it loaded itself, and it sees the pool normalized as
    it was trained."""
    cfg = run_config(runs[0][1], half=None, device='cpu')
    pool = train_lib.load_data(cfg)  # the 2n images, labels after noise, noisy mask
    correct, member = [], []
    for run_dir, results, _ in runs:
        own = train_lib.load_data(run_config(results, device='cpu'))
        model = network(cfg, pool, device, run_dir)
        seen_as_trained = dataclasses.replace(pool, mean=own.mean, std=own.std)
        loader = train_lib.eval_loader(seen_as_trained, 'train', device)
        correct.append(evaluate(model, loader, cfg)['correct'])
        member.append(torch.isin(pool.train_index, own.train_index))
    per_pair = feldman_zhang(torch.stack(correct), torch.stack(member))
    mean, error = mean_and_error(per_pair)
    noisy_mean, noisy_error = mean_and_error(per_pair, pool.train_noisy)
    return {
        'fz_memorization': mean,
        'fz_memorization_se': error,
        'fz_memorization_noisy': noisy_mean,
        'fz_memorization_noisy_se': noisy_error,
        'fz_models': len(runs),
    }


def combine(probes):
    """Per tap: the networks' mean controls and m, whose interval combines their errors."""
    taps = {}
    for tap in probes[0]['taps']:
        rows = [p['taps'][tap] for p in probes]
        mean = {k: statistics.mean(r[k] for r in rows) for k in ('a_train', 'a_heldout', 'a_init')}
        m = statistics.mean(r['memorization'] for r in rows)
        se = math.sqrt(sum(r['memorization_se'] ** 2 for r in rows)) / len(rows)
        online = [r['online'] for r in rows if r['online'] is not None]
        taps[tap] = {
            **mean,
            'a_fresh': statistics.mean(r['a_fresh'] for r in rows),
            'memorization': m,
            'memorization_ci': [m - 1.96 * se, m + 1.96 * se],
            'online': statistics.mean(online) if online else None,
            'dim': rows[0]['dim'],
            'samples_per_head': rows[0]['samples_per_head'],
            'converged': all(r['converged'] for r in rows),
        }
    return taps


def setting_row(name, runs, device):
    results = [r for _, r, _ in runs]
    cfg = results[0]['config']
    finals = [r['final'] for r in results]
    noisy = [f['train_acc_noisy'] for f in finals if f['train_acc_noisy'] is not None]
    return {
        'name': name,
        'label_noise': cfg['label_noise'],
        'subset': results[0]['data']['n_train'],  # images each network trains on
        'train_acc': statistics.mean(f['train_acc'] for f in finals),
        'train_acc_noisy': statistics.mean(noisy) if noisy else None,
        'test_acc': statistics.mean(f['test_acc'] for f in finals),
        'taps': combine([p for _, _, p in runs]),
        **leave_out(runs, device),
    }


def capacity_map(folder, clean, random_labels, memorized, device):
    """Fresh-head decodability against samples per head: at initialization (features that learned
    nothing) for every tap and K; and m against samples per head on networks trained on clean
    and on fully random class labels and on the positive control. Cached in DIR/capacity.json."""
    path = os.path.join(folder, 'capacity.json')
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    ntw = [
        ('clean labels', clean),
        ('random class labels', random_labels),
        ('positive control', memorized),
    ]
    cfg = run_config(clean[1], half=None, subset=None, device='cpu')
    everything = train_lib.load_data(cfg)  # all training images: any of them serve at init
    init = network(run_config(clean[1], device='cpu'), everything, device)
    images = everything.train_x[
        probe_lib.subsample(len(everything.train_y), max(CAPACITY_SIZES), 1)
    ]
    feats = tap_features(init, images, everything, device)
    g = torch.Generator().manual_seed(probe_lib.PROBE_SEED)
    at_init = []
    for tap, z in feats.items():
        for K in CAPACITY_K:
            for n in CAPACITY_SIZES:
                labels = torch.randint(K, (CAPACITY_DRAWS, n), generator=g).to(device)
                fit = fit_heads(z[:n], None, labels, K, 1, 'shared')
                acc = fit.accuracy.mean().item()
                at_init.append(
                    {
                        'tap': tap,
                        'dim': z.shape[1],
                        'K': K,
                        'n': n,
                        'a': acc,
                        'c': complexity(acc, K),
                        'converged': fit.converged,
                    }
                )
    trained = {name: trained_curve(run_dir, results, device) for name, (run_dir, results, _) in ntw}
    out = {'at_init': at_init, 'trained': trained}
    train_lib.write_json(path, out)
    return out


def trained_curve(run_dir, results, device):
    """m = a_train - a_heldout with its interval at the penultimate tap, K = 2, on nested seeded
    subsamples of one network's training and held-out samples: does m appear near capacity?"""
    cfg = run_config(results, device='cpu')
    d = train_lib.load_data(cfg)
    model = network(cfg, d, device, run_dir)
    n_max = min(len(d.train_y), len(d.heldout_y))
    z, r = {}, {}
    for split in ('train', 'heldout'):
        x, labels = getattr(d, f'{split}_x'), getattr(d, f'{split}_r')
        keep = probe_lib.subsample(len(labels), n_max, probe_lib.PROBE_SEED)
        z[split] = tap_features(model, x[keep], d, device)['penultimate']
        r[split] = labels[keep].to(device)
    g = torch.Generator().manual_seed(probe_lib.PROBE_SEED + 1)
    points = []
    for n in [s for s in TRAINED_SIZES if s <= n_max]:
        fresh = torch.randint(2, (probe_lib.DRAWS, n), generator=g).to(device)
        train, heldout = ((z[s][:n], None, r[s][:n]) for s in ('train', 'heldout'))
        est = memorization(train, heldout, train, 2, 1, 'shared', fresh)
        keys = ('a_train', 'a_heldout', 'memorization', 'memorization_ci', 'converged')
        points.append({'n': n, 'dim': z['train'].shape[1], **{k: est[k] for k in keys}})
    return points


def verdict(settings, control):
    """One sentence from the numbers."""
    tap = 'penultimate'
    fz = [s['fz_memorization'] for s in settings]
    zero = [
        s['taps'][tap]['memorization_ci'][0] <= 0 <= s['taps'][tap]['memorization_ci'][1]
        for s in settings
    ]
    lit = control['taps'][tap]['memorization_ci'][0] > 0
    m_range = [100 * s['taps'][tap]['memorization'] for s in settings]
    text = (
        f'Leave-out memorization ranges from {min(fz):.2f} to {max(fz):.2f} across the '
        f'{len(settings)} settings, while m at the penultimate tap stays between '
        f'{min(m_range):+.1f} and {max(m_range):+.1f} points and its interval holds 0 in '
        f'{sum(zero)} of {len(settings)} settings; '
    )
    if lit:
        gain = 100 * control['taps'][tap]['memorization']
        text += f'the positive control reads {gain:+.1f} points, so the instrument can see r. '
    else:
        text += 'the positive control does NOT light up, so the instrument is not working. '
    if all(zero) and lit:
        text += (
            'With stop-gradient heads, the random-label accuracy of a trained network does not '
            "measure its memorization of the class labels here: it reads the head's capacity."
        )
    elif lit:
        text += 'm departs from 0 in some settings: read the table for where.'
    return text


def spearman_critical(n):
    """|ρ| beyond which Spearman's ρ of n points differs from 0 (two-sided 5%): exact values for
    small n (Zar 1972), else the normal approximation."""
    exact = {4: 1.0, 5: 1.0, 6: 0.886, 7: 0.786, 8: 0.738, 9: 0.700, 10: 0.648}
    return exact.get(n, 1.96 / math.sqrt(max(n - 1, 1)))


def fmt(x, scale=100, digits=1, sign=False):
    if x is None:
        return '—'
    return f'{scale * x:+.{digits}f}' if sign else f'{scale * x:.{digits}f}'


def interval(t):
    lo, hi = t['memorization_ci']
    return f'{fmt(t["memorization"], sign=True)} [{fmt(lo, sign=True)}, {fmt(hi, sign=True)}]'


def words(t):
    return interval_words(*t['memorization_ci'])


def dose_response_figure(folder, settings, control, noise_n):
    """FZ memorization and m against label noise (at n = noise_n) and against n (other rows)."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex='col')
    by_noise = sorted(
        (s for s in settings if s['subset'] == noise_n), key=lambda s: s['label_noise']
    )
    sizes = sorted({s['subset'] for s in settings})
    size_noise = next((s['label_noise'] for s in settings if s['subset'] != noise_n), 0)
    by_size = sorted(
        (s for s in settings if s['label_noise'] == size_noise), key=lambda s: s['subset']
    )
    for col, (rows, key, label) in enumerate(
        (
            (by_noise, 'label_noise', f'label noise p (n = {noise_n})'),
            (by_size, 'subset', f'images per network n (p = {size_noise})'),
        )
    ):
        if not rows:  # a study without this axis (e.g. one setting)
            axes[0, col].set_axis_off()
            axes[1, col].set_axis_off()
            continue
        x = [s[key] for s in rows]
        top, bottom = axes[0, col], axes[1, col]
        for field, name in (('fz_memorization', 'all samples'), ('fz_memorization_noisy', 'noisy')):
            ys = [s[field] for s in rows]
            errs = [s[field + '_se'] or 0 for s in rows]
            if any(y is not None for y in ys):
                pts = [(a, b, e) for a, b, e in zip(x, ys, errs, strict=True) if b is not None]
                xs, y2, e2 = zip(*pts, strict=True)
                top.errorbar(xs, y2, yerr=e2, fmt='o-', capsize=3, label=f'leave-out, {name}')
        top.set(ylabel='leave-out memorization (F&Z)', title='independent measure')
        for tap in rows[0]['taps']:
            m = [100 * s['taps'][tap]['memorization'] for s in rows]
            lo = [100 * s['taps'][tap]['memorization_ci'][0] for s in rows]
            hi = [100 * s['taps'][tap]['memorization_ci'][1] for s in rows]
            line = bottom.plot(x, m, 'o-', label=f'm, {tap}')[0]
            bottom.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15)
        bottom.axhline(0, color='black', lw=0.8)
        pc = 100 * control['taps']['penultimate']['memorization']
        bottom.axhline(pc, color='red', ls='--', lw=1, label=f'positive control ({pc:+.0f})')
        bottom.set(
            xlabel=label,
            ylabel='m = a_train − a_heldout (points, 95% band)',
            title='random-label memorization estimate',
        )
        if key == 'subset':
            for ax in (top, bottom):
                ax.set_xscale('log')
                ax.set_xticks(sizes, [str(s) for s in sizes])
                ax.xaxis.set_minor_formatter(NullFormatter())  # no 3×10² between our ticks
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    return save(fig, folder, 'dose-response.png')


def capacity_figure(folder, capacity):
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    points = capacity['at_init']
    for tap in dict.fromkeys(p['tap'] for p in points):
        for K in CAPACITY_K:
            row = [p for p in points if p['tap'] == tap and p['K'] == K]
            x = [p['n'] / (p['dim'] * (K - 1)) for p in row]
            left.plot(x, [p['c'] for p in row], 'o-', label=f'{tap} (D = {row[0]["dim"]}), K = {K}')
    left.axvline(2, color='gray', ls=':', label='Cover: 2 samples per parameter')
    left.set(
        xscale='log',
        xlabel='samples per head / (D·(K − 1))',
        ylabel='chance-corrected decodability ĉ',
        title='at initialization (capacity floor)',
    )
    for name, row in capacity['trained'].items():
        x = [p['n'] / (2 * p['dim']) for p in row]
        line = right.plot(x, [100 * p['memorization'] for p in row], 'o-', label=name)[0]
        lo, hi = ([100 * p['memorization_ci'][i] for p in row] for i in (0, 1))
        right.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15)
    right.axhline(0, color='black', lw=0.8)
    right.axvline(1, color='gray', ls=':', label='Cover: 2D samples')
    right.set(
        xscale='log',
        xlabel='samples per head / 2D (K = 2, penultimate)',
        ylabel='m = a_train − a_heldout (points, 95% band)',
        title='trained networks: m against samples per head',
    )
    ticks = sorted({p['n'] / (2 * p['dim']) for row in capacity['trained'].values() for p in row})
    right.set_xticks(ticks, [f'{t:.2g}' for t in ticks])
    right.xaxis.set_minor_formatter(NullFormatter())
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save(fig, folder, 'capacity.png')


def capacity_sentence(capacity):
    """Where the floor falls to chance, and where a trained network's m leaves 0."""
    at_init = capacity['at_init']
    ratio = [p['n'] / (p['dim'] * (p['K'] - 1)) for p in at_init]
    low = [r for r, p in zip(ratio, at_init, strict=True) if p['c'] < 0.05]
    worst = max((p['c'] for r, p in zip(ratio, at_init, strict=True) if r >= 16), default=None)
    text = (
        f'At initialization a fresh head reads ĉ < 0.05 from '
        f'{f"{min(low):.0f}" if low else "no tested number of"} samples per parameter on'
        + (f', and at most ĉ = {worst:.2f} beyond 16. ' if worst is not None else '. ')
    )
    text += 'On trained networks (penultimate tap, K = 2): '
    for name, row in capacity['trained'].items():
        above = [f'{p["n"]}' for p in row if p['memorization_ci'][0] > 0]
        text += (
            f'{name}, m above 0 at n = {", ".join(above)}; '
            if above
            else f'{name}, m holds 0 at every n from {row[0]["n"]} to {row[-1]["n"]}; '
        )
    return text.rstrip('; ') + '.'


def report(folder, device='cpu'):
    runs = load_runs(folder)
    controls = [name for name in runs if name.startswith('memorize')]
    if not controls or len(runs) < 2:
        missing = 'the positive control' if not controls else 'a setting'
        raise ValidateError(f'{folder} lacks {missing}; run make validate')
    control_runs = runs.pop(controls[0])
    device = torch.device(device)
    settings = [setting_row(name, group, device) for name, group in runs.items()]
    settings.sort(key=lambda s: (s['label_noise'], s['subset']))
    control = {'taps': combine([p for _, _, p in control_runs])}
    taps = list(control['taps'])
    rho = {
        t: spearman(
            [s['taps'][t]['memorization'] for s in settings],
            [s['fz_memorization'] for s in settings],
        )
        for t in taps
    }
    first = sorted((g[0] for g in runs.values()), key=lambda r: r[1]['config']['label_noise'])
    capacity = capacity_map(folder, first[0], first[-1], control_runs[0], device)
    sentence = verdict(settings, control)
    keys = ('a_train', 'a_heldout', 'a_init', 'memorization', 'memorization_ci')
    out = {
        'settings': [
            {
                'label_noise': s['label_noise'],
                'subset': s['subset'],
                'taps': {t: {k: v[k] for k in keys} for t, v in s['taps'].items()},
                **{k: s[k] for k in s if k.startswith('fz_')},
                'train_acc': s['train_acc'],
                'train_acc_noisy': s['train_acc_noisy'],
                'test_acc': s['test_acc'],
            }
            for s in settings
        ],
        'positive_control': {t: {k: v[k] for k in keys} for t, v in control['taps'].items()},
        'spearman': rho,
        'verdict': sentence,
    }
    train_lib.write_json(os.path.join(folder, 'validation.json'), out)
    noise_n = statistics.mode(s['subset'] for s in settings)
    text = markdown(folder, runs, settings, control, rho, capacity, sentence, noise_n)
    path = os.path.join(folder, 'report.md')
    with open(path + '.tmp', 'w') as f:
        f.write(text)
    os.replace(path + '.tmp', path)
    print(sentence)
    print(f'wrote {path} and {os.path.join(folder, "validation.json")}')
    return out


def markdown(folder, runs, settings, control, rho, capacity, sentence, noise_n):
    first = next(iter(runs.values()))[0][1]
    cfg, env = first['config'], first['env']
    minutes = (
        sum(h['seconds'] for group in runs.values() for _, r, _ in group for h in r['history']) / 60
    )
    tap = 'penultimate'
    lines = [
        f'# Validation of the random-label memorization estimate: `{folder}`',
        f'Model **{cfg["model"]}** on **{cfg["dataset"]}**, {cfg["epochs"]} epochs, batch '
        f'{cfg["batch_size"]}, lr {cfg["lr"]}, weight decay {cfg["weight_decay"]}, augmentation '
        f'{"on" if cfg["augment"] else "off"}; K = {cfg["random_labels"]} random labels, '
        f'`{cfg["rlp_head"]}` heads at every tap; {len(runs[next(iter(runs))])} networks per '
        f'setting on complementary halves of a pool of 2n images; on {env["device"]} (torch '
        f'{env["torch"]}), {minutes:.1f} minutes of training in all.',
        '**How to read it.** a_train: a fresh head fitted to convergence on the training '
        "samples' frozen features (the papers' number, probed); a_heldout: the same head on as "
        'many held-out samples with their own random labels; a_init: on the training samples '
        'through the untrained network (capacity floor); m = a_train − a_heldout with its 95% '
        'interval. Leave-out memorization (Feldman & Zhang 2020): mean over the pool of '
        'P[correct | trained on it] − P[correct | left out], ± its standard error over the '
        'complementary pairs. Accuracies in %.',
        '## 1. Dose-response: label noise and training-set size',
        '| setting | p | n | train acc (on noisy labels) | test acc | leave-out mem. | '
        'on noisy samples | a_train | a_heldout | a_init | online head | m [95%] | interval |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for s in settings:
        t = s['taps'][tap]
        fz = f'{s["fz_memorization"]:.3f} ± {s["fz_memorization_se"] or 0:.3f}'
        fz_noisy = (
            f'{s["fz_memorization_noisy"]:.3f} ± {s["fz_memorization_noisy_se"] or 0:.3f}'
            if s['fz_memorization_noisy'] is not None
            else '—'
        )
        lines.append(
            f'| {s["name"]} | {s["label_noise"]:g} | {s["subset"]} | {fmt(s["train_acc"])} '
            f'({fmt(s["train_acc_noisy"])}) | {fmt(s["test_acc"])} | {fz} | {fz_noisy} '
            f'| {fmt(t["a_train"])} | {fmt(t["a_heldout"])} | {fmt(t["a_init"])} '
            f'| {fmt(t["online"])} | {interval(t)} | {words(t)} |'
        )
    lines += [
        f'Penultimate tap (D = {settings[0]["taps"][tap]["dim"]}). m at every tap:',
        '| setting | ' + ' | '.join(settings[0]['taps']) + ' |',
        '|---|' + '---|' * len(settings[0]['taps']),
    ]
    for s in settings:
        cells = ' | '.join(f'{interval(t)}' for t in s['taps'].values())
        lines.append(f'| {s["name"]} | {cells} |')
    lines += [dose_response_figure(folder, settings, control, noise_n)]
    zero = sum(all(words(t) == 'holds 0' for t in s['taps'].values()) for s in settings)
    missed = [
        f'{s["name"]} {tap_name} {interval(t)}'
        for s in settings
        for tap_name, t in s['taps'].items()
        if words(t) != 'holds 0'
    ]
    total = sum(len(s['taps']) for s in settings)
    fz = [s['fz_memorization'] for s in settings]
    text = (
        f"**What it shows.** In {zero} of {len(settings)} settings m's interval holds 0 at every "
        f'tap, while the leave-out memorization goes from {min(fz):.2f} to {max(fz):.2f}.'
    )
    if missed:
        text += (
            f' {len(missed)} of {total} intervals {"excludes" if len(missed) == 1 else "exclude"}'
            ' 0 '
            f'({"; ".join(missed)}), against '
            f'{0.05 * total:.1f} expected by chance at 95%.'
        )
    lines.append(text)
    lines += [
        '## 2. Positive control (`--memorize`: f trained on the random labels)',
        '| tap | a_train | a_heldout | a_init | a_fresh | m [95%] | interval |',
        '|---|---|---|---|---|---|---|',
    ]
    for name, t in control['taps'].items():
        lines.append(
            f'| {name} | {fmt(t["a_train"])} | {fmt(t["a_heldout"])} | {fmt(t["a_init"])} '
            f'| {fmt(t["a_fresh"])} | {interval(t)} | {words(t)} |'
        )
    lit = [name for name, t in control['taps'].items() if words(t) == 'above 0']
    text = f'**What it shows.** m is above 0 at {", ".join(lit) if lit else "no tap"}'
    if lit:
        text += ': where the network was made to memorize r, the instrument reads it'
        same = [
            n
            for n in lit
            if abs(control['taps'][n]['a_fresh'] - control['taps'][n]['a_heldout']) < 0.02
        ]
        if same == lit:
            text += (
                ', and a_fresh (fresh labels on the same features) stays within 2 points of '
                'a_heldout: the features hold these labels, not more room for any labels'
            )
    lines.append(text + '.')
    lines += [
        '## 3. Rank correlation of m with leave-out memorization across settings',
        '| tap | Spearman ρ |',
        '|---|---|',
    ]
    lines += [f'| {t} | {"—" if r is None else f"{r:+.2f}"} |' for t, r in rho.items()]
    if len(settings) < 4:
        lines.append(f'**What it shows.** Nothing: {len(settings)} settings are too few to rank.')
    else:
        lines.append(
            f'**What it shows.** With {len(settings)} settings, |ρ| must exceed '
            f'{spearman_critical(len(settings)):.2f} to differ from 0 (two-sided, 5%); a ρ between '
            'm and the leave-out memorization means little where the intervals above say m did not '
            'move.'
        )
    lines += ['## 4. Capacity map', capacity_figure(folder, capacity)]
    lines.append(f'**What it shows.** {capacity_sentence(capacity)}')
    lines += ['## Verdict', sentence]
    return '\n\n'.join(lines) + '\n'


def main(argv=None):
    p = train_lib.Parser(prog='validate.py', description=__doc__.split('\n')[0])
    p.add_argument('folder', help='the validation study folder, e.g. results/validate')
    p.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'])
    args = p.parse_args(argv)
    if not os.path.isdir(args.folder):
        p.error(f'{args.folder} is not a folder; run make validate')
    cuda = args.device == 'cuda' or (args.device == 'auto' and torch.cuda.is_available())
    try:
        return report(args.folder, 'cuda' if cuda else 'cpu')
    except (data_lib.DataError, ValidateError) as e:
        print(f'validate.py: error: {e}', file=sys.stderr)
        sys.exit(2)


if __name__ == '__main__':
    main()
