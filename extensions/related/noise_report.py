"""The related systems under label noise, side by side: python -m extensions.related.noise_report

Reads DIR/<run>/seed<N>/results.json, probe.json and self_influence.pt as `make noise` writes them
and writes DIR/report.md with one table, one figure (noise.png) and a second small table:
  the table:  per run, test accuracy, training accuracy on the clean and on the noisy samples (how
              much label noise was memorized), the random-label memorization estimate m with its
              95% interval and controls (probe.json), a_train - a_fresh (how much of r itself is
              in the features), and turn-over dropout self-influence;
  sections:   one per related system (Patel & Sastry 2021; Harutyunyan et al. 2020; Kobayashi et al.
              2020 with Liu, Lin & Jaggi 2021; Alvi et al. 2018) and the seed papers' unlearning,
              each closing with one sentence, written from the numbers, on whether the paper's
              claim held here;
  table 2:    cross-entropy and the robust log loss on clean and on fully random class labels.
Runs are named <system>[-<value>] (ce, rll-α, limit-β, reg-λ, grl-λ, confusion-λ, tod), and
p0-<run> / p1-<run> for clean / fully random labels. Numbers are from the last epoch; with several
seeds, mean ± std (n), and m and a_train - a_fresh get a random-effects interval over the seeds
(metrics.across_networks). A difference between two accuracies counts only where it exceeds the
95% binomial noise of the test set (one seed: seed-to-seed spread is not in it).
"""

import glob
import json
import math
import os
import statistics

import matplotlib

matplotlib.use('Agg')  # headless: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import plumbing  # noqa: E402
from extensions.report.markdown import bounded, prose, table  # noqa: E402
from extensions.validation.leaveout import spearman  # noqa: E402
from metrics import across_networks  # noqa: E402

SYSTEMS = {  # run-name prefix: its name in the tables
    'ce': 'cross-entropy',
    'rll': 'robust log loss, α',  # Patel & Sastry 2021
    'limit': 'LIMIT, β',  # Harutyunyan et al. 2020
    'reg': 'output regularizer, λ',  # Becker et al. 2026
    'grl': 'gradient reversal, λ',  # Becker & Risse 2024
    'confusion': 'confusion, λ',  # Alvi et al. 2018
    'tod': 'cross-entropy + turn-over dropout',  # Kobayashi et al. 2020
}
ORDER = list(SYSTEMS)
Z95 = 1.96
TAP = 'penultimate'
UNLEARNING = ('reg', 'grl', 'confusion')  # systems that train f against the random labels


def load_runs(folder):
    """{run name: [results of each seed, with 'probe' and 'tod' (per-sample) added where they
    exist]}."""
    runs = {}
    for path in sorted(glob.glob(os.path.join(folder, '*', 'seed*', 'results.json'))):
        with open(path) as f:
            result = json.load(f)
        run_dir = os.path.dirname(path)
        if os.path.exists(os.path.join(run_dir, 'probe.json')):
            with open(os.path.join(run_dir, 'probe.json')) as f:
                result['probe'] = json.load(f)
        if os.path.exists(os.path.join(run_dir, 'self_influence.pt')):
            result['tod'] = torch.load(
                os.path.join(run_dir, 'self_influence.pt'), weights_only=True
            )
        runs.setdefault(path.split(os.sep)[-3], []).append(result)
    return runs


def split_name(name):
    """'rll-0.1' -> ('rll', 0.1); 'tod' -> ('tod', None)."""
    kind, _, value = name.partition('-')
    return kind, float(value) if value else None


def run_order(names):
    """Runs of the label-noise study in table order: by system, then by value."""
    noisy = [n for n in names if n.partition('-')[0] in SYSTEMS]
    return sorted(noisy, key=lambda n: (ORDER.index(split_name(n)[0]), split_name(n)[1] or 0))


