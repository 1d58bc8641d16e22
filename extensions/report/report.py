"""A study folder -> the papers' tables and figures: python -m extensions.report.report DIR

Reads DIR/<run>/seed<N>/results.json and probe.json (train.py) and writes DIR/report.md with PNG
figures beside it, for the papers' four studies and the positive control:
  1. memorization during training (Becker & Risse 2024);
  2. regularizers against memorization (Becker & Risse 2024);
  3. where memorization lives: every tap (Becker et al. 2026);
  4. unlearning: the online head, the fresh heads and test accuracy against λ (both papers);
  5. the positive control (ours): a network made to memorize r.
Every random-label number stands beside its controls (metrics.py): a_fresh, a_heldout, a_init, the
memorization estimate m = a_fresh - a_heldout and a_train - a_fresh. Over several seeds (each seed
also draws its own random labels and training subset) an estimate's 95% interval comes from the
networks' spread (metrics.across_networks). Every sentence is computed from those intervals. The
last epoch is reported, never the best.
"""

import glob
import json
import os
import statistics

import matplotlib

matplotlib.use('Agg')  # headless: no display needed
import matplotlib.pyplot as plt  # noqa: E402

import plumbing  # noqa: E402
from metrics import across_networks, interval_words, wilson_interval  # noqa: E402
from train import build_parser  # noqa: E402

from .markdown import bounded, save, smallest, table  # noqa: E402

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
# what a study varies between its runs and seeds: every other option must agree
STUDIED = {'weight_decay', 'augment', 'dropout', 'label_smoothing', 'unlearn', 'lam', 'memorize'}
STUDIED |= {'seed', 'label_seed', 'out', 'device', 'compile', 'data_dir', 'probe'}
TAP = 'penultimate'
# the papers' number and its controls: the columns of every table (control_cells)
CONTROLS = ['online head (paper)', 'a_train', 'a_fresh', 'a_heldout', 'a_init', 'm [95%]']
CONTROLS += ['a_train − a_fresh [95%]']


class ReportError(Exception):
    """A folder the report cannot read: one line on stderr, exit code 2."""


# --- reading a study ----------------------------------------------------------------------------


def load_runs(folder, seeds=None):
    """{run name: [results.json of each seed, with its probe.json under 'probe']}, checked."""
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
        result['dir'] = os.path.dirname(path)
        runs.setdefault(path.split(os.sep)[-3], []).append(result)
    if not runs:
        raise ReportError(f'{folder} holds no finished runs (<run>/seed<N>/results.json)')
    check_complete(runs)
    check_one_study(runs)
    if 'none' not in runs:
        raise ReportError(f'{folder} has no run "none" (the unregularized baseline)')
    if not done(runs['none']):
        raise ReportError(f'{folder}: the baseline run "none" diverged; nothing to compare with')
    return runs


def check_complete(runs):
    """Refuse runs written by an older train.py (an option missing from their config: it is not
    filled in with today's default) and finished runs without their controls."""
    options = vars(build_parser().parse_args([]))
    for seeds in runs.values():
        for r in seeds:
            missing = sorted(options.keys() - r['config'].keys())
            if missing:
                flag = '--' + missing[0].replace('_', '-')
                raise ReportError(f'{r["dir"]} was written without {flag}: rerun it')
            if r['status'] == 'done' and r.get('probe', {}).get('status') != 'done':
                raise ReportError(f'{r["dir"]} has no probe.json: rerun its train.py command')


def check_one_study(runs):
    """Refuse runs that differ in anything but the studied options and the seeds."""
    configs = [(name, r['config']) for name, seeds in runs.items() for r in seeds]
    name0, first = configs[0]
    for name, config in configs[1:]:
        for key in sorted(first.keys() - STUDIED):
            if first[key] != config[key]:
                raise ReportError(
                    f'runs {name0} and {name} differ in --{key.replace("_", "-")} '
                    f'({first[key]} vs {config[key]}): one study per folder'
                )


def done(seeds):
    return [r for r in seeds if r['status'] == 'done']


