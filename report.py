"""Turn a folder of runs into the papers' tables and figures: python report.py results/quick

Reads DIR/<run>/seed<N>/results.json (and probe.json) as written by train.py and metrics.py, and
writes DIR/report.md with PNG figures beside it, for the four studies of the papers:
  1. memorization during training (Becker & Risse 2024): accuracies and random-label accuracy per
     epoch;
  2. regularizers against memorization (Becker & Risse 2024);
  3. where memorization lives: random-label accuracy per tap (Becker et al. 2026);
  4. unlearning: online and probed random-label accuracy and test accuracy against λ (both papers).
With several seeds every number is mean ± std over n seeds. Numbers are from the last epoch, never
the best.
"""

import argparse
import glob
import json
import os
import statistics

import matplotlib

matplotlib.use('Agg')  # headless: no display needed
import matplotlib.pyplot as plt  # noqa: E402

from metrics import wilson_interval  # noqa: E402

REGULARIZERS = ['none', 'wd', 'dropout', 'augment', 'smoothing', 'all']
REGULARIZER_NAMES = {
    'none': 'none',
    'wd': 'weight decay 5e-4',
    'dropout': 'dropout 0.3',
    'augment': 'crop + flip',
    'smoothing': 'label smoothing 0.1',
    'all': 'all together',
}


def load_runs(folder):
    """{run name: [results of each seed, with 'probe' added where probed]}."""
    runs = {}
    for path in sorted(glob.glob(os.path.join(folder, '*', 'seed*', 'results.json'))):
        with open(path) as f:
            result = json.load(f)
        probe_path = os.path.join(os.path.dirname(path), 'probe.json')
        if os.path.exists(probe_path):
            with open(probe_path) as f:
                result['probe'] = json.load(f)
        runs.setdefault(path.split(os.sep)[-3], []).append(result)
    return runs


def values(seeds, get):
    """get(result) over the seeds that finished; diverged seeds are skipped."""
    return [get(r) for r in seeds if r['status'] == 'done' and (get(r) is not None)]


def fmt(xs, percent=True):
    """mean ± std (n) of a list, as percent by default; '—' when empty."""
    if not xs:
        return '—'
    scale, unit = (100, '%') if percent else (1, '')
    mean = f'{scale * statistics.mean(xs):.1f}{unit}' if percent else f'{statistics.mean(xs):.3f}'
    return mean if len(xs) == 1 else f'{mean} ± {scale * statistics.stdev(xs):.1f} (n={len(xs)})'


def mean(xs):
    return statistics.mean(xs) if xs else float('nan')


def error_bar(acc, n):
    """Half-width of the 95% Wilson interval around acc, in percent (for matplotlib's yerr/xerr)."""
    lo, hi = wilson_interval(acc, n) if acc == acc else (acc, acc)
    return [[100 * (acc - lo)], [100 * (hi - acc)]]


def status(seeds):
    bad = [r for r in seeds if r['status'] != 'done']
    return (
        'done'
        if not bad
        else f'**diverged** in epoch {bad[0]["diverged"]["epoch"]} ({len(bad)}/{len(seeds)} seeds)'
    )


def save(fig, folder, name):
    path = os.path.join(folder, name)
    fig.tight_layout()
    fig.savefig(path + '.tmp.png', dpi=120)
    os.replace(path + '.tmp.png', path)  # atomic: a half-written figure is never left in place
    plt.close(fig)
    return f'![{name}]({name})'


