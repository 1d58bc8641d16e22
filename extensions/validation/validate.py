"""Does the random-label estimate measure memorization? python -m extensions.validation.validate DIR

`make validate` trains, per setting (label noise p, training-set size n), networks with
train_half.py on halves of seeded pools of 2n images: halves 2k and 2k + 1 of pool k (label seed k)
are complementary, so every pool image is in exactly one network of its pair, and each pair has its
own pool, random labels and noise draw. From the same networks this report computes
  m      the memorization estimate a_fresh - a_heldout at every tap (probe.json, metrics.controls),
         over the networks with a random-effects interval (metrics.across_networks);
  mem    the leave-out memorization of Feldman & Zhang 2020 (leaveout.py) of every pool image,
         averaged over each pool and then over the pairs;
and the controls that make a null result informative: the positive control (`--memorize`: a fresh
head must read a_train - a_fresh > 0), the positive control for m (feature_control.py: known
differences between training and held-out features), a_fresh against a_init and the capacity map
(capacity.py), and the workshop paper's per-class heads at 500 samples per head. Every sentence is
computed from the intervals' bounds (extensions/report/markdown.bounded); validation.json keeps
its contract (README.md of this folder).
"""

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

import data as data_lib  # noqa: E402
import plumbing  # noqa: E402
import train as train_lib  # noqa: E402
from extensions.report.markdown import bounded, prose, save, smallest, table  # noqa: E402
from metrics import interval, interval_words, measure  # noqa: E402

from . import capacity as capacity_lib  # noqa: E402
from .feature_control import EMBED_NOISE, feature_control  # noqa: E402
from .leaveout import feldman_zhang, mean_and_error, spearman, spearman_exact  # noqa: E402
from .pools import lit_per_network, over_pools  # noqa: E402
from .train_half import half_of  # noqa: E402

TAP = 'penultimate'


class ValidateError(Exception):
    """A folder that is not a finished validation study: one line, exit code 2."""


# --- the networks ---------------------------------------------------------------------------------


def load_runs(folder):
    """{setting: [{'dir', 'results', 'probe'}]}, settings and networks in order."""
    settings = {}
    for path in sorted(glob.glob(os.path.join(folder, '*', 'half*', 'results.json'))):
        run_dir = os.path.dirname(path)
        with open(path) as f:
            results = json.load(f)
        probe_path = os.path.join(run_dir, 'probe.json')
        if results['status'] != 'done' or not os.path.exists(probe_path):
            raise ValidateError(f'{run_dir} diverged or has no probe.json; run make validate')
        with open(probe_path) as f:
            run = {'dir': run_dir, 'results': results, 'probe': json.load(f)}
        settings.setdefault(os.path.basename(os.path.dirname(run_dir)), []).append(run)
    return settings


def network(run, device):
    """(config, the pool's Data, the half's Data, trained network, initial network)."""
    cfg = train_lib.build_parser().parse_args([])
    vars(cfg).update({k: v for k, v in run['results']['config'].items() if k in vars(cfg)})
    pool = train_lib.load_data(cfg)
    half = run['results']['config'].get('half')
    data = pool if half is None else half_of(pool, cfg.label_seed, half)
    model, init_model = (train_lib.build_model(cfg, data, device) for _ in range(2))
    path = os.path.join(run['dir'], 'checkpoint.pt')
    model.load_state_dict(torch.load(path, map_location=device, weights_only=False)['model'])
    return cfg, pool, data, model.eval(), init_model.eval()


# --- the numbers ----------------------------------------------------------------------------------


def pools_of(runs):
    """The pool of each network: its label seed (halves 2k and 2k + 1 share pool k)."""
    return [r['results']['config']['label_seed'] for r in runs]


def combine(probes, pools):
    """Per tap: the networks' mean accuracies, and m, a_train - a_fresh (specific) and a_fresh -
    a_init (trained) with intervals whose unit is the pool (pools.over_pools: the halves of a
    pool averaged, t with pools - 1 degrees of freedom); `specific_each`: every network's own
    a_train - a_fresh interval (the positive control is judged per network)."""
    taps = {}
    for tap in probes[0]['taps']:
        rows = [p['taps'][tap] for p in probes]
        t = {
            k: statistics.mean(r[k] for r in rows)
            for k in ('a_train', 'a_fresh', 'a_heldout', 'a_init')
        }
        t['m'] = over_pools(
            [r['memorization'] for r in rows], [r['memorization_se'] for r in rows], pools
        )
        for key in ('specific', 'trained'):
            t[key] = over_pools([r[key] for r in rows], [r[f'{key}_se'] for r in rows], pools)
        t['specific_each'] = [r['specific_ci'] for r in rows]
        online = [r['online'] for r in rows if r['online'] is not None]
        t['online'] = statistics.mean(online) if online else None
        taps[tap] = t | {k: rows[0][k] for k in ('dim', 'samples_per_head')}
    return taps