def label(name):
    kind, value = split_name(name)
    text = SYSTEMS[kind]
    return f'{text} = {value:g}' if value is not None else text


def done(seeds):
    return [r for r in seeds if r['status'] == 'done']


def values(seeds, get):
    """get(result) over the finished seeds, skipping None."""
    out = [get(r) for r in done(seeds)]
    return [v for v in out if v is not None]


def mean(xs):
    return statistics.mean(xs) if xs else float('nan')


def pct(xs, digits=1):
    """mean ± std (n) in percent; '—' when empty."""
    if not xs:
        return '—'
    text = f'{100 * statistics.mean(xs):.{digits}f}%'
    return (
        text if len(xs) == 1 else f'{text} ± {100 * statistics.stdev(xs):.{digits}f} (n={len(xs)})'
    )


def num(xs, digits=3):
    if not xs:
        return '—'
    text = f'{statistics.mean(xs):+.{digits}f}'
    return text if len(xs) == 1 else f'{text} ± {statistics.stdev(xs):.{digits}f} (n={len(xs)})'


def final(key, sub=None):
    def get(r):
        v = r['final'].get(key)
        return v.get(sub) if isinstance(v, dict) and sub is not None else v

    return get


def tap(key):
    """A probe number at the penultimate tap."""

    def get(r):
        return r.get('probe', {}).get('taps', {}).get('penultimate', {}).get(key)

    return get


def status(seeds):
    bad = [r for r in seeds if r['status'] != 'done']
    if not bad:
        return 'done'
    return f'**diverged** in epoch {bad[0]["diverged"]["epoch"]} ({len(bad)}/{len(seeds)} seeds)'


def beyond_noise(a, b, n):
    """Do accuracies a and b on n test samples differ by more than 95% binomial noise?"""
    se = math.sqrt(a * (1 - a) / n + b * (1 - b) / n)
    return abs(a - b) > Z95 * se


def estimate(seeds, key):
    """m ('memorization') or 'specific' (a_train - a_fresh) at the penultimate tap over the
    finished seeds, with a random-effects interval over them (metrics.across_networks); None if
    unprobed."""
    rows = [t for t in values(seeds, lambda r: r.get('probe', {}).get('taps', {}).get(TAP))]
    if not rows:
        return None
    return across_networks([t[key] for t in rows], [t[f'{key}_se'] for t in rows])


def span(e):
    if e is None:
        return '—'
    lo, hi = e['ci']
    return f'{100 * e["mean"]:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]'


def main_table(runs, names):
    header = ['run', 'test acc', 'train acc, clean', 'train acc, noisy', 'm [95%] (points)']
    header += ['a_train − a_fresh [95%]', 'a_train / a_fresh / a_heldout / a_init', 'online head']
    header += ['self-influence clean / noisy', 'status']
    rows = []
    for name in names:
        seeds = runs[name]
        accuracies = ('a_train', 'a_fresh', 'a_heldout', 'a_init')
        controls = ' / '.join(pct(values(seeds, tap(k))) for k in accuracies)
        influence = '—'
        if split_name(name)[0] == 'tod':
            influence = ' / '.join(
                num(values(seeds, final('self_influence', k))) for k in ('clean', 'noisy')
            )
        rows.append(
            [
                label(name),
                pct(values(seeds, final('test_acc'))),
                pct(values(seeds, final('train_acc_clean'))),
                pct(values(seeds, final('train_acc_noisy'))),
                span(estimate(seeds, 'memorization')),
                span(estimate(seeds, 'specific')),
                controls,
                pct(values(seeds, final('rand_acc', TAP))),
                influence,
                status(seeds),
            ]
        )
    return table(header, rows)


