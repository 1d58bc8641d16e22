"""Turn a folder of runs into the papers' tables and figures: python report.py results/quick

Reads DIR/<run>/seed<N>/results.json and probe.json (train.py, probe.py) and writes DIR/report.md
with PNG figures beside it, for the papers' four studies plus the positive control:
  1. memorization during training (Becker & Risse 2024);
  2. regularizers against memorization (Becker & Risse 2024);
  3. where memorization lives: every tap (Becker et al. 2026);
  4. unlearning: online head, fresh probe and test accuracy against λ (both papers);
  5. the positive control (ours): a network made to memorize r, which the probe must read.
Every random-label number stands beside its controls (held-out samples, the untrained network)
and the memorization estimate m = a_train - a_heldout with its 95% interval (metrics.py); each
section ends with a sentence computed from the numbers. With several seeds: mean ± std (n).
The last epoch is reported, never the best.
"""

import glob
import json
import os
import statistics
import sys

import matplotlib

matplotlib.use('Agg')  # headless: no display needed
import matplotlib.pyplot as plt  # noqa: E402

from metrics import interval_words, wilson_interval  # noqa: E402
from train import Parser  # noqa: E402

REGULARIZERS = ['none', 'wd', 'dropout', 'augment', 'smoothing', 'all']
NAMES = {
    'none': 'none',
    'wd': 'weight decay 5e-4',
    'dropout': 'dropout 0.3',
    'augment': 'crop + flip',
    'smoothing': 'label smoothing 0.1',
    'all': 'all together',
    'memorize': 'positive control',
}
# what a study varies between its runs: every other option must agree
STUDIED = {'weight_decay', 'augment', 'dropout', 'label_smoothing', 'unlearn', 'lam', 'memorize'}
STUDIED |= {'seed', 'out', 'device', 'compile', 'data_dir'}
TAP = 'penultimate'


class ReportError(Exception):
    """A folder report.py cannot read: one line on stderr, exit code 2."""


def load_runs(folder, seeds=None):
    """{run name: [results of each seed, with 'probe' added where probed]}."""
    if not os.path.isdir(folder):
        raise ReportError(f'{folder} is not a folder; give a study folder such as results/quick')
    if os.path.exists(os.path.join(folder, 'results.json')):
        raise ReportError(f'{folder} is one run; give its study folder (two levels up)')
    runs = {}
    for path in sorted(glob.glob(os.path.join(folder, '*', 'seed*', 'results.json'))):
        with open(path) as f:
            result = json.load(f)
        if seeds is not None and result['config']['seed'] not in seeds:
            continue
        probe_path = os.path.join(os.path.dirname(path), 'probe.json')
        if os.path.exists(probe_path):
            with open(probe_path) as f:
                result['probe'] = json.load(f)
        runs.setdefault(path.split(os.sep)[-3], []).append(result)
    if not runs:
        raise ReportError(f'{folder} holds no finished runs (<run>/seed<N>/results.json)')
    check_one_study(runs)
    if 'none' not in runs:
        raise ReportError(f'{folder} has no run "none" (the unregularized baseline)')
    if not done(runs['none']):
        raise ReportError(f'{folder}: the baseline run "none" diverged; nothing to compare with')
    return runs


def check_one_study(runs):
    """Refuse runs that differ in anything but the studied options and the seed."""
    configs = [(name, r['config']) for name, seeds in runs.items() for r in seeds]
    name0, first = configs[0]
    for name, config in configs[1:]:
        for key in sorted(set(first) | set(config)):
            if key not in STUDIED and first.get(key) != config.get(key):
                raise ReportError(
                    f'runs {name0} and {name} differ in --{key.replace("_", "-")} '
                    f'({first.get(key)} vs {config.get(key)}): one study per folder'
                )


def done(seeds):
    return [r for r in seeds if r['status'] == 'done']