def training_curves(runs, folder):
    seeds = runs['none']
    history = seeds[0]['history']
    epochs = [h['epoch'] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (('train_acc', 'train (online)'), ('test_acc', 'test')):
        left.plot(epochs, [100 * h[key] for h in history], label=label)
    left.set(xlabel='epoch', ylabel='class accuracy (%)', title='class labels')
    for tap in history[0]['rand_acc']:
        right.plot(epochs, [100 * h['rand_acc'][tap] for h in history], label=f'train, {tap}')
    right.plot(
        epochs,
        [100 * h['rand_acc_test']['penultimate'] for h in history],
        'k--',
        label='test, penultimate (chance check)',
    )
    right.axhline(
        100 / seeds[0]['config']['random_labels'], color='gray', lw=0.8, label='chance 1/K'
    )
    right.set(
        xlabel='epoch', ylabel='random-label accuracy (%)', title='random labels (online heads)'
    )
    for ax in (left, right):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return save(fig, folder, 'training.png')


def regularizer_table(runs, folder):
    rows = [
        '| regularizer | test acc | generalization gap | random-label acc (train) | complexity ĉ '
        '| random-label acc (test, chance check) | status |',
        '|---|---|---|---|---|---|---|',
    ]
    points = []
    for name in [r for r in REGULARIZERS if r in runs]:
        seeds = runs[name]
        test = values(seeds, lambda r: r['final']['test_acc'])
        rand = values(seeds, lambda r: r['final']['rand_acc']['penultimate'])
        gap = values(seeds, lambda r: r['final']['gen_gap'])
        complexity = values(seeds, lambda r: r['final']['complexity']['penultimate'])
        rand_test = values(seeds, lambda r: r['final']['rand_acc_test']['penultimate'])
        rows.append(
            f'| {REGULARIZER_NAMES[name]} | {fmt(test)} | {fmt(gap)} | {fmt(rand)} '
            f'| {fmt(complexity, percent=False)} | {fmt(rand_test)} | {status(seeds)} |'
        )
        points.append((REGULARIZER_NAMES[name], mean(test), mean(rand)))
    n = runs['none'][0]['data']['n_train']
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, test, rand in points:
        ax.errorbar(
            100 * rand, 100 * test, xerr=error_bar(rand, n), fmt='o', capsize=3, label=label
        )
    ax.set(
        xlabel='random-label accuracy, train, penultimate (%, 95% interval)',
        ylabel='class test accuracy (%)',
        title='regularizers: memorization vs. generalization',
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return '\n'.join(rows), save(fig, folder, 'regularizers.png')


def depth_table(runs, folder):
    present = [r for r in ('none', 'all') if r in runs]
    taps = list(runs[present[0]][0]['final']['rand_acc'])
    capacity = runs[present[0]][0]['final']['head_capacity']
    rows = [
        '| tap | D (2D: Cover capacity) | samples per head '
        '| probe at initialization (capacity floor) | '
        + ' | '.join(
            f'{REGULARIZER_NAMES[r]}: online head | {REGULARIZER_NAMES[r]}: probe' for r in present
        )
        + ' |',
        '|---|---|---|---|' + '---|---|' * len(present),
    ]

    def floor(t):
        return fmt(
            values(
                runs['none'],
                lambda x: x.get('probe', {}).get('at_init', {}).get('rand_acc', {}).get(t),
            )
        )

    n = runs[present[0]][0]['data']['n_train']

    def bars(accs):  # (2, taps)
        return [sum(e, []) for e in zip(*(error_bar(a, n) for a in accs), strict=True)]

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for run in present:
        online = [mean(values(runs[run], lambda r, t=t: r['final']['rand_acc'][t])) for t in taps]
        probed = [
            mean(values(runs[run], lambda r, t=t: r.get('probe', {}).get('rand_acc', {}).get(t)))
            for t in taps
        ]
        ax.errorbar(
            range(len(taps)),
            [100 * a for a in online],
            yerr=bars(online),
            fmt='o-',
            capsize=3,
            label=f'{REGULARIZER_NAMES[run]}, online head',
        )
        if any(p == p for p in probed):  # not all NaN
            ax.errorbar(
                range(len(taps)),
                [100 * a for a in probed],
                yerr=bars(probed),
                fmt='s--',
                capsize=3,
                label=f'{REGULARIZER_NAMES[run]}, fresh probe',
            )
    for t in taps:
        cells = ' | '.join(
            f'{fmt(values(runs[r], lambda x, t=t: x["final"]["rand_acc"][t]))} | '
            f'{fmt(values(runs[r], lambda x, t=t: x.get("probe", {}).get("rand_acc", {}).get(t)))}'
            for r in present
        )
        rows.append(
            f'| {t} | {capacity[t]["dim"]} ({capacity[t]["cover_2d"]}) '
            f'| {capacity[t]["samples_per_head"]:.0f} | {floor(t)} | {cells} |'
        )
    floors = [
        mean(
            values(
                runs['none'],
                lambda r, t=t: r.get('probe', {}).get('at_init', {}).get('rand_acc', {}).get(t),
            )
        )
        for t in taps
    ]
    ax.plot(
        range(len(taps)),
        [100 * a for a in floors],
        'x:',
        color='gray',
        label='probe at initialization (capacity floor)',
    )
    ax.axhline(
        100 / runs[present[0]][0]['config']['random_labels'],
        color='gray',
        lw=0.8,
        label='chance 1/K',
    )
    ax.set_xticks(range(len(taps)), taps)
    ax.set(
        xlabel='tap (input side → output side)',
        ylabel='random-label accuracy, train (%, 95% interval)',
        title='memorization by depth',
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return '\n'.join(rows), save(fig, folder, 'depth.png')


def unlearning(runs, folder, mechanism):
    """λ sweep of one mechanism; λ = 0 is the unregularized run `none`."""
    sweep = [(0.0, 'none')] + sorted(
        (float(n.split('-', 1)[1]), n) for n in runs if n.startswith(mechanism + '-')
    )
    rows = [
        '| λ | random-label acc, online head | random-label acc, fresh probe '
        '| probe on test (chance check) | test acc | status |',
        '|---|---|---|---|---|---|',
    ]
    curves = {'online head': [], 'fresh probe': [], 'test accuracy': []}
    for lam, name in sweep:
        seeds = runs[name]
        online = values(seeds, lambda r: r['final']['rand_acc']['penultimate'])
        probed = values(seeds, lambda r: r.get('probe', {}).get('rand_acc', {}).get('penultimate'))
        test = values(seeds, lambda r: r['final']['test_acc'])
        probed_test = values(
            seeds, lambda r: r.get('probe', {}).get('rand_acc_test', {}).get('penultimate')
        )
        rows.append(
            f'| {lam:g} | {fmt(online)} | {fmt(probed)} | {fmt(probed_test)} '
            f'| {fmt(test)} | {status(seeds)} |'
        )
        for key, xs in zip(curves, (online, probed, test), strict=True):
            curves[key].append(mean(xs))
    floor = mean(
        values(
            runs['none'],
            lambda r: r.get('probe', {}).get('at_init', {}).get('rand_acc', {}).get('penultimate'),
        )
    )
    fig, ax = plt.subplots(figsize=(6, 4.5))
    x = range(len(sweep))
    ax.axhline(100 * floor, color='gray', ls=':', label='probe at initialization (capacity floor)')
    for (label, ys), style in zip(curves.items(), ('o-', 's--', '^:'), strict=True):
        ax.plot(x, [100 * y for y in ys], style, label=label)
    for i, (_, name) in enumerate(sweep):
        if any(r['status'] != 'done' for r in runs[name]):
            ax.axvline(
                i,
                color='red',
                alpha=0.3,
                lw=6,
                label='diverged' if 'diverged' not in ax.get_legend_handles_labels()[1] else None,
            )
    ax.axhline(
        100 / runs['none'][0]['config']['random_labels'], color='gray', lw=0.8, label='chance 1/K'
    )
    ax.set_xticks(list(x), [f'{lam:g}' for lam, _ in sweep])
    method = 'gradient reversal' if mechanism == 'grl' else 'the output regularizer'
    ax.set(
        xlabel=f'λ ({mechanism}, log grid; 0 = no unlearning)',
        ylabel='accuracy (%)',
        title=f'unlearning with {method}',
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    rows.append(
        '\nCapacity floor: a fresh probe on the network at initialization reads '
        f'{fmt([floor] if floor == floor else [])} at the penultimate tap.'
    )
    return '\n'.join(rows), save(fig, folder, f'unlearning-{mechanism}.png')


def report(folder):
    runs = load_runs(folder)
    assert 'none' in runs, (
        f'{folder} has no run "none" (the unregularized baseline): nothing to report'
    )
    first = runs['none'][0]
    seeds = sorted({r['config']['seed'] for rs in runs.values() for r in rs})
    minutes = sum(h['seconds'] for rs in runs.values() for r in rs for h in r['history']) / 60
    cfg, data = first['config'], first.get('data', {})
    dataset = cfg['dataset'] + (
        f' shaped like {cfg["fake_like"]}' if cfg['dataset'] == 'fake' else ''
    )
    parts = [
        f'# Random-label memorization study: `{folder}`',
        f'Model **{cfg["model"]}**, data **{dataset}** '
        f'({data.get("n_train", "?")} training / {data.get("n_test", "?")} test images, '
        f'{data.get("num_classes", "?")} classes), **{cfg["epochs"]}** epochs, '
        f'seeds {seeds} (n={len(seeds)}), '
        f'K = {cfg["random_labels"]} random labels, `{cfg["rlp_head"]}` heads, '
        f'on {first["env"]["device"]} (torch {first["env"]["torch"]}). '
        f'{sum(map(len, runs.values()))} runs, {minutes:.1f} minutes of training in all.',
        'Random-label accuracy is measured on the *training* set (eval mode, no augmentation); '
        'chance is 1/K. On held-out test samples it must sit at chance. '
        'The complexity ĉ = (a − 1/K)/(1 − 1/K) is 0 at chance and 1 for perfect memorization. '
        '"Fresh probe": a new head fitted on the frozen final network (metrics.py).',
        '## 1. Memorization during training (unregularized run)',
        training_curves(runs, folder),
    ]
    table, fig = regularizer_table(runs, folder)
    parts += [
        '## 2. Regularizers',
        'Each regularizer alone and all together, random-label heads at the penultimate tap. '
        'Test accuracy and random-label accuracy from the last epoch; '
        'generalization gap = train − test accuracy.',
        table,
        fig,
    ]
    table, fig = depth_table(runs, folder)
    parts += [
        '## 3. Where memorization lives',
        'Random-label accuracy per tap. A linear head on D features can fit about 2D '
        'random binary labels whatever the network memorized (Cover 1965): '
        'trust a tap when samples per head ≫ 2D.',
        table,
        fig,
    ]
    for mechanism in ('grl', 'reg'):
        if any(n.startswith(mechanism + '-') for n in runs):
            table, fig = unlearning(runs, folder, mechanism)
            parts += [
                f'## 4{"ab"[mechanism == "reg"]}. Unlearning with `--unlearn {mechanism}`',
                'Online head: the head trained alongside the network. '
                'Fresh probe: a new head fitted on the frozen final network. '
                'Online at or below chance while the probe stays high means the information is '
                'hidden, not removed.',
                table,
                fig,
            ]
    path = os.path.join(folder, 'report.md')
    with open(path + '.tmp', 'w') as f:
        f.write('\n\n'.join(parts) + '\n')
    os.replace(path + '.tmp', path)
    print(f'wrote {path}')


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('folder')
    report(parser.parse_args().folder)