def leave_out(runs, device):
    """Feldman & Zhang's memorization of one setting: per pair (its own pool), every pool image's
    mem(i), from each network's correctness on the pool seen as it was trained."""
    pairs = {}
    for run in runs:
        cfg, pool, data, model, _ = network(run, device)
        seen = data_lib.Data(**vars(pool) | {'mean': data.mean, 'std': data.std})
        batches = train_lib.eval_batches(seen, 'train', device)
        correct = train_lib.evaluate(model, batches, train_lib.objective, cfg)['correct']
        member = torch.isin(pool.train_index, data.train_index)
        pairs.setdefault(cfg.label_seed, []).append((correct, member, pool.train_noisy))
    every, noisy = [], []
    for pair in pairs.values():
        if len(pair) == 2:  # a lone half has no complement: no leave-out estimate
            mem = feldman_zhang(*(torch.stack([p[i] for p in pair]) for i in (0, 1)))
            every.append(mem)
            noisy.append(mem[pair[0][2]])
    (mean, se), (noisy_mean, noisy_se) = mean_and_error(every), mean_and_error(noisy)
    out = {'fz_memorization': mean, 'fz_memorization_se': se, 'fz_models': 2 * len(every)}
    return out | {'fz_memorization_noisy': noisy_mean, 'fz_memorization_noisy_se': noisy_se}


def setting(name, runs, device):
    finals = [r['results']['final'] for r in runs]
    config = runs[0]['results']['config']
    noisy = [f['train_acc_noisy'] for f in finals if f['train_acc_noisy'] is not None]
    return {
        'name': name,
        'label_noise': config['label_noise'],
        'subset': runs[0]['results']['data']['n_train'],  # images each network trains on
        'rlp_head': config['rlp_head'],
        'seeds': [r['results']['config']['seed'] for r in runs],
        'train_acc': statistics.mean(f['train_acc'] for f in finals),
        'train_acc_noisy': statistics.mean(noisy) if noisy else None,
        'test_acc': statistics.mean(f['test_acc'] for f in finals),
        'taps': combine([r['probe'] for r in runs], pools_of(runs)),
        **leave_out(runs, device),
    }


def shared_heads(runs, device):
    """The per-class setting's networks measured with a shared head: same features, other layout."""
    probes = []
    for run in runs:
        cfg, _, data, model, init_model = network(run, device)
        args = (cfg.random_labels, 'shared', train_lib.probe_seed(cfg), device)
        probes.append(measure(model, init_model, data, *args))
    return combine(probes, pools_of(runs))


# --- words ----------------------------------------------------------------------------------------


def span(e):
    """An estimate in points, '+0.3 [-0.8, +1.2]'."""
    lo, hi = e['ci']
    return f'{100 * e["mean"]:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]'


def bounds(estimates):
    """The smallest interval holding every estimate's interval, in points."""
    lo, hi = min(e['ci'][0] for e in estimates), max(e['ci'][1] for e in estimates)
    return f'[{100 * lo:+.1f}, {100 * hi:+.1f}]'


def strongest(feature, design):
    return max((f for f in feature if f['design'] == design), key=lambda f: f['strength'])


