"""Post-hoc probe: how much of the random labels can fresh heads read from a frozen network?

    python probe.py RUN_DIR            (a run folder of train.py; writes RUN_DIR/probe.json)

For every tap, the same fresh head (metrics.fit_heads) is fitted to convergence on the frozen
features of n training samples with their random labels (a_train, the papers' decodability), of
n held-out samples with their own random labels (a_heldout), of the n training samples through the
network at initialization (a_init, the capacity floor) and of the training samples with fresh
labels nobody trained on (a_fresh). m = a_train - a_heldout estimates memorization, with a 95%
interval from refits over fresh label draws (metrics.memorization). Held-out samples are training
images the run never trained on (same distribution, same label noise) where there are any, else the
test split; n is the smaller of the two sets, the same seeded subsample every time.

It also tells removal from hiding after unlearning: the online head may lag the features it is
fighting while a fresh head still reads the labels from them.
"""

import json
import os
import sys

import torch

import data as data_lib
import train as train_lib
from metrics import memorization

DRAWS = 16  # fresh label draws per fit: the spread of a fit, and the held-out average
PROBE_SEED = 12345  # seeds the subsample and the fresh draws: the same for every probe


class ProbeError(Exception):
    """Bad input to the probe: one line on stderr, exit code 2."""


def subsample(n_total, n, seed):
    """The same seeded n of n_total indices every time, in order."""
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n].sort().values


@torch.no_grad()
def tap_features(taps, x, mean, std, device, batch_size=512):
    """{tap: (N, D) float features on `device`} of uint8 images x, streamed in batches (eval
    mode, fp32). taps(x) returns the pooled features by tap name."""
    mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255
    std = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255
    feats = {}
    for i in range(0, len(x), batch_size):
        batch = (x[i : i + batch_size].to(device).float() - mean) / std
        for tap, z in taps(batch).items():
            feats.setdefault(tap, []).append(z.float())
    return {t: torch.cat(v) for t, v in feats.items()}


def capacity(dim, K, samples_per_head):
    """Cover's count: a linear head shatters about 2D samples per free logit (K - 1 of them)."""
    shatter = 2 * dim * (K - 1)
    return {'shatter': shatter, 'samples_per_shatter': samples_per_head / shatter}


def probe_network(model, init_model, train, heldout, mean, std, K, layout, n, device, online):
    """Every tap's memorization estimate with its controls.

    model / init_model: the trained and the initial network (model.Net); train, heldout:
    (x uint8, y, r) of n samples each. online: also read the network's own heads.
    """
    model.eval()
    init_model.eval()
    num_classes = model.fc.out_features
    feats_train = tap_features(model.features, train[0], mean, std, device)
    feats_heldout = tap_features(model.features, heldout[0], mean, std, device)
    feats_init = tap_features(init_model.features, train[0], mean, std, device)
    y_train, r_train = (t.to(device) for t in train[1:])
    y_heldout, r_heldout = (t.to(device) for t in heldout[1:])
    g = torch.Generator().manual_seed(PROBE_SEED + 1)
    fresh = torch.randint(K, (DRAWS, n), generator=g).to(device)  # shared by every tap
    per_head = n / (num_classes if layout == 'per-class' else 1)
    taps = {}
    for tap, z in feats_train.items():
        result = memorization(
            (z, y_train, r_train),
            (feats_heldout[tap], y_heldout, r_heldout),
            (feats_init[tap], y_train, r_train),
            K,
            num_classes,
            layout,
            fresh,
        )
        if online:
            with torch.no_grad():
                guess = model.rand_heads[tap](z, y_train).argmax(1)
            result['online'] = (guess == r_train).float().mean().item()
        else:
            result['online'] = None
        dim = z.shape[1]
        taps[tap] = {'dim': dim, 'samples_per_head': per_head, **result}
        taps[tap]['capacity'] = capacity(dim, K, per_head)
    return taps