def collapsed(result):
    """Class accuracy at chance: the run finished but learned nothing (e.g. too large a λ)."""
    classes = result['data']['num_classes']
    return result['status'] == 'done' and result['final']['test_acc'] < 1.5 / classes


def status(seeds):
    bad = [r for r in seeds if r['status'] != 'done']
    if bad:
        epoch = bad[0]['diverged']['epoch']
        return f'**diverged** in epoch {epoch} ({len(bad)}/{len(seeds)} seeds)'
    if any(collapsed(r) for r in seeds):
        return '**collapsed** (class accuracy at chance)'
    return 'done'


def probe_tap(result, tap=TAP):
    return result.get('probe', {}).get('taps', {}).get(tap)


def get(seeds, field, tap=TAP):
    """field over the finished seeds: 'final:<key>' from results, '<key>' from the probe."""
    out = []
    for r in done(seeds):
        if field.startswith('final:'):
            value = r['final'][field[6:]]
            value = value.get(tap) if isinstance(value, dict) else value
        else:
            value = (probe_tap(r, tap) or {}).get(field)
        if value is not None:
            out.append(value)
    return out


def mean(xs):
    return statistics.mean(xs) if xs else float('nan')


def pct(xs):
    """mean ± std (n) of accuracies, in percent; '—' when empty."""
    if not xs:
        return '—'
    text = f'{100 * statistics.mean(xs):.1f}'
    return text if len(xs) == 1 else f'{text} ± {100 * statistics.stdev(xs):.1f} (n={len(xs)})'


def memorization(seeds, tap=TAP):
    """m over the seeds with a 95% interval combining the seeds' errors; None if unprobed."""
    rows = [t for t in (probe_tap(r, tap) for r in done(seeds)) if t]
    if not rows:
        return None
    m = statistics.mean(t['memorization'] for t in rows)
    se = (sum(t['memorization_se'] ** 2 for t in rows) ** 0.5) / len(rows)
    half = rows[0]['memorization_ci'][1] - rows[0]['memorization'] if len(rows) == 1 else 1.96 * se
    return {'m': m, 'ci': [m - half, m + half], 'n': len(rows)}


def m_text(mem):
    if mem is None:
        return '—'
    lo, hi = mem['ci']
    return f'{100 * mem["m"]:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]'


def words(mem):
    return 'not probed' if mem is None else interval_words(*mem['ci'])


def verb(mem):
    """words() inside a sentence: 'm is above 0', 'm holds 0'."""
    return {'above 0': 'is above 0', 'below 0': 'is below 0', 'holds 0': 'holds 0'}.get(
        words(mem), 'was not probed'
    )


def controls_cells(seeds, tap=TAP):
    """online | a_train | a_heldout | a_init | m [95%]: the paper's number and its controls."""
    online = get(seeds, 'final:rand_acc', tap)
    cells = [pct(online)] + [pct(get(seeds, k, tap)) for k in ('a_train', 'a_heldout', 'a_init')]
    return ' | '.join(cells + [m_text(memorization(seeds, tap))])


CONTROL_HEADER = 'online head (paper) | a_train | a_heldout | a_init | m [95%]'


def save(fig, folder, name):
    path = os.path.join(folder, name)
    fig.tight_layout()
    fig.savefig(path + '.tmp.png', dpi=120)
    os.replace(path + '.tmp.png', path)  # atomic: a half-written figure is never left in place
    plt.close(fig)
    return f'![{name}]({name})'


def chance_band(ax, K, n, label):
    lo, hi = wilson_interval(1 / K, n)
    ax.axhspan(100 * lo, 100 * hi, color='gray', alpha=0.15, label=label)
    ax.axhline(100 / K, color='gray', lw=0.8)