def verdict(settings, control, feature, per_class):
    """The study's finding, in sentences computed from its intervals' bounds."""
    ms = [s['taps'][TAP]['m'] for s in settings]
    trained = [s['taps'][TAP]['trained'] for s in settings]
    fz = [s['fz_memorization'] for s in settings if s['fz_memorization'] is not None]
    held = sum(interval_words(*m['ci']) == 'holds 0' for m in ms)
    fit = slope([m['mean'] for m in ms], [s['fz_memorization'] for s in settings])
    text = prose(f"""Across the {len(settings)} settings the leave-out memorization ranges from
        {min(fz):.2f} to {max(fz):.2f}, while m at the penultimate tap holds 0 in {held} of them;
        every interval lies within {bounds(ms)} points, and an m of {max(map(smallest, ms)):.1f}
        points would have been detected in the least precise setting. a_fresh − a_init, what
        training added to the room for labels, lies within {bounds(trained)} points""")
    off = [
        s['name']
        for s, e in zip(settings, trained, strict=True)
        if interval_words(*e['ci']) != 'holds 0'
    ]
    text += f' (off 0 in {", ".join(off)}).' if off else ' (it holds 0 in every setting).'
    if fit is not None:
        lo, hi = fit['range']
        what = f"m's change from leave-out memorization {lo:.2f} to {hi:.2f} (a fitted line)"
        text += f' {bounded(what, fit["change"])}.'
    text += ' ' + positive_control_sentence(control['taps'][TAP])
    rank, embedding = strongest(feature, 'rank'), strongest(feature, 'embedding')
    whats = {
        'rank': f'training features carry {rank["strength"]:.0%} more dimensions than held-out',
        'embedding': f'{100 * embedding["fitted"]:.0f}% of relabeled samples are memorized through '
        'a per-sample embedding',
    }
    for f, what in zip((rank, embedding), whats.values(), strict=True):
        m = f['taps'][TAP]['memorization_est']
        seen = ': m sees it' if m['ci'][0] > 0 else ''
        text += f' When {what}, {bounded("m", m)}{seen}.'
    if per_class:
        pc, shared = per_class['taps'][TAP], per_class['shared'][TAP]
        text += ' ' + prose(f"""With per-class heads ({pc['samples_per_head']:.0f} samples per head)
            m = {span(pc['m'])}; with a shared head on these networks, {span(shared['m'])}.""")
    return text


def slope(ms, fz):
    """m against leave-out memorization across the settings: the least-squares slope, and the
    change it implies over the observed range of leave-out memorization, with its 95% interval
    (t with settings - 2 degrees of freedom; the residuals carry m's own error and the settings'
    spread). None with fewer than 3 settings."""
    pairs = [(m, x) for m, x in zip(ms, fz, strict=True) if x is not None]
    ms, fz, k = [m for m, _ in pairs], [x for _, x in pairs], len(pairs)
    if k < 3:
        return None
    x_mean, y_mean = statistics.fmean(fz), statistics.fmean(ms)
    sxx = sum((x - x_mean) ** 2 for x in fz)
    b = sum((x - x_mean) * (y - y_mean) for x, y in zip(fz, ms, strict=True)) / sxx
    residual = sum((y - y_mean - b * (x - x_mean)) ** 2 for x, y in zip(fz, ms, strict=True))
    se = math.sqrt(residual / (k - 2) / sxx)
    span_ = max(fz) - min(fz)
    change = {'mean': b * span_, 'se': se * span_, 'n': k - 1, 'df': k - 2}
    change['ci'] = interval(b * span_, se * span_, k - 2)
    return {'slope': b, 'slope_se': se, 'range': [min(fz), max(fz)], 'change': change}


def positive_control_sentence(t):
    """The positive control, judged per network by its own interval, with the chance that every
    network lights up when none holds r; then the interval over the pools."""
    lit = lit_per_network(t['specific_each'])
    verdict = (
        'a fresh head finds r where f was trained on it'
        if lit['above'] == lit['networks']
        else 'NOT lit in every network'
    )
    return prose(f"""The positive control (--memorize): a_train − a_fresh lies above 0 in
        {lit['above']} of {lit['networks']} networks, each by its own interval (were r in none of
        them, all {lit['networks']} would lie above 0 with a chance of {lit['chance_all']:.1g}):
        {verdict}. Over the {t['specific']['pools']} pools,
        {bounded('a_train − a_fresh', t['specific'])}.""")


def rank_sentence(n):
    """What Spearman's ρ over n settings can show (its exact permutation distribution)."""
    critical, p_one = spearman_exact(n)
    if critical is None:
        return prose(f"""With {n} settings no ρ can differ from 0 at 5%: even a perfect ordering
            (|ρ| = 1) has p = {p_one:.3f}.""")
    if critical >= 1:
        return prose(f"""With {n} settings only a perfect ordering differs from 0 at 5%: |ρ| = 1
            has p = {p_one:.3f}.""")
    return f'With {n} settings |ρ| ≥ {critical:.2f} differs from 0 at 5% (exact).'


# --- the report -----------------------------------------------------------------------------------


def pct(x):
    return '—' if x is None else f'{100 * x:.1f}'