def figure(runs, names, folder):
    fig, (bars, mem, curves) = plt.subplots(1, 3, figsize=(17, 4.8))
    x = range(len(names))
    for offset, (key, text) in zip(
        (-0.27, 0, 0.27),
        (
            ('test_acc', 'test'),
            ('train_acc_clean', 'train, clean'),
            ('train_acc_noisy', 'train, noisy'),
        ),
        strict=True,
    ):
        ys = [100 * mean(values(runs[n], final(key))) for n in names]
        bars.bar([i + offset for i in x], ys, width=0.27, label=text)
    bars.set_xticks(list(x), names, rotation=60, ha='right', fontsize=8)
    bars.set(ylabel='class accuracy (%)', title='accuracy on the (noisy) labels', ylim=(0, 118))
    bars.legend(fontsize=8, loc='upper center', ncol=3)
    for i, n in enumerate(names):
        for offset, key, color in ((-0.15, 'memorization', 'C0'), (0.15, 'specific', 'C3')):
            e = estimate(runs[n], key)
            if e is None:
                continue
            yerr = [[100 * (e['mean'] - e['ci'][0])], [100 * (e['ci'][1] - e['mean'])]]
            label = 'm = a_fresh − a_heldout' if key == 'memorization' else 'a_train − a_fresh'
            mem.errorbar(
                i + offset,
                100 * e['mean'],
                yerr=yerr,
                fmt='o',
                capsize=3,
                color=color,
                label=label if i == 0 else None,
            )
    mem.axhline(0, color='gray', lw=0.8)
    mem.set_xticks(list(x), names, rotation=60, ha='right', fontsize=8)
    mem.set(ylabel='points (95% interval)', title='fresh heads, penultimate')
    mem.legend(fontsize=8)
    tod_runs = [n for n in names if split_name(n)[0] == 'tod' and done(runs[n])]
    if tod_runs:
        history = done(runs[tod_runs[0]])[0]['history']
        epochs = [h['epoch'] for h in history]
        right = curves.twinx()
        for k, style in (('clean', '-'), ('noisy', '--')):
            si = [h['self_influence'][k] for h in history]
            curves.plot(epochs, [v if v is not None else math.nan for v in si], 'C0' + style)
            acc = [h[f'train_acc_{k}'] for h in history]
            right.plot(epochs, [100 * v if v is not None else math.nan for v in acc], 'C1' + style)
        curves.plot([], [], 'k-', label='clean samples')
        curves.plot([], [], 'k--', label='noisy samples')
        curves.set(xlabel='epoch', title='turn-over dropout, per epoch')
        curves.set_ylabel('self-influence (loss form)', color='C0')
        right.set_ylabel('train acc through own mask (%)', color='C1')
        curves.legend(fontsize=8, loc='upper left')
    for ax in (bars, mem, curves):
        ax.grid(alpha=0.3)
    path = os.path.join(folder, 'noise.png')
    fig.tight_layout()
    fig.savefig(path + '.tmp.png', dpi=110)
    os.replace(path + '.tmp.png', path)  # atomic: a half-written figure is never left in place
    plt.close(fig)
    return '![noise.png](noise.png)'


def first(runs, name, get):
    """The mean over seeds of get, or None if the run is missing or has no value."""
    xs = values(runs.get(name, []), get)
    return mean(xs) if xs else None


def compare_to_ce(runs, names, kinds, n_test):
    """[(name, test acc, Δ to ce, beyond noise)] for the runs of the given systems."""
    ce = first(runs, 'ce', final('test_acc'))
    out = []
    for name in (n for n in names if split_name(n)[0] in kinds):
        acc = first(runs, name, final('test_acc'))
        if acc is not None and ce is not None:
            out.append((name, acc, acc - ce, beyond_noise(acc, ce, n_test)))
    return ce, out