def training_section(runs, folder):
    seeds = runs['none']
    first = done(seeds)[0]
    history, K = first['history'], first['config']['random_labels']
    epochs = [h['epoch'] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(epochs, [100 * h['train_acc'] for h in history], '.-', label='train (online)')
    left.plot(epochs, [100 * h['test_acc'] for h in history], '.-', label='test')
    seed = first['config']['seed']  # the curves are one seed's; the tables average the seeds
    left.set(xlabel='epoch', ylabel='class accuracy (%)', title=f'class labels (seed {seed})')
    for tap in history[0]['rand_acc']:
        right.plot(
            epochs, [100 * h['rand_acc'][tap] for h in history], '.-', label=f'online head, {tap}'
        )
    test = [100 * h['rand_acc_test'][TAP] for h in history]
    right.plot(epochs, test, 'k--', lw=1, label=f'online head on test, {TAP} (chance check)')
    chance_band(right, K, first['data']['n_test'], 'chance, 95% band for the test set')
    probe = probe_tap(first)
    if probe:  # the controls at the end of training, as markers at the last epoch
        for key, marker in (('a_train', 'o'), ('a_heldout', 's'), ('a_init', 'x')):
            right.plot(epochs[-1], 100 * probe[key], marker, ms=8, label=f'fresh head: {key}')
    right.set(
        xlabel='epoch',
        ylabel='random-label accuracy (%)',
        title=f'random labels, K = {K} (seed {seed})',
    )
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    right.legend(fontsize=7, loc='center left', bbox_to_anchor=(1.01, 0.5))
    figure = save(fig, folder, 'training.png')
    rows = [f'| tap | {CONTROL_HEADER} | interval |', '|---|---|---|---|---|---|---|']
    for tap in first['final']['rand_acc']:
        rows.append(f'| {tap} | {controls_cells(seeds, tap)} | {words(memorization(seeds, tap))} |')
    mem = memorization(seeds)
    start = 100 * mean([r['history'][0]['rand_acc'][TAP] for r in done(seeds)])
    end = 100 * mean(get(seeds, 'final:rand_acc'))
    gap = 100 * mean(get(seeds, 'a_train')) - end
    sentence = (
        f'The online head goes from {start:.1f}% after the first epoch to {end:.1f}% on the '
        f'training set, {gap:.1f} points below a fresh head fitted to convergence on the same '
        f'samples ({pct(get(seeds, "a_train"))}%), which reads {pct(get(seeds, "a_heldout"))}% '
        f'from held-out ones: m {verb(mem)}'
    )
    if words(mem) == 'holds 0':
        sentence += ': the rise is the head fitting, not the network memorizing.'
    elif words(mem) == 'below 0':
        sentence += (
            f' ({m_text(mem)} points), which no memorization explains; about 1 interval in 20 '
            'misses by chance, so compare seeds (SEEDS="0 1 2").'
        )
    else:
        sentence += f' ({m_text(mem)} points).'
    return [figure, '\n'.join(rows), f'**What it shows.** {sentence}']


def regularizer_section(runs, folder):
    present = [r for r in REGULARIZERS if r in runs]
    header = f'| regularizer | test acc | gap | {CONTROL_HEADER} | status |'
    rows = [header, '|---|---|---|---|---|---|---|---|---|']
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for i, name in enumerate(present):
        seeds = runs[name]
        test = get(seeds, 'final:test_acc')
        rows.append(
            f'| {NAMES[name]} | {pct(test)} | {pct(get(seeds, "final:gen_gap"))} '
            f'| {controls_cells(seeds)} | {status(seeds)} |'
        )
        mem = memorization(seeds)
        online = mean(get(seeds, 'final:rand_acc'))
        n = done(seeds)[0]['data']['n_train'] if done(seeds) else 0
        lo, hi = wilson_interval(online, n) if online == online else (online, online)
        right.errorbar(
            i,
            100 * online,
            yerr=[[100 * (online - lo)], [100 * (hi - online)]],
            fmt='o',
            capsize=3,
            label=NAMES[name],
        )
        if mem:
            err = [[100 * (mem['m'] - mem['ci'][0])], [100 * (mem['ci'][1] - mem['m'])]]
            left.errorbar(
                100 * mean(test), 100 * mem['m'], yerr=err, fmt='o', capsize=3, label=NAMES[name]
            )
    left.axhline(0, color='black', lw=0.8)
    left.set(
        xlabel='class test accuracy (%)',
        ylabel='m = a_train − a_heldout (points, 95%)',
        title='memorization estimate vs. generalization',
    )
    right.set_xticks(range(len(present)), [NAMES[p] for p in present], rotation=30, ha='right')
    right.set(ylabel='online head, train (%, 95% Wilson)', title="the papers' number")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(fontsize=7)
    figure = save(fig, folder, 'regularizers.png')
    zero = [p for p in present if words(memorization(runs[p])) == 'holds 0']
    onlines = [mean(get(runs[p], 'final:rand_acc')) for p in present]
    sentence = (
        f'm holds 0 for {len(zero)} of {len(present)} regularizer settings; the online numbers '
        f'span {100 * min(onlines):.1f}–{100 * max(onlines):.1f}%'
    )
    n = done(runs['none'])[0]['data']['n_train']
    width = 100 * (wilson_interval(0.5, n)[1] - 0.5)
    sentence += f', against ±{width:.1f} points of binomial noise on {n} samples alone.'
    return ['\n'.join(rows), figure, f'**What it shows.** {sentence}']


def depth_section(runs, folder):
    present = [r for r in ('none', 'all', 'memorize') if r in runs]
    first = done(runs['none'])[0]
    taps = list(first['final']['rand_acc'])
    capacity = first['final']['head_capacity']
    rows = [
        f'| tap | D | samples per head | run | {CONTROL_HEADER} |',
        '|---|---|---|---|' + '---|' * 5,
    ]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for j, run in enumerate(present):
        seeds = runs[run]
        for tap in taps:
            cap = capacity[tap]
            rows.append(
                f'| {tap} | {cap["dim"]} | {cap["samples_per_head"]:.0f} | {NAMES[run]} '
                f'| {controls_cells(seeds, tap)} |'
            )
        mems = [memorization(seeds, tap) for tap in taps]
        x = [i + 0.12 * (j - 1) for i in range(len(taps))]  # side by side, never on top
        ms = [100 * m['m'] if m else float('nan') for m in mems]
        err = [
            [100 * (m['m'] - m['ci'][0]) if m else 0 for m in mems],
            [100 * (m['ci'][1] - m['m']) if m else 0 for m in mems],
        ]
        right.errorbar(x, ms, yerr=err, fmt='o-', capsize=3, label=NAMES[run])
    for key, style in (('a_train', 'o-'), ('a_heldout', 's--'), ('a_init', 'x:')):
        left.plot(
            range(len(taps)),
            [100 * mean(get(runs['none'], key, t)) for t in taps],
            style,
            label=f'{key} (none)',
        )
    online = [100 * mean(get(runs['none'], 'final:rand_acc', t)) for t in taps]
    left.plot(range(len(taps)), online, '^-.', label='online head (none)')
    left.axhline(50, color='gray', lw=0.8)
    left.set(ylabel='random-label accuracy (%)', title='the unregularized run and its controls')
    right.axhline(0, color='black', lw=0.8)
    right.set(ylabel='m = a_train − a_heldout (points, 95%)', title='memorization estimate by tap')
    for ax in (left, right):
        ax.set_xticks(range(len(taps)), taps)
        ax.set_xlabel('tap (input side → output side)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figure = save(fig, folder, 'depth.png')
    parts = []
    for run in present:
        lit = [t for t in taps if words(memorization(runs[run], t)) == 'above 0']
        parts.append(f'{NAMES[run]}: {", ".join(lit) if lit else "no tap"}')
    sentence = 'm is above 0 at — ' + '; '.join(parts) + '.'
    return ['\n'.join(rows), figure, f'**What it shows.** {sentence}']


def unlearning_section(runs, folder, mechanism):
    """λ sweep of one mechanism; λ = 0 is the unregularized run `none`."""
    swept = [(float(n.split('-', 1)[1]), n) for n in runs if n.startswith(mechanism + '-')]
    sweep = [(0.0, 'none')] + sorted(swept)
    rows = [f'| λ | test acc | {CONTROL_HEADER} | status |', '|---|---|---|---|---|---|---|---|']
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    curves = {k: [] for k in ('online head', 'a_train', 'a_heldout', 'a_init', 'test')}
    for lam, name in sweep:
        seeds = runs[name]
        rows.append(
            f'| {lam:g} | {pct(get(seeds, "final:test_acc"))} | {controls_cells(seeds)} '
            f'| {status(seeds)} |'
        )
        curves['online head'].append(mean(get(seeds, 'final:rand_acc')))
        for key in ('a_train', 'a_heldout', 'a_init'):
            curves[key].append(mean(get(seeds, key)))
        curves['test'].append(mean(get(seeds, 'final:test_acc')))
    x = range(len(sweep))
    for key, style in zip(
        ('online head', 'a_train', 'a_heldout', 'a_init'), ('^-', 'o-', 's--', 'x:'), strict=True
    ):
        left.plot(x, [100 * v for v in curves[key]], style, label=key)
    left.axhline(50, color='gray', lw=0.8, label='chance')
    right.plot(x, [100 * v for v in curves['test']], 'o-', color='C4', label='class test accuracy')
    classes = done(runs['none'])[0]['data']['num_classes']
    right.axhline(100 / classes, color='gray', lw=0.8, label='chance')
    for i, (_, name) in enumerate(sweep):
        bad = status(runs[name])
        if bad != 'done':
            for ax in (left, right):
                ax.axvline(i, color='red', alpha=0.2, lw=8)
            right.annotate(
                bad.strip('*').split(' (')[0],
                (i, 100 / classes),
                rotation=90,
                fontsize=7,
                va='bottom',
                ha='center',
            )
    title = 'gradient reversal' if mechanism == 'grl' else 'the output regularizer'
    left.set(ylabel='random-label accuracy, train (%)', title=f'random labels: {title}')
    right.set(ylabel='class test accuracy (%)', title='class labels')
    for ax in (left, right):
        ax.set_xticks(list(x), [f'{lam:g}' for lam, _ in sweep])
        ax.set_xlabel(f'λ ({mechanism}; 0 = no unlearning)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figure = save(fig, folder, f'unlearning-{mechanism}.png')
    return ['\n'.join(rows), figure, f'**What it shows.** {unlearning_sentence(runs, sweep)}']


def unlearning_sentence(runs, sweep):
    usable = [(lam, n) for lam, n in sweep[1:] if status(runs[n]) == 'done']
    if not usable:
        return 'every λ > 0 diverged or collapsed.'
    lam, name = min(usable, key=lambda s: mean(get(runs[s[1]], 'final:rand_acc')))
    seeds = runs[name]
    online = 100 * mean(get(seeds, 'final:rand_acc'))
    mem = memorization(seeds)
    drop = 100 * (mean(get(runs['none'], 'final:test_acc')) - mean(get(seeds, 'final:test_acc')))
    cost = f'at a cost of {drop:.1f}' if drop >= 0 else f'gaining {-drop:.1f}'
    text = (
        f'At λ = {lam:g} the online head reads {online:.1f}% (its lowest), {cost} points of '
        f'test accuracy; a fresh head gives m = {m_text(mem)}, which {verb(mem)}'
    )
    if words(mem) == 'above 0':
        return text + ': the term wrote r into the features and hid it from the online head.'
    return text + ': nothing a fresh head can read was left or added.'


def positive_control_section(runs):
    seeds = runs['memorize']
    taps = list(done(seeds)[0]['final']['rand_acc'])
    rows = [f'| tap | {CONTROL_HEADER} | a_fresh | interval |', '|---|---|---|---|---|---|---|---|']
    for tap in taps:
        rows.append(
            f'| {tap} | {controls_cells(seeds, tap)} | {pct(get(seeds, "a_fresh", tap))} '
            f'| {words(memorization(seeds, tap))} |'
        )
    mem = memorization(seeds)
    lit = words(mem) == 'above 0'
    sentence = (
        f'Trained on r through the penultimate head, the network gives m = {m_text(mem)} there: '
        + (
            'the instrument reads memorization where there is some.'
            if lit
            else 'the instrument does NOT read it: do not trust the other numbers.'
        )
    )
    return ['\n'.join(rows), f'**What it shows.** {sentence}']


def header(runs, folder):
    first = done(runs['none'])[0]
    seeds = sorted({r['config']['seed'] for rs in runs.values() for r in rs})
    seconds = sum(h['seconds'] for rs in runs.values() for r in rs for h in r['history'])
    cfg, d, env = first['config'], first['data'], first['env']
    dataset = cfg['dataset'] + (
        f' shaped like {cfg["fake_like"]}' if cfg['dataset'] == 'fake' else ''
    )
    probe = first.get('probe', {})
    return [
        f'# Random-label memorization study: `{folder}`',
        f'Model **{cfg["model"]}**, data **{dataset}** ({d["n_train"]} training / {d["n_test"]} '
        f'test images, {d["num_classes"]} classes), **{cfg["epochs"]}** epochs, batch '
        f'{cfg["batch_size"]}, lr {cfg["lr"]}, seeds {seeds} (n={len(seeds)}), K = '
        f'{cfg["random_labels"]} random labels, `{cfg["rlp_head"]}` heads, on {env["device"]} '
        f'(torch {env["torch"]}). {sum(map(len, runs.values()))} runs, {seconds / 60:.1f} minutes '
        'of training in all.',
        "**How to read the numbers.** *Online head (paper)*: the papers' random-label accuracy, "
        'the head trained alongside the network, on the training set. The controls come from '
        f'fresh heads fitted to convergence on the frozen final network (probe.py, '
        f'n = {probe.get("n", "?")} samples each): *a_train* on training samples with their '
        'random labels, *a_heldout* on as many held-out samples with their own, *a_init* on the '
        'training samples through the untrained network (the capacity floor). *m* = a_train − '
        'a_heldout estimates memorization, with its 95% interval; it is 0 for a network that '
        "treats seen and unseen samples alike, whatever the head's capacity. Accuracies in %.",
    ]


def report(folder, seeds=None):
    runs = load_runs(folder, seeds)
    parts = header(runs, folder)
    parts += ['## 1. Memorization during training (unregularized run)']
    parts += training_section(runs, folder)
    parts += ['## 2. Regularizers'] + regularizer_section(runs, folder)
    parts += ['## 3. Where memorization lives'] + depth_section(runs, folder)
    for mechanism, letter in (('grl', 'a'), ('reg', 'b')):
        if any(n.startswith(mechanism + '-') for n in runs):
            parts += [f'## 4{letter}. Unlearning with `--unlearn {mechanism}`']
            parts += unlearning_section(runs, folder, mechanism)
    if 'memorize' in runs and done(runs['memorize']):
        parts += ['## 5. Positive control (`--memorize`)'] + positive_control_section(runs)
    path = os.path.join(folder, 'report.md')
    with open(path + '.tmp', 'w') as f:
        f.write('\n\n'.join(parts) + '\n')
    os.replace(path + '.tmp', path)
    print(f'wrote {path}')


def main(argv=None):
    p = Parser(prog='report.py', description=__doc__.split('\n')[0])
    p.add_argument('folder', help='a study folder: <folder>/<run>/seed<N>/results.json')
    p.add_argument('--seeds', type=int, nargs='+', default=None, help='only these seeds')
    args = p.parse_args(argv)
    try:
        report(args.folder, args.seeds)
    except ReportError as e:
        print(f'report.py: error: {e}', file=sys.stderr)
        sys.exit(2)


if __name__ == '__main__':
    main()