def collapsed(result):
    """Class accuracy at chance: the run finished but learned nothing (e.g. too large a λ)."""
    return result['status'] == 'done' and result['final']['test_acc'] < 1.5 / n_classes(result)


def n_classes(result):
    return result['data']['num_classes']


def status(seeds):
    bad = [r for r in seeds if r['status'] != 'done']
    if bad:
        return (
            f'**diverged** in epoch {bad[0]["diverged"]["epoch"]} ({len(bad)}/{len(seeds)} seeds)'
        )
    return '**collapsed** (class accuracy at chance)' if any(map(collapsed, seeds)) else 'done'


# --- numbers ------------------------------------------------------------------------------------


def values(seeds, field, tap=TAP):
    """field over the finished seeds: 'final:<key>' from results.json, else a probe.json key."""
    out = []
    for r in done(seeds):
        if field.startswith('final:'):
            value = r['final'][field[6:]]
            out.append(value.get(tap) if isinstance(value, dict) else value)
        else:
            out.append(r['probe']['taps'][tap][field])
    return out


def estimate(seeds, key, tap=TAP):
    """m ('memorization'), 'specific' (a_train - a_fresh) or 'trained' (a_fresh - a_init) over
    the finished seeds, with metrics.across_networks's interval."""
    rows = [r['probe']['taps'][tap] for r in done(seeds)]
    return across_networks([t[key] for t in rows], [t[f'{key}_se'] for t in rows])


def pct(xs):
    """mean ± std (n) of accuracies, in percent; '—' when empty."""
    if not xs:
        return '—'
    text = f'{100 * statistics.mean(xs):.1f}'
    return text if len(xs) == 1 else f'{text} ± {100 * statistics.stdev(xs):.1f} (n={len(xs)})'


def points(e):
    """An estimate as '+0.3 [-0.8, +1.2]', in points."""
    lo, hi = e['ci']
    return f'{100 * e["mean"]:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]'


def words(e):
    return interval_words(*e['ci'])


def bounds_of(estimates):
    """The smallest interval holding every estimate's interval."""
    return [min(e['ci'][0] for e in estimates), max(e['ci'][1] for e in estimates)]


def networks(e):
    """How an interval was made, in words."""
    if e['n'] == 1:
        return '1 network: label-draw error only; SEEDS="0 1 2" gives an interval over networks'
    return f'{e["n"]} networks, a random-effects interval over them'


def control_cells(seeds, tap=TAP):
    """The papers' number and its controls: the cells under CONTROLS."""
    cells = [pct(values(seeds, 'final:rand_acc', tap))]
    cells += [pct(values(seeds, k, tap)) for k in ('a_train', 'a_fresh', 'a_heldout', 'a_init')]
    return cells + [points(estimate(seeds, k, tap)) for k in ('memorization', 'specific')]


def capacity_sentence(seeds, tap=TAP):
    """The trained features against the untrained network's (a_fresh - a_init, R draws a side),
    in words computed from the interval."""
    trained = estimate(seeds, 'trained', tap)
    text = bounded('a_fresh − a_init', trained)
    if words(trained) != 'holds 0':
        more = 'more' if words(trained) == 'above 0' else 'fewer'
        text += f": the trained features hold {more} random labels than the untrained network's"
    return text


def m_sentence(seeds, tap=TAP):
    m = estimate(seeds, 'memorization', tap)
    return f'{bounded("m", m)} ({networks(m)})'


# --- figures and sections -----------------------------------------------------------------------


def chance_band(ax, K, n, label):
    lo, hi = wilson_interval(1 / K, n)
    ax.axhspan(100 * lo, 100 * hi, color='gray', alpha=0.15, label=label)
    ax.axhline(100 / K, color='gray', lw=0.8)


def errorbar(ax, x, e, **kw):
    """An estimate with its interval, in points."""
    lo, hi = e['ci']
    yerr = [[100 * (e['mean'] - lo)], [100 * (hi - e['mean'])]]
    ax.errorbar(x, 100 * e['mean'], yerr=yerr, fmt='o', capsize=3, **kw)