def better_than_ce_sentence(runs, names, kinds, n_test, claim, source):
    """One sentence: did any run of these systems beat cross-entropy's test accuracy?"""
    ce, rows = compare_to_ce(runs, names, kinds, n_test)
    if not rows:
        return f'{source}: no finished run, so the claim ({claim}) was not tested here.'
    wins = [r for r in rows if r[2] > 0 and r[3]]
    parts = ', '.join(f'{label(n)}: {100 * a:.1f}% ({100 * d:+.1f} points)' for n, a, d, _ in rows)
    verdict = (
        f'held for {", ".join(label(r[0]) for r in wins)}'
        if wins
        else 'was not borne out (no setting beat cross-entropy beyond the test-set noise)'
    )
    return f'**Claim ({source}: {claim}) {verdict}** here: cross-entropy {100 * ce:.1f}%, {parts}.'


def rll_section(runs, names, n_test, classes):
    chance = 1 / classes
    rows = []
    label_runs = sorted(
        (n for n in runs if n[:3] in ('p0-', 'p1-')), key=lambda n: (n[:2], n[3:] != 'ce', n)
    )
    for name in label_runs:
        seeds = runs[name]
        what = 'clean' if name.startswith('p0-') else 'fully random (label noise 1)'
        fitted, test = pct(values(seeds, final('train_acc'))), pct(values(seeds, final('test_acc')))
        rows.append([what, label(name[3:]), fitted, test, status(seeds)])
    ce_random = first(runs, 'p1-ce', final('train_acc'))
    rll_random = [(n, first(runs, n, final('train_acc'))) for n in label_runs if n[:7] == 'p1-rll-']
    ce_clean = first(runs, 'p0-ce', final('test_acc'))
    rll_clean = [(n, first(runs, n, final('test_acc'))) for n in label_runs if n[:7] == 'p0-rll-']
    sentences = []
    if ce_random is not None and rll_random and rll_random[0][1] is not None:
        name, acc = rll_random[0]
        held = ce_random >= 0.9 and acc <= 2 * chance
        sentences.append(
            f'on fully random labels cross-entropy fits {100 * ce_random:.1f}% of the training '
            f'labels and {label(name[3:])} {100 * acc:.1f}% ({100 * (ce_random - acc):.1f} points '
            f'fewer; chance {100 * chance:.0f}%): '
            + ('held' if held else 'was not borne out')
            + ' (criterion: cross-entropy ≥ 90%, RLL ≤ twice chance)'
        )
    if ce_clean is not None and rll_clean and rll_clean[0][1] is not None:
        name, acc = rll_clean[0]
        worse = acc < ce_clean and beyond_noise(acc, ce_clean, n_test)
        sentences.append(
            f'on clean labels {label(name[3:])} reaches {100 * acc:.1f}% test accuracy against '
            f"cross-entropy's {100 * ce_clean:.1f}%: "
            + ('it learns, but worse beyond the test noise' if worse else 'held, it still learns')
        )
    header = ['class labels', 'loss', 'train acc (on the given labels)', 'test acc', 'status']
    rll_table = table(header, rows)
    if not sentences:
        return rll_table, 'The RLL claim was not tested here (no p0-/p1- runs).'
    noisy = better_than_ce_sentence(
        runs,
        names,
        ('rll',),
        n_test,
        'a symmetric loss resists label noise',
        'Patel & Sastry 2021, under label noise 0.4',
    )
    return rll_table, f'**Claim (Patel & Sastry 2021):** {"; ".join(sentences)}. {noisy}'


def group_mean_se(x):
    x = x[~x.isnan()].double()
    return x.mean().item(), (x.std() / math.sqrt(len(x))).item(), len(x)


def epoch_to_half(history, key):
    """First epoch at which the accuracy reaches half of its last value, or None."""
    last = history[-1][key]
    if last is None or last <= 0:
        return None
    return next(h['epoch'] for h in history if h[key] is not None and h[key] >= last / 2)