def dose_response_figure(folder, settings, control, feature, noise_n):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    rows = sorted((s for s in settings if s['subset'] == noise_n), key=lambda s: s['label_noise'])
    x = [s['label_noise'] for s in rows]
    se = [s['fz_memorization_se'] or 0 for s in rows]
    axes[0].errorbar(
        x, [s['fz_memorization'] for s in rows], yerr=se, fmt='o-', capsize=3, label='all samples'
    )
    axes[0].set(xlabel=f'label noise p (n = {noise_n})', ylabel='leave-out memorization (F&Z)')
    axes[0].set_title('independent measure')
    for tap in rows[0]['taps']:
        m = [s['taps'][tap]['m'] for s in rows]
        line = axes[1].plot(x, [100 * e['mean'] for e in m], 'o-', label=f'm, {tap}')[0]
        lo, hi = ([100 * e['ci'][i] for e in m] for i in (0, 1))
        axes[1].fill_between(x, lo, hi, color=line.get_color(), alpha=0.15)
    specific = 100 * control['taps'][TAP]['specific']['mean']
    axes[1].axhline(
        specific,
        color='red',
        ls='--',
        lw=1,
        label=f'--memorize: a_train − a_fresh ({specific:+.0f})',
    )
    axes[1].set(xlabel=f'label noise p (n = {noise_n})', ylabel='points (95% band over networks)')
    axes[1].set_title('m = a_fresh − a_heldout')
    for design, style in (('rank', 'o-'), ('embedding', 's-')):
        points = sorted((f for f in feature if f['design'] == design), key=lambda f: f['strength'])
        m = [f['taps'][TAP]['memorization_est'] for f in points]
        xs = [f['strength'] for f in points]
        line = axes[2].plot(xs, [100 * e['mean'] for e in m], style, label=f'm, {design}')[0]
        lo, hi = ([100 * e['ci'][i] for e in m] for i in (0, 1))
        axes[2].fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15)
    axes[2].set(xlabel='strength', ylabel='m (points, 95% band)', title='known differences, no r')
    for ax in axes:
        ax.axhline(0, color='black', lw=0.8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save(fig, folder, 'dose-response.png')


def markdown(folder, runs, settings, control, feature, per_class, rho, capacity, sentence):
    first = next(iter(runs.values()))[0]['results']
    cfg, env = first['config'], first['env']
    histories = [r['results']['history'] for group in runs.values() for r in group]
    minutes = sum(h['seconds'] for history in histories for h in history) / 60
    noise_n = statistics.mode(s['subset'] for s in settings)
    taps = list(settings[0]['taps'])
    accuracies = ('a_train', 'a_fresh', 'a_heldout', 'a_init')
    parts = [
        f'# Validation of the random-label memorization estimate: `{folder}`',
        prose(f"""Model **{cfg['model']}** on **{cfg['dataset']}**, {cfg['epochs']} epochs, batch
            {cfg['batch_size']}, lr {cfg['lr']}, no weight decay or augmentation, K =
            {cfg['random_labels']}, `{cfg['rlp_head']}` heads at every tap; per setting, networks on
            complementary halves of seeded pools of 2n images (one pool, random-label and noise
            draw per pair); on {env['device']} (torch {env['torch']}), {minutes:.1f} minutes of
            training; commit {plumbing.commit()[:12]}."""),
        prose("""**How to read it.** a_train: a fresh head fitted to convergence on the training
            samples with their random labels (the papers' number, probed); a_fresh: the same
            features, labels nobody trained on; a_heldout: as many held-out samples; a_init: the
            untrained network (capacity floor). **m = a_fresh − a_heldout**, with a 95%
            random-effects interval over the networks (never narrower than their own errors
            imply); a_fresh − a_init: what training added to the room for labels. Leave-out
            memorization (Feldman & Zhang 2020): the mean over the pool
            of P[correct | trained on it] − P[correct | left out], ± its standard error over the
            pairs. Accuracies in %, differences in points."""),
        '## 1. Dose-response: label noise and training-set size',
    ]
    header = ['setting', 'networks', 'train acc (noisy labels)', 'test acc', 'leave-out mem.']
    header += ['on noisy samples', *accuracies, 'online head', 'm [95%]', 'a_fresh − a_init [95%]']
    rows = []
    for s in settings:
        t, se = s['taps'][TAP], s['fz_memorization_se']
        fz = f'{s["fz_memorization"]:.3f}' + (f' ± {se:.3f}' if se else '')
        noisy = '—' if s['fz_memorization_noisy'] is None else f'{s["fz_memorization_noisy"]:.3f}'
        fitted = f'{pct(s["train_acc"])} ({pct(s["train_acc_noisy"])})'
        rows.append([s['name'], len(s['seeds']), fitted, pct(s['test_acc']), fz, noisy])
        rows[-1] += [pct(t[k]) for k in accuracies] + [pct(t['online']), span(t['m'])]
        rows[-1].append(span(t['trained']))
    parts.append(table(header, rows))
    rows = [[s['name'], *(span(s['taps'][t]['m']) for t in taps)] for s in settings]
    parts.append(table(['setting', *(f'm at {t}' for t in taps)], rows))
    parts.append(dose_response_figure(folder, settings, control, feature, noise_n))
    parts.append('## 2. Positive control: f trained on r (`--memorize`)')
    header = ['tap', *accuracies, 'm [95%]', 'a_train − a_fresh [95%]']
    rows = [
        [tap, *(pct(t[k]) for k in accuracies), span(t['m']), span(t['specific'])]
        for tap, t in control['taps'].items()
    ]
    parts.append(table(header, rows))
    parts.append(
        '## 3. Positive control for m: training features that differ in a known way (no r)'
    )
    parts.append(
        prose(f"""**rank**: k = strength · D extra feature dimensions (Gaussian) that only
        the training samples have. **embedding**: a per-sample vector added to z, learned through
        the frozen class head so that g fits labels of which {EMBED_NOISE:.0%} were replaced at
        random, scaled by the strength: memorization through a path only training samples have.
        Penultimate tap of the clean-label networks, 1000 samples a side, K = 2.""")
    )
    header = ['design', 'strength', 'relabeled samples fitted', 'a_fresh', 'a_heldout', 'm [95%]']
    rows = []
    for f in feature:
        t = f['taps'][TAP]
        rows.append([f['design'], f'{f["strength"]:g}', pct(f['fitted']), pct(t['a_fresh'])])
        rows[-1] += [pct(t['a_heldout']), span(t['memorization_est'])]
    parts.append(table(header, rows))
    if per_class:
        parts += per_class_part(per_class, accuracies)
    parts.append('## 5. Rank correlation of m with leave-out memorization across settings')
    rows = [[t, '—' if r is None else f'{r:+.2f}'] for t, r in rho.items()]
    parts.append(table(['tap', 'Spearman ρ'], rows))
    parts.append(rank_sentence(len(settings)))
    parts += ['## 6. Capacity map', capacity_lib.figure(folder, capacity)]
    parts += [capacity_lib.sentence(capacity), '## Verdict', sentence]
    return '\n\n'.join(parts) + '\n'  # blocks apart; a table's rows stay together


def per_class_part(per_class, accuracies):
    rows = []
    for name, t in (
        ('per-class', per_class['taps'][TAP]),
        ('shared, these networks', per_class['shared'][TAP]),
    ):
        rows.append([name, f'{t["samples_per_head"]:.0f}', *(pct(t[k]) for k in accuracies)])
        rows[-1] += [span(t['m']), span(t['specific'])]
    header = ['heads', 'samples per head', *accuracies, 'm [95%]', 'a_train − a_fresh [95%]']
    text = prose(f"""Setting {per_class['name']}: {len(per_class['seeds'])} networks, leave-out
        memorization {per_class['fz_memorization']:.3f}, test accuracy
        {pct(per_class['test_acc'])}%.""")
    if 'positive_control' in per_class:
        t = per_class['positive_control'][TAP]
        text += f' Its positive control reads a_train − a_fresh = {span(t["specific"])} points.'
    return ["## 4. Per-class heads (the workshop paper's layout)", table(header, rows), text]


def contract(taps):
    """validation.json's per-tap numbers (its contract), with the extra estimates beside them."""
    out = {}
    for tap, t in taps.items():
        m = t.get('m') or t['memorization_est']
        out[tap] = {k: t[k] for k in ('a_train', 'a_fresh', 'a_heldout', 'a_init')}
        out[tap] |= {
            'memorization': m['mean'],
            'memorization_ci': m['ci'],
            'networks': m.get('networks', m['n']),
            'pools': m.get('pools'),
            'between_sd': m['between_sd'],
            'within_se': m['within_se'],
        }
        for extra in ('specific', 'trained'):
            if extra in t:
                out[tap] |= {extra: t[extra]['mean'], f'{extra}_ci': t[extra]['ci']}
    return out


def setting_contract(s):
    keep = (
        'label_noise',
        'subset',
        'rlp_head',
        'seeds',
        'train_acc',
        'train_acc_noisy',
        'test_acc',
    )
    fz = {k: v for k, v in s.items() if k.startswith('fz_')}
    return {k: s[k] for k in keep} | fz | {'taps': contract(s['taps'])}


def report(folder, device='cpu'):
    runs = load_runs(folder)
    plain = [n for n in runs if 'memorize' not in n and not n.startswith('perclass')]
    memorize = [n for n in runs if n.startswith('memorize')]
    if not plain or not memorize:
        missing = 'the positive control' if not memorize else 'a setting'
        raise ValidateError(f'{folder} lacks {missing}; run make validate')
    device = torch.device(device)
    noise = {n: runs[n][0]['results']['config']['label_noise'] for n in plain}
    settings = sorted(
        (setting(n, runs[n], device) for n in plain), key=lambda s: (s['label_noise'], s['subset'])
    )
    control = {
        'taps': combine([r['probe'] for r in runs[memorize[0]]], pools_of(runs[memorize[0]]))
    }
    clean = min(plain, key=noise.get)
    clean_networks = [network(r, device) for r in runs[clean]]
    pools = pools_of(runs[clean])
    feature = feature_control([(net[3], net[2]) for net in clean_networks], device, pools)
    per_class = None
    if pc := [n for n in runs if n.startswith('perclass') and 'memorize' not in n]:
        per_class = setting(pc[0], runs[pc[0]], device) | {
            'shared': shared_heads(runs[pc[0]], device)
        }
        if pc_control := [n for n in runs if n.startswith('perclass') and 'memorize' in n]:
            pc_runs = runs[pc_control[0]]
            per_class['positive_control'] = combine(
                [r['probe'] for r in pc_runs], pools_of(pc_runs)
            )
    fz = [s['fz_memorization'] for s in settings]
    rho = {t: spearman([s['taps'][t]['m']['mean'] for s in settings], fz) for t in control['taps']}
    networks = [
        network(runs[n][0], device) for n in (clean, max(plain, key=noise.get), memorize[0])
    ]
    capacity = {
        'at_init': capacity_lib.at_init(
            networks[0][4], networks[0][1].heldout_x[:4000], networks[0][2], device
        ),
        'trained': {
            name: capacity_lib.trained_curve(net[3], net[2], device)
            for name, net in zip(
                ('clean labels', 'random class labels', 'positive control'), networks, strict=True
            )
        },
    }
    sentence = verdict(settings, control, feature, per_class)
    commit = plumbing.commit()
    out = {
        'settings': [setting_contract(s) for s in settings],
        'positive_control': contract(control['taps']),
        'feature_control': [
            {k: f[k] for k in ('design', 'strength', 'fitted')} | {'taps': contract(f['taps'])}
            for f in feature
        ],
        'per_class': setting_contract(per_class) | {'shared': contract(per_class['shared'])}
        if per_class
        else None,
        'spearman': rho,
        'slope': slope([s['taps'][TAP]['m']['mean'] for s in settings], fz),
        'commit': commit,
        'verdict': sentence,
    }
    plumbing.write_json(os.path.join(folder, 'capacity.json'), capacity | {'commit': commit})
    plumbing.write_json(os.path.join(folder, 'validation.json'), out)
    text = markdown(folder, runs, settings, control, feature, per_class, rho, capacity, sentence)
    path = os.path.join(folder, 'report.md')
    with open(path + '.tmp', 'w') as f:
        f.write(text)
    os.replace(path + '.tmp', path)
    print(sentence)
    print(f'wrote {path} and {os.path.join(folder, "validation.json")}')
    return out


def main(argv=None):
    p = plumbing.Parser('validate', __doc__)
    p.add_argument('folder', help='the validation study folder, e.g. results/validate')
    p.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'])
    args = p.parse_args(argv)
    if not os.path.isdir(args.folder):
        p.error(f'{args.folder} is not a folder; run make validate')
    cuda = args.device == 'cuda' or (args.device == 'auto' and torch.cuda.is_available())
    try:
        return report(args.folder, 'cuda' if cuda else 'cpu')
    except (data_lib.DataError, ValidateError) as e:
        print(f'validate: error: {e}', file=sys.stderr)
        sys.exit(2)


if __name__ == '__main__':
    main()