def training_section(runs, folder):
    seeds = runs['none']
    first = done(seeds)[0]
    history, K, seed = first['history'], first['config']['random_labels'], first['config']['seed']
    epochs = [h['epoch'] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(epochs, [100 * h['train_acc'] for h in history], '.-', label='train (online)')
    left.plot(epochs, [100 * h['test_acc'] for h in history], '.-', label='test')
    left.set(xlabel='epoch', ylabel='class accuracy (%)', title=f'class labels (seed {seed})')
    for tap in history[0]['rand_acc']:
        curve = [100 * h['rand_acc'][tap] for h in history]
        right.plot(epochs, curve, '.-', label=f'online head, {tap}')
    test = [100 * h['rand_acc_test'][TAP] for h in history]
    right.plot(epochs, test, 'k--', lw=1, label=f'online head on test, {TAP} (chance check)')
    chance_band(right, K, first['data']['n_test'], 'chance, 95% band for the test set')
    probe = first['probe']['taps'][TAP]
    for key, marker in (('a_train', 'o'), ('a_fresh', 'D'), ('a_heldout', 's'), ('a_init', 'x')):
        right.plot(epochs[-1], 100 * probe[key], marker, ms=8, label=f'fresh heads: {key}')
    title = f'random labels, K = {K} (seed {seed})'
    right.set(xlabel='epoch', ylabel='random-label accuracy (%)', title=title)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    right.legend(fontsize=7, loc='center left', bbox_to_anchor=(1.01, 0.5))
    figure = save(fig, folder, 'training.png')
    rows = [[tap, *control_cells(seeds, tap)] for tap in first['final']['rand_acc']]
    start = 100 * statistics.mean(r['history'][0]['rand_acc'][TAP] for r in done(seeds))
    end = 100 * statistics.mean(values(seeds, 'final:rand_acc'))
    a_train = 100 * statistics.mean(values(seeds, 'a_train'))
    sentence = (
        f'The online head goes from {start:.1f}% after the first epoch to {end:.1f}% on the '
        f'training set; a fresh head fitted to convergence on these samples reads '
        f'{a_train:.1f}% (a_train). {capacity_sentence(seeds)}. {m_sentence(seeds)}.'
    )
    return [figure, table(['tap', *CONTROLS], rows), f'**What it shows.** {sentence}']


def regularizer_section(runs, folder):
    present = [r for r in REGULARIZERS if r in runs]
    rows = []
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for i, name in enumerate(present):
        seeds, label = runs[name], NAMES[name]
        test = statistics.mean(values(seeds, 'final:test_acc'))
        gaps = values(seeds, 'final:gen_gap')
        rows.append([label, pct(values(seeds, 'final:test_acc')), pct(gaps), *control_cells(seeds)])
        rows[-1].append(status(seeds))
        online = statistics.mean(values(seeds, 'final:rand_acc'))
        lo, hi = wilson_interval(online, done(seeds)[0]['data']['n_train'])
        yerr = [[100 * (online - lo)], [100 * (hi - online)]]
        right.errorbar(i, 100 * online, yerr=yerr, fmt='o', capsize=3, label=label)
        errorbar(left, 100 * test, estimate(seeds, 'memorization'), label=label)
    left.axhline(0, color='black', lw=0.8)
    left.set(xlabel='class test accuracy (%)', ylabel='m = a_fresh − a_heldout (points)')
    left.set_title('memorization estimate vs. generalization')
    right.set_xticks(range(len(present)), [NAMES[p] for p in present], rotation=30, ha='right')
    right.set(ylabel='online head, train (%, 95% Wilson)', title="the papers' number")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(fontsize=7)
    figure = save(fig, folder, 'regularizers.png')
    ms = [estimate(runs[p], 'memorization') for p in present]
    onlines = [statistics.mean(values(runs[p], 'final:rand_acc')) for p in present]
    n = done(runs['none'])[0]['data']['n_train']
    noise = 100 * (wilson_interval(0.5, n)[1] - 0.5)
    lo, hi = min(m['ci'][0] for m in ms), max(m['ci'][1] for m in ms)
    held = sum(words(m) == 'holds 0' for m in ms)
    sentence = (
        f'The online numbers span {100 * min(onlines):.1f}–{100 * max(onlines):.1f}%, against '
        f'±{noise:.1f} points of binomial noise on {n} samples alone. m holds 0 for {held} of '
        f'{len(present)} settings; every m lies within [{100 * lo:+.1f}, {100 * hi:+.1f}] points, '
        f'and an m of {max(map(smallest, ms)):.1f} would have been detected in the least precise.'
    )
    header = ['regularizer', 'test acc', 'gap', *CONTROLS, 'status']
    return [table(header, rows), figure, f'**What it shows.** {sentence}']


def depth_section(runs, folder):
    present = [r for r in ('none', 'all', 'memorize') if r in runs and done(runs[r])]
    first = done(runs['none'])[0]
    taps, capacity = list(first['final']['rand_acc']), first['final']['head_capacity']
    rows = []
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for j, run in enumerate(present):
        for i, tap in enumerate(taps):
            cap = capacity[tap]
            rows.append([tap, cap['dim'], f'{cap["samples_per_head"]:.0f}', NAMES[run]])
            rows[-1] += control_cells(runs[run], tap)
            m = estimate(runs[run], 'memorization', tap)
            errorbar(
                right, i + 0.12 * (j - 1), m, color=f'C{j}', label=NAMES[run] if i == 0 else None
            )
    styles = {'a_train': 'o-', 'a_fresh': 'D-', 'a_heldout': 's--', 'a_init': 'x:'}
    for key, style in styles.items():
        curve = [100 * statistics.mean(values(runs['none'], key, t)) for t in taps]
        left.plot(range(len(taps)), curve, style, label=f'{key} (none)')
    online = [100 * statistics.mean(values(runs['none'], 'final:rand_acc', t)) for t in taps]
    left.plot(range(len(taps)), online, '^-.', label='online head (none)')
    left.axhline(50, color='gray', lw=0.8)
    left.set(ylabel='random-label accuracy (%)', title='the unregularized run and its controls')
    right.axhline(0, color='black', lw=0.8)
    right.set(ylabel='m = a_fresh − a_heldout (points, 95%)', title='memorization estimate by tap')
    for ax in (left, right):
        ax.set_xticks(range(len(taps)), taps)
        ax.set_xlabel('tap (input side → output side)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figure = save(fig, folder, 'depth.png')
    parts = []
    for run in present:
        lit = [t for t in taps if words(estimate(runs[run], 'memorization', t)) == 'above 0']
        parts.append(f'{NAMES[run]}: m above 0 at {", ".join(lit) or "no tap"}')
    fresh = ' → '.join(
        f'{100 * statistics.mean(values(runs["none"], "a_fresh", t)):.1f}' for t in taps
    )
    dims = ', '.join(f'{t} {capacity[t]["dim"]}' for t in taps)
    init = ' → '.join(
        f'{100 * statistics.mean(values(runs["none"], "a_init", t)):.1f}' for t in taps
    )
    trained = [estimate(runs['none'], 'trained', t) for t in taps]
    off = [t for t, e in zip(taps, trained, strict=True) if words(e) != 'holds 0']
    if off:
        why = f'a_fresh − a_init lies off 0 at {", ".join(off)} (the table gives the intervals)'
    else:
        lo, hi = (100 * v for v in bounds_of(trained))
        worst = max(smallest(e) for e in trained)
        why = (
            f'a_fresh − a_init lies within [{lo:+.1f}, {hi:+.1f}] points at every tap; an effect '
            f'of {worst:.1f} would have been detected at the least precise'
        )
    sentence = (
        f'{"; ".join(parts)}. For `none`, a_fresh goes {fresh}% with depth (D: {dims}) and '
        f"a_init, the untrained network's, {init}%; {why}."
    )
    header = ['tap', 'D', 'samples per head', 'run', *CONTROLS]
    return [table(header, rows), figure, f'**What it shows.** {sentence}']


def unlearning_section(runs, folder, mechanism):
    """λ sweep of one mechanism; λ = 0 is the unregularized run `none`."""
    swept = sorted((float(n.split('-', 1)[1]), n) for n in runs if n.startswith(mechanism + '-'))
    sweep = [(0.0, 'none')] + swept
    rows = []
    curves = {k: [] for k in ('online head', 'a_train', 'a_fresh', 'a_heldout', 'test')}
    fields = {'online head': 'final:rand_acc', 'test': 'final:test_acc'}
    for lam, name in sweep:
        seeds = runs[name]
        cells = control_cells(seeds) if done(seeds) else ['—'] * len(CONTROLS)
        rows.append([f'{lam:g}', pct(values(seeds, 'final:test_acc')), *cells, status(seeds)])
        for key, curve in curves.items():
            got = values(seeds, fields.get(key, key))
            curve.append(100 * statistics.mean(got) if got else float('nan'))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    x = range(len(sweep))
    for key, style in (
        ('online head', '^-'),
        ('a_train', 'o-'),
        ('a_fresh', 'D-'),
        ('a_heldout', 's--'),
    ):
        left.plot(x, curves[key], style, label=key)
    left.axhline(50, color='gray', lw=0.8, label='chance')
    right.plot(x, curves['test'], 'o-', color='C4', label='class test accuracy')
    classes = n_classes(done(runs['none'])[0])
    right.axhline(100 / classes, color='gray', lw=0.8, label='chance')
    for i, (_, name) in enumerate(sweep):
        if status(runs[name]) != 'done':  # diverged or collapsed: marked, not dropped
            for ax in (left, right):
                ax.axvline(i, color='red', alpha=0.2, lw=8)
            word = status(runs[name]).strip('*').split(' ')[0]
            right.annotate(word, (i, 100 / classes), rotation=90, fontsize=7, ha='center')
    title = 'gradient reversal' if mechanism == 'grl' else 'the output regularizer'
    left.set(ylabel='random-label accuracy, train (%)', title=f'random labels: {title}')
    right.set(ylabel='class test accuracy (%)', title='class labels')
    for ax in (left, right):
        ax.set_xticks(list(x), [f'{lam:g}' for lam, _ in sweep])
        ax.set_xlabel(f'λ ({mechanism}; 0 = no unlearning)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figure = save(fig, folder, f'unlearning-{mechanism}.png')
    header = ['λ', 'test acc', *CONTROLS, 'status']
    return [table(header, rows), figure, f'**What it shows.** {unlearning_sentence(runs, sweep)}']


def unlearning_sentence(runs, sweep):
    usable = [(lam, n) for lam, n in sweep[1:] if status(runs[n]) == 'done']
    if not usable:
        return 'every λ > 0 diverged or collapsed.'
    lam, name = min(usable, key=lambda s: statistics.mean(values(runs[s[1]], 'final:rand_acc')))
    seeds = runs[name]
    online = 100 * statistics.mean(values(seeds, 'final:rand_acc'))
    test = [statistics.mean(values(runs[n], 'final:test_acc')) for n in ('none', name)]
    drop = 100 * (test[0] - test[1])
    cost = f'at a cost of {drop:.1f}' if drop >= 0 else f'gaining {-drop:.1f}'
    specific = estimate(seeds, 'specific')
    text = (
        f'At λ = {lam:g} the online head reads {online:.1f}% (its lowest), {cost} points of test '
        f'accuracy. {bounded("a_train − a_fresh", specific)}'
    )
    if words(specific) == 'above 0':
        text += (
            ': fresh heads read these labels better than labels nobody used, so the term wrote r '
            'into the features and hid it from the online head'
        )
    return f'{text}. {m_sentence(seeds)}.'


def positive_control_section(runs):
    """The positive control must light up in every network: a_train - a_fresh above 0 by each
    network's own interval (over few networks that differ in how much r they took in, the
    interval over networks can hold 0 although every network lights up)."""
    seeds = runs['memorize']
    rows = [[tap, *control_cells(seeds, tap)] for tap in done(seeds)[0]['final']['rand_acc']]
    specific = estimate(seeds, 'specific')
    own = [r['probe']['taps'][TAP]['specific_ci'][0] > 0 for r in done(seeds)]
    if all(own) or words(specific) == 'above 0':
        verdict = 'r is in the features, and a fresh head finds it'
    else:
        verdict = 'the control did NOT light up: do not trust the other numbers'
    sentence = (
        f'Trained on r through the penultimate head, a_train − a_fresh lies above 0 in {sum(own)} '
        f'of {len(own)} networks, each by its own interval (were r in none of them, all '
        f'{len(own)} would lie above 0 with a chance of {0.025 ** len(own):.1g}): {verdict}. Over '
        'the networks, '
        f'{bounded("a_train − a_fresh", specific)}. {m_sentence(seeds)}.'
    )
    return [table(['tap', *CONTROLS], rows), f'**What it shows.** {sentence}']


def header(runs, folder):
    first = done(runs['none'])[0]
    seeds = sorted({r['config']['seed'] for rs in runs.values() for r in rs})
    seconds = sum(h['seconds'] for rs in runs.values() for r in rs for h in r['history'])
    cfg, d, env = first['config'], first['data'], first['env']
    dataset = cfg['dataset'] + (
        f' shaped like {cfg["fake_like"]}' if cfg['dataset'] == 'fake' else ''
    )
    commits = sorted({r['probe']['commit'][:12] for rs in runs.values() for r in done(rs)})
    probe = first['probe']
    return [
        f'# Random-label memorization study: `{folder}`',
        f'Model **{cfg["model"]}**, data **{dataset}** ({d["n_train"]} training / {d["n_test"]} '
        f'test images, {d["num_classes"]} classes), **{cfg["epochs"]}** epochs, batch '
        f'{cfg["batch_size"]}, lr {cfg["lr"]}, seeds {seeds} (n={len(seeds)}; seed N also draws '
        f'random labels and subset N), K = {cfg["random_labels"]} random labels, '
        f'`{cfg["rlp_head"]}` heads, on {env["device"]} (torch {env["torch"]}); '
        f'{sum(map(len, runs.values()))} runs, {seconds / 60:.1f} minutes of training; controls '
        f'measured by commit {", ".join(commits)}.',
        "**How to read the numbers.** *Online head (paper)*: the papers' random-label accuracy, "
        'the head trained alongside the network, on the training set. The rest come from fresh '
        f'heads fitted to convergence on the frozen final network (n = {probe["n"]} samples a '
        f'side, {probe["draws"]} label draws): *a_train* reads the training samples with their '
        'own random labels, *a_fresh* the same features with labels nobody trained on, '
        '*a_heldout* as many held-out samples, *a_init* the untrained network (the capacity '
        'floor). **m = a_fresh − a_heldout** is the memorization estimate: 0 for a network that '
        "treats seen and unseen samples alike, whatever the head's capacity. *a_train − a_fresh* "
        'is what a head reads of these very labels: draw luck when f never saw r, r itself when f '
        'was trained on it. Intervals are 95%; over several seeds they come from the spread '
        'between networks. Accuracies in %, differences in points.',
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
        f.write('\n\n'.join(parts) + '\n')  # blocks apart; a table's rows stay together
    os.replace(path + '.tmp', path)
    print(f'wrote {path}')


def main(argv=None):
    p = plumbing.Parser('report', __doc__)
    p.add_argument('folder', help='a study folder: <folder>/<run>/seed<N>/results.json')
    p.add_argument('--seeds', type=int, nargs='+', default=None, help='only these seeds')
    args = p.parse_args(argv)
    try:
        report(args.folder, args.seeds)
    except ReportError as e:
        p.fail(str(e))


if __name__ == '__main__':
    main()