def tod_section(runs, names):
    tod_runs = [n for n in names if split_name(n)[0] == 'tod' and done(runs[n])]
    if not tod_runs:
        return 'No finished turn-over dropout run: the claims were not tested here.'
    result = done(runs[tod_runs[0]])[0]
    per_sample, history = result.get('tod'), result['history']
    lines = []
    if per_sample is None or not per_sample['noisy'].any():
        return 'The turn-over dropout run has no per-sample file or no noisy samples.'
    noisy = per_sample['noisy']
    si = per_sample['self_influence']
    c_mean, c_se, c_n = group_mean_se(si[~noisy])
    n_mean, n_se, n_n = group_mean_se(si[noisy])
    held = n_mean - c_mean > Z95 * math.hypot(c_se, n_se)
    lines.append(
        f'Self-influence (loss form, L(1 − m) − L(m)): clean {c_mean:+.3f} ± {c_se:.3f} (n={c_n}), '
        f'noisy {n_mean:+.3f} ± {n_se:.3f} (n={n_n}) (mean ± standard error); '
        f'accuracy form: clean {result["final"]["self_influence_acc"]["clean"]:+.3f}, '
        f'noisy {result["final"]["self_influence_acc"]["noisy"]:+.3f}.'
    )
    e_clean = epoch_to_half(history, 'train_acc_clean')
    e_noisy = epoch_to_half(history, 'train_acc_noisy')
    quarter = history[: max(1, len(history) // 4)]
    early = [h['self_influence']['noisy'] for h in quarter]
    early_clean = [h['self_influence']['clean'] for h in quarter]
    at_once = max(early) > 0 and max(early_clean) > 0
    lines.append(
        f"Fitting order (accuracy through each sample's own mask): clean samples reach half their "
        f'final training accuracy in epoch {e_clean}, noisy ones in epoch {e_noisy}; in the first '
        f'quarter of training the self-influence of noisy samples peaks at {max(early):+.3f} and '
        f'of clean ones at {max(early_clean):+.3f}.'
    )
    test = result['final'].get('test_influence')
    hard_easy = None
    if test and test.get('control_hard') is not None:
        gap = test['hard'] - test['easy']
        control = test['control_hard'] - test['control_easy']
        noise = Z95 * math.hypot(
            test['hard_se'], test['easy_se'], test['control_hard_se'], test['control_easy_se']
        )
        hard_easy = gap - control > noise
        lines.append(
            'Influence on the test loss of the same class, mean ± standard error over samples: '
            f'hard clean samples (top quarter by their loss averaged over mask and flipped mask, '
            f'n={test["n_per_group"]}) {test["hard"]:+.3f} ± {test["hard_se"]:.3f}, easy ones '
            f'(bottom quarter) {test["easy"]:+.3f} ± {test["easy_se"]:.3f}; control, the same '
            f'groups scored with permuted masks: {test["control_hard"]:+.3f} ± '
            f'{test["control_hard_se"]:.3f} and {test["control_easy"]:+.3f} ± '
            f'{test["control_easy_se"]:.3f}.'
        )
    claims = [
        f'noisy samples have the higher self-influence {"held" if held else "was not borne out"} '
        f'({n_mean - c_mean:+.3f})',
        'clean samples are fitted earlier, both from the start '
        + (
            'held'
            if e_clean is not None and e_noisy is not None and e_clean < e_noisy and at_once
            else 'was not borne out'
        )
        + f' (epoch {e_clean} against {e_noisy})',
    ]
    if hard_easy is not None:
        claims.append(
            'hard correctly labelled samples influence test samples more '
            + ('held' if hard_easy else 'was not borne out')
            + f' (hard − easy {gap:+.3f}, with permuted masks {control:+.3f})'
        )
    lines.append(
        '**Claims (Kobayashi et al. 2020; Liu, Lin & Jaggi 2021): ' + '; '.join(claims) + '.**'
    )
    return '\n\n'.join(lines)


def confusion_section(runs, names, n_probe, K):
    """Confusion against reg and grl: the online head at chance (not below), and a_train -
    a_fresh bounded near 0 (what the features hold of r beyond labels nobody used)."""
    chance = 1 / K
    half = Z95 * math.sqrt(chance * (1 - chance) / max(1, n_probe))  # binomial noise at chance
    rows = []
    for n in names:
        online = first(runs, n, final('rand_acc', TAP))
        if split_name(n)[0] in UNLEARNING and online is not None:
            rows.append((n, online, estimate(runs[n], 'specific')))
    conf = [r for r in rows if split_name(r[0])[0] == 'confusion']
    if not conf:
        return 'No finished confusion run: the claim was not tested here.'
    below = [r for r in rows if split_name(r[0])[0] != 'confusion' and r[1] < chance - half]

    def ok(online, specific):
        return abs(online - chance) <= half and (specific is None or specific['ci'][0] <= 0)

    held = [label(n) for n, o, e in conf if ok(o, e)]
    verdict = f'was not contradicted for {", ".join(held)}' if held else 'was contradicted'
    text = '; '.join(
        f'{label(n)}: online {100 * o:.1f}%, ' + (bounded('a_train − a_fresh', e) if e else '—')
        for n, o, e in conf
    )
    return (
        f'**Claim (Alvi et al. 2018: confusion leaves the head at chance without making it '
        f'confidently wrong, and writes no random labels into the features) {verdict}** here '
        f'({text}; chance {100 * chance:.0f}% ± {100 * half:.1f}); for comparison {len(below)} of '
        'the reg/grl runs pushed the online head below chance.'
    )


def m_sentence(runs, names):
    """Does the random-label estimate follow the label noise each system memorized? Over the runs
    that do not train f against the random labels (unlearning writes r into the features)."""
    plain = [n for n in names if split_name(n)[0] not in UNLEARNING]
    pairs = [
        (first(runs, n, final('train_acc_noisy')), estimate(runs[n], 'memorization')) for n in plain
    ]
    pairs = [(a, m['mean']) for a, m in pairs if a is not None and m is not None]
    rho = spearman([a for a, _ in pairs], [m for _, m in pairs])
    ce = estimate(runs['ce'], 'memorization') if 'ce' in runs else None
    rho_text = f'{rho:+.2f}' if rho is not None else 'undefined'
    held = ce is not None and ce['ci'][0] > 0 and rho is not None and rho > 0
    bound = bounded('its m', ce) if ce is not None else 'its m is unmeasured'
    above = [label(n) for n in names if (e := estimate(runs[n], 'specific')) and e['ci'][0] > 0]
    memorized = 100 * (first(runs, 'ce', final('train_acc_noisy')) or math.nan)
    return (
        f'**Claim (Becker & Risse 2024; Becker et al. 2026: random-label decodability measures '
        f'memorization) {"held" if held else "was not borne out"} here:** cross-entropy '
        f'memorizes {memorized:.1f}% of the noisy labels while {bound}; across the '
        f'{len(pairs)} runs that do not unlearn, the rank correlation between memorized noise '
        f'(train acc, noisy) and m is {rho_text}. a_train − a_fresh is above 0 for '
        f'{", ".join(above) if above else "no run"}: where the features hold r itself.'
    )


def noise_report(folder):
    runs = load_runs(folder)
    names = run_order(runs)
    assert names, f'{folder} holds no run of the label-noise study (ce, rll-…, limit-…, tod, …)'
    anchor = done(runs['ce'] if 'ce' in runs else runs[names[0]]) or runs[names[0]]
    first_run = anchor[0]
    cfg, data = first_run['config'], first_run.get('data', {})
    n_test = data.get('n_test', 1000)
    classes = data.get('num_classes', 10)
    seeds = sorted({r['config']['seed'] for rs in runs.values() for r in rs})
    minutes = sum(h['seconds'] for rs in runs.values() for r in rs for h in r['history']) / 60
    n_probe = (first_run.get('probe') or {}).get('n', data.get('n_train', 0))
    parts = [
        f'# Related systems under label noise: `{folder}`',
        f'Model **{cfg["model"]}**, data **{cfg["dataset"]}** ({data.get("n_train", "?")} training '
        f'/ {n_test} test images, {classes} classes), class-label noise **{cfg["label_noise"]}** '
        f'({data.get("noisy_labels", "?")} labels changed), **{cfg["epochs"]}** epochs, '
        f'seeds {seeds} (n={len(seeds)}), on {first_run["env"]["device"]} '
        f'(torch {first_run["env"]["torch"]}); {sum(map(len, runs.values()))} runs, '
        f'{minutes:.1f} minutes of training in all.',
        prose(f"""**Reading the table.** Train acc, clean / noisy: accuracy on the training labels
            of the samples label noise left alone / changed (noisy: how much noise was memorized;
            chance {100 / classes:.0f}%). Fresh linear heads fitted on the frozen penultimate
            features (probe.json; K = {cfg['random_labels']}, chance
            {100 / cfg['random_labels']:.0f}%): a_train on n training samples with their random
            labels, a_fresh on the same features with labels nobody trained on, a_heldout on n
            held-out images, a_init at initialization (capacity floor). m = a_fresh − a_heldout,
            the memorization estimate; a_train − a_fresh: how much of r itself the features
            hold. Online head: the random-label head trained alongside. Self-influence: L(1 −
            m(i)) − L(m(i)) under turn-over dropout (tod.py), mean over clean and noisy
            samples."""),
        '## Every system, label noise ' + str(cfg['label_noise']),
        main_table(runs, names),
        figure(runs, names, folder),
        m_sentence(runs, names),
    ]
    rll_table, rll_text = rll_section(runs, names, n_test, classes)
    parts += [
        '## Robust log loss (Patel & Sastry 2021)',
        'A symmetric loss: its sum over all labels is a constant, so uniformly random labels give '
        'nothing to fit. Table 2: cross-entropy and RLL on clean and fully random class labels.',
        rll_table,
        rll_text,
        '## LIMIT (Harutyunyan et al. 2020)',
        'The classifier learns from the gradient a second network predicts from x alone.',
        better_than_ce_sentence(
            runs,
            names,
            ('limit',),
            n_test,
            'better test accuracy than cross-entropy under label noise',
            'Harutyunyan et al. 2020',
        ),
        '## Turn-over dropout (Kobayashi et al. 2020; Liu, Lin & Jaggi 2021)',
        tod_section(runs, names),
        '## Confusion unlearning (Alvi et al. 2018)',
        'The frozen head is pushed toward uniform output: the online head should sit at chance, '
        'not below it, and the features should hold no more of r than of labels nobody used.',
        confusion_section(runs, names, n_probe, cfg['random_labels']),
        "## The seed papers' unlearning (`reg`, `grl`)",
        'The random-label heads with unlearning: the output regularizer (ICLR paper) and gradient '
        'reversal (workshop paper). The ICLR paper finds that on clean CIFAR-100 the regularizer '
        'does not improve test accuracy, but with label noise it does.',
        better_than_ce_sentence(
            runs,
            names,
            ('reg', 'grl'),
            n_test,
            'with label noise, unlearning the random labels improves test accuracy',
            'Becker et al. 2026',
        ),
    ]
    path = os.path.join(folder, 'report.md')
    with open(path + '.tmp', 'w') as f:
        f.write('\n\n'.join(parts) + '\n')
    os.replace(path + '.tmp', path)
    print(f'wrote {path}')


def main(argv=None):
    p = plumbing.Parser('noise_report', __doc__)
    p.add_argument('folder', help='the study folder, e.g. results/noise')
    folder = p.parse_args(argv).folder
    if not os.path.isdir(folder) or not run_order(load_runs(folder)):
        p.error(
            f'{folder} holds no run of the label-noise study (ce, rll-…, tod, …); run make noise'
        )
    noise_report(folder)


if __name__ == '__main__':
    main()