def probe_run(run_dir, device='auto', data_dir=None):
    """Probe the final checkpoint of a finished run; writes RUN_DIR/probe.json atomically."""
    results_path = os.path.join(run_dir, 'results.json')
    if not os.path.exists(results_path):
        raise ProbeError(f'{run_dir} holds no results.json: give a finished run folder of train.py')
    with open(results_path) as f:
        results = json.load(f)
    if results['status'] != 'done':
        out = {'status': results['status']}  # a diverged network has nothing left to probe
        train_lib.write_json(os.path.join(run_dir, 'probe.json'), out)
        return out
    ckpt_path = os.path.join(run_dir, 'checkpoint.pt')
    if not os.path.exists(ckpt_path):
        raise ProbeError(f'{run_dir} holds no checkpoint.pt: rerun its train.py command')
    cfg = train_lib.build_parser().parse_args([])  # defaults for options newer than the run
    vars(cfg).update(results['config'], device=device)  # probe wherever we are
    if data_dir is not None:
        cfg.data_dir = data_dir
    dev = train_lib.pick_device(cfg)
    data = train_lib.load_data(cfg)
    init_model = train_lib.build_model(cfg, data, dev)  # seeded: the run's own initialization
    model = train_lib.build_model(cfg, data, dev)
    ckpt = torch.load(ckpt_path, map_location=dev, weights_only=False)
    model.load_state_dict(ckpt['model'])
    use_heldout = len(data.heldout_y) > 0
    split = 'heldout' if use_heldout else 'test'
    pool = [getattr(data, f'{split}_{k}') for k in 'xyr']
    n = min(len(data.train_y), len(pool[1]))
    keep_train = subsample(len(data.train_y), n, PROBE_SEED)
    keep_heldout = subsample(len(pool[1]), n, PROBE_SEED + 2)
    train = (data.train_x[keep_train], data.train_y[keep_train], data.train_r[keep_train])
    heldout = tuple(t[keep_heldout] for t in pool)
    args = (data.mean, data.std, cfg.random_labels, cfg.rlp_head, n, dev)
    taps = probe_network(model, init_model, train, heldout, *args, online=True)
    source = 'training images not trained on' if use_heldout else 'test split'
    out = {'status': 'done', 'n': n, 'draws': DRAWS, 'heldout': source, 'taps': taps}
    train_lib.write_json(os.path.join(run_dir, 'probe.json'), out)
    return out


def interval_words(lo, hi):
    if lo > 0:
        return 'above 0'
    if hi < 0:
        return 'below 0'
    return 'holds 0'


def table(result, K):
    """The probe's numbers as a readable table, with one sentence per tap."""
    lines = [
        f'n = {result["n"]} training and {result["n"]} held-out samples ({result["heldout"]}), '
        f'K = {K} (chance {100 / K:.1f}%), {result["draws"]} fresh label draws per fit',
        f'{"tap":<12} {"D":>5} {"per head":>8} {"a_train":>8} {"a_heldout":>9} {"a_init":>7} '
        f'{"a_fresh":>8} {"m [95% interval]":>24} {"online":>7} {"steps":>6}',
    ]
    for tap, t in result['taps'].items():
        lo, hi = t['memorization_ci']
        m = f'{100 * t["memorization"]:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]'
        online = f'{100 * t["online"]:.1f}' if t['online'] is not None else '—'
        steps = f'{t["steps"]}' + ('' if t['converged'] else '!')
        lines.append(
            f'{tap:<12} {t["dim"]:>5} {t["samples_per_head"]:>8.0f} {100 * t["a_train"]:>8.1f} '
            f'{100 * t["a_heldout"]:>9.1f} {100 * t["a_init"]:>7.1f} {100 * t["a_fresh"]:>8.1f} '
            f'{m:>24} {online:>7} {steps:>6}'
        )
    lines.append('accuracies in %; m = a_train - a_heldout in points; "!" marks an unconverged fit')
    for tap, t in result['taps'].items():
        words = interval_words(*t['memorization_ci'])
        sentence = f'{tap}: the interval of m {words}'
        if words == 'holds 0':
            sentence += ': training samples are not more decodable than held-out ones'
        if t['capacity']['samples_per_shatter'] < 1:
            sentence += '; WARNING: the head can shatter these labels (samples per head < 2D(K-1))'
        lines.append(sentence + '.')
    return '\n'.join(lines)


def main(argv=None):
    p = train_lib.Parser(prog='probe.py', description=__doc__.split('\n')[0])
    p.add_argument('run_dir', help='a finished run folder of train.py')
    p.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'])
    p.add_argument('--data-dir', default=None, help="where the data is (default: the run's)")
    args = p.parse_args(argv)
    try:
        result = probe_run(args.run_dir, args.device, args.data_dir)
    except (ProbeError, data_lib.DataError) as e:
        print(f'probe.py: error: {e}', file=sys.stderr)
        sys.exit(2)
    if result['status'] != 'done':
        print(f'{args.run_dir}: run {result["status"]}, nothing to probe')
        return result
    with open(os.path.join(args.run_dir, 'results.json')) as f:
        K = json.load(f)['config']['random_labels']
    print(table(result, K))
    print(f'wrote {os.path.join(args.run_dir, "probe.json")}')
    return result


if __name__ == '__main__':
    main()
