"""Post-hoc probe: how much of the random labels can fresh heads read from a frozen network?

    python probe.py RUN_DIR [--layers ...]                 a run folder of train.py
    python probe.py --arch resnet18 --checkpoint FILE (--dataset N | --train-dir A --heldout-dir B)
    probe.probe(model, train_data, heldout_data, layers)   any nn.Module, from Python

For every tap, the same fresh head (metrics.fit_heads) is fitted to convergence on the frozen
features of n training samples with their random labels (a_train, the papers' decodability), of
n held-out samples with their own random labels (a_heldout), of the n training samples through the
network at initialization (a_init, the capacity floor) and of the training samples with fresh
labels nobody trained on (a_fresh). m = a_train - a_heldout estimates memorization, with a 95%
interval from refits over fresh label draws (metrics.memorization). n is the smaller of the two
sets, the same seeded subsample every time. A linear head shatters about 2D(K-1) samples whatever
the network memorized (Cover 1965), so each tap reports its samples per head against that.

Taps are named layers of any network, found and pooled by model.py (tap_nodes, pool); a
run folder's default taps are its own (stage1 ... penultimate, as in training).

Data: a run folder's own (held-out = training images the run never trained on, else the test
split). For --arch: this repo's --dataset (training against test split, at its own size and
per-channel statistics, as train.py feeds it), or two image folders with the architecture's own
resize and normalization (its default weights' transforms; no weights are downloaded), with
random labels drawn once per sample from a CPU generator seeded by --label-seed. Images are
streamed in batches; only pooled features stay on the device. The capacity floor is the same
architecture re-initialized: a run's own seeded initialization, or the architecture built afresh
under --seed.

After unlearning it tells removal from hiding: the online head may lag the features it is
fighting while a fresh head still reads the labels from them.
"""

import copy
import difflib
import json
import os
import sys

import torch
import torch.nn as nn
import torchvision
from torch.utils.data import DataLoader, Subset, TensorDataset

import data as data_lib
import train as train_lib
from metrics import interval_words, memorization
from model import (
    TapError,
    extractor,
    layer_names,
    pool,
    reinitialized,
    resolve_layers,
)

DRAWS = 16  # fresh label draws per fit: the spread of a fit, and the held-out average
PROBE_SEED = 12345  # seeds the subsample and the fresh draws: the same for every probe
ARCHS = torchvision.models.list_models(module=torchvision.models)  # the classification networks


class ProbeError(Exception):
    """Bad input to the probe: one line on stderr, exit code 2."""


def subsample(n_total, n, seed):
    """The same seeded n of n_total indices every time, in order."""
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n].sort().values


def capacity(dim, K, samples_per_head):
    """Cover's count: a linear head shatters about 2D samples per free logit (K - 1 of them)."""
    shatter = 2 * dim * (K - 1)
    return {'shatter': shatter, 'samples_per_shatter': samples_per_head / shatter}


def normalize(mean, std, channels=None):
    """uint8 images (B, C, H, W) -> floats normalized per channel as train.py feeds them; grey
    images repeated to `channels`."""
    mean = torch.tensor(mean).view(1, -1, 1, 1) * 255
    std = torch.tensor(std).view(1, -1, 1, 1) * 255

    def transform(x):
        x = (x.float() - mean.to(x.device)) / std.to(x.device)
        return x.expand(-1, channels or x.shape[1], -1, -1)

    return transform


# --- the measurement -----------------------------------------------------------------------------


@torch.no_grad()
def features(taps, dataset, device, transform=None, batch_size=256, workers=0):
    """Pooled fp32 features {tap: (N, D)} and class labels (N,) on `device` of a Dataset of
    (image, label); one batch of images is on the device at a time."""
    feats, labels = {}, []
    # its own generator: a DataLoader draws a seed, which would move the caller's RNG
    loader = DataLoader(dataset, batch_size, num_workers=workers, generator=torch.Generator())
    for x, y, *_ in loader:
        x = x.to(device)
        for tap, z in taps(transform(x) if transform else x).items():
            feats.setdefault(tap, []).append(pool(z).float())
        labels.append(y)
    return {t: torch.cat(v) for t, v in feats.items()}, torch.cat(labels).to(device)


def measure(taps, taps_init, train, heldout, K, layout, device, num_classes=None, **stream):
    """Every tap's memorization estimate with its controls; also the training features and
    labels. train, heldout: (Dataset of n (image, class label), their random labels (n,))."""
    feats_train, y_train = features(taps, train[0], device, **stream)
    feats_heldout, y_heldout = features(taps, heldout[0], device, **stream)
    feats_init, _ = features(taps_init, train[0], device, **stream)
    r_train, r_heldout = train[1].to(device), heldout[1].to(device)
    num_classes = num_classes or int(max(y_train.max(), y_heldout.max())) + 1
    n = len(y_train)
    g = torch.Generator().manual_seed(PROBE_SEED + 1)
    fresh = torch.randint(K, (DRAWS, n), generator=g).to(device)  # shared by every tap
    per_head = n / (num_classes if layout == 'per-class' else 1)
    result = {}
    for tap, z in feats_train.items():
        result[tap] = {'dim': z.shape[1], 'samples_per_head': per_head}
        result[tap] |= memorization(
            (z, y_train, r_train),
            (feats_heldout[tap], y_heldout, r_heldout),
            (feats_init[tap], y_train, r_train),
            K,
            num_classes,
            layout,
            fresh,
        )
        result[tap] |= {'capacity': capacity(z.shape[1], K, per_head), 'online': None}
    return result, feats_train, y_train


# --- any network, from Python --------------------------------------------------------------------


def probe(
    model,
    train_data,
    heldout_data,
    layers=None,
    *,
    init_model=None,
    random_labels=2,
    rlp_head='shared',
    n=None,
    label_seed=0,
    transform=None,
    batch_size=256,
    workers=0,
):
    """Memorization in any nn.Module, tap by tap, with its controls: probe.json's dict.

    train_data: a Dataset of (image, class label) the model trained on; heldout_data: the same
    from its distribution, never trained on; images ready for the model, or made so batch by
    batch on the device by `transform`. layers: node names (model.layer_names(network)), a module's
    name meaning its last node, or "penultimate" (default: the stages and the penultimate).
    init_model: the capacity floor (default: the model re-initialized, seed 0). Runs where the
    model's parameters are, in eval mode; leaves the model's mode and the global random number
    generator as they were. For example:

        import torch, torchvision, torchvision.transforms as T, probe
        model = torchvision.models.resnet18(num_classes=10)
        model.load_state_dict(torch.load('resnet18_cifar10.pt'))
        tf = T.Compose([T.ToTensor(), T.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))])
        train = torchvision.datasets.CIFAR10('data', train=True, transform=tf)
        test = torchvision.datasets.CIFAR10('data', train=False, transform=tf)
        result = probe.probe(model, train, test, ['layer2', 'layer3', 'penultimate'], n=5000)
        print(probe.table(result))
    """
    assert random_labels >= 2, f'random_labels K must be >= 2 (got {random_labels})'
    n = min(len(train_data), len(heldout_data), n or len(train_data))
    if n < 1:
        raise ProbeError('the training or the held-out data is empty')
    taps = resolve_layers(model, layers)
    init_model = reinitialized(model) if init_model is None else init_model
    g = torch.Generator().manual_seed(label_seed)  # random labels, drawn once per sample
    r_train = torch.randint(random_labels, (len(train_data),), generator=g)
    r_heldout = torch.randint(random_labels, (len(heldout_data),), generator=g)  # its own draw
    keep_train = subsample(len(train_data), n, PROBE_SEED)
    keep_heldout = subsample(len(heldout_data), n, PROBE_SEED + 2)
    train = (Subset(train_data, keep_train.tolist()), r_train[keep_train])
    heldout = (Subset(heldout_data, keep_heldout.tolist()), r_heldout[keep_heldout])
    stream = {'transform': transform, 'batch_size': batch_size, 'workers': workers}
    device = next(model.parameters()).device
    modes = model.training, init_model.training
    try:
        taps_model, taps_init = extractor(model, taps), extractor(init_model, taps)
        args = (train, heldout, random_labels, rlp_head, device)
        result = measure(taps_model, taps_init, *args, **stream)[0]
    finally:  # the extractors share the models' layers, and put them in eval mode
        model.train(modes[0])
        init_model.train(modes[1])
    result = {'status': 'done', 'n': n, 'draws': DRAWS, 'heldout': 'held-out data', 'taps': result}
    return result | {'random_labels': random_labels, 'rlp_head': rlp_head, 'layers': taps}


# --- a run folder of train.py --------------------------------------------------------------------


def probe_network(
    model, init_model, train, heldout, mean, std, K, layout, n, device, online, layers=None
):
    """Every tap's memorization estimate with its controls.

    model / init_model: the trained and the initial network (model.Net); train, heldout:
    (x uint8, y, r) of n samples each. online: also read the network's own heads. layers: node
    names to tap instead of the network's own taps.
    """
    assert len(train[1]) == len(heldout[1]) == n, 'the same n training and held-out samples'
    model.eval()
    init_model.eval()
    taps, taps_init = model.features, init_model.features
    if layers is not None:
        nodes = resolve_layers(model, layers)
        taps, taps_init = extractor(model, nodes), extractor(init_model, nodes)
    sets = [(TensorDataset(x, y), r) for x, y, r in (train, heldout)]
    num_classes = model.fc.out_features
    stream = {'transform': normalize(mean, std), 'batch_size': 512}
    result, z, y = measure(taps, taps_init, *sets, K, layout, device, num_classes, **stream)
    r = sets[0][1].to(device)
    for tap in result.keys() & (model.rand_heads.keys() if online else set()):
        with torch.no_grad():
            guess = model.rand_heads[tap](z[tap], y).argmax(1)
        result[tap]['online'] = (guess == r).float().mean().item()
    return result


def check_writable(out):
    """Fail before the work, not after it, where probe.json cannot be written."""
    if not os.access(os.path.dirname(out) or '.', os.W_OK):
        raise ProbeError(f'--out {out}: its folder is missing or not writable; choose another')


def read_results(run_dir):
    path = os.path.join(run_dir, 'results.json')
    if not os.path.exists(path):
        raise ProbeError(f'{run_dir} holds no results.json: give a finished run folder of train.py')
    with open(path) as f:
        return json.load(f)


def load_run(run_dir, results, device, data_dir):
    """(config, data, trained network, network at initialization, device) of a run folder."""
    ckpt_path = os.path.join(run_dir, 'checkpoint.pt')
    if not os.path.exists(ckpt_path):
        raise ProbeError(f'{run_dir} holds no checkpoint.pt: rerun its train.py command')
    cfg = train_lib.build_parser().parse_args([])  # defaults for options newer than the run
    vars(cfg).update(results['config'], device=device)  # probe wherever we are
    cfg.data_dir = data_dir or cfg.data_dir
    dev = train_lib.pick_device(cfg)
    data = train_lib.load_data(cfg)
    init_model = train_lib.build_model(cfg, data, dev)  # seeded: the run's own initialization
    model = train_lib.build_model(cfg, data, dev)
    model.load_state_dict(torch.load(ckpt_path, map_location=dev, weights_only=False)['model'])
    return cfg, data, model, init_model, dev


def probe_run(run_dir, device='auto', data_dir=None, layers=None, out=None):
    """Probe the final checkpoint of a finished run; writes probe.json (default: in RUN_DIR)
    atomically. layers: node names to tap instead of the run's own taps."""
    results = read_results(run_dir)
    out = out or os.path.join(run_dir, 'probe.json')
    check_writable(out)
    if results['status'] != 'done':
        result = {'status': results['status']}  # a diverged network has nothing left to probe
        train_lib.write_json(out, result)
        return result
    cfg, data, model, init_model, dev = load_run(run_dir, results, device, data_dir)
    use_heldout = len(data.heldout_y) > 0
    split = 'heldout' if use_heldout else 'test'
    pool_set = [getattr(data, f'{split}_{k}') for k in 'xyr']
    n = min(len(data.train_y), len(pool_set[1]))
    keep_train = subsample(len(data.train_y), n, PROBE_SEED)
    keep_heldout = subsample(len(pool_set[1]), n, PROBE_SEED + 2)
    train = (data.train_x[keep_train], data.train_y[keep_train], data.train_r[keep_train])
    heldout = tuple(t[keep_heldout] for t in pool_set)
    args = (data.mean, data.std, cfg.random_labels, cfg.rlp_head, n, dev)
    taps = probe_network(model, init_model, train, heldout, *args, online=True, layers=layers)
    source = 'training images not trained on' if use_heldout else 'test split'
    result = {'status': 'done', 'n': n, 'draws': DRAWS, 'heldout': source, 'taps': taps}
    if layers is not None:
        result['layers'] = resolve_layers(model, layers)
    train_lib.write_json(out, result)
    return result


# --- a torchvision architecture and its checkpoint -----------------------------------------------


def load_arch(arch, checkpoint, seed):
    """(trained, initial) torchvision `arch`: the checkpoint's weights, and the architecture's own
    initialization under `seed`. The classes are counted by the checkpoint's last 2-D weight (the
    classifier's)."""
    if not os.path.isfile(checkpoint):
        raise ProbeError(f'--checkpoint {checkpoint}: no such file')
    try:
        state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    except Exception as e:
        raise ProbeError(f'--checkpoint {checkpoint}: unreadable ({type(e).__name__})') from None
    of_a_run = isinstance(state, dict) and 'config' in state  # train.py's checkpoint.pt
    if isinstance(state, dict) and not all(map(torch.is_tensor, state.values())):
        state = state.get('state_dict', state.get('model'))  # the usual wrappers
    if not isinstance(state, dict) or not all(map(torch.is_tensor, state.values())):
        raise ProbeError(f'--checkpoint {checkpoint}: holds no state_dict')
    state = {k.removeprefix('module.'): v for k, v in state.items()}  # saved from DataParallel
    matrices = [v for v in state.values() if v.dim() == 2]
    num_classes = len(matrices[-1]) if matrices else 1000
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        init = torchvision.models.get_model(arch, num_classes=num_classes)
    shapes = {k: v.shape for k, v in state.items()}
    # missing or misshapen, then unexpected
    wrong = [k for k, v in init.state_dict().items() if shapes.pop(k, None) != v.shape] + [*shapes]
    if wrong:
        hint = '; for a run folder of train.py: python probe.py RUN_DIR' if of_a_run else ''
        raise ProbeError(
            f'--checkpoint {checkpoint} is not a {arch} state_dict ({len(wrong)} tensors missing, '
            f'unexpected or misshapen, e.g. {wrong[0]}){hint}'
        )
    model = copy.deepcopy(init)
    model.load_state_dict(state)
    return model, init


def arch_data(args, model):
    """(training set, held-out set, the held-out set in words, transform) for --arch."""
    if args.dataset is not None:
        # its random labels go unused: probe() draws its own from --label-seed
        d = data_lib.load(args.dataset, args.data_dir, 0, 2, fake_like=args.fake_like)
        channels = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
        if d.train_x.shape[1] not in (1, channels):
            raise ProbeError(f'--dataset {args.dataset}: {args.arch} takes {channels} channels')
        sets = TensorDataset(d.train_x, d.train_y), TensorDataset(d.test_x, d.test_y)
        return *sets, f'test split of {args.dataset}', normalize(d.mean, d.std, channels)
    transform = torchvision.models.get_model_weights(args.arch).DEFAULT.transforms()
    sets = []
    for flag, folder in (('--train-dir', args.train_dir), ('--heldout-dir', args.heldout_dir)):
        try:
            sets.append(torchvision.datasets.ImageFolder(folder, transform=transform))
        except (FileNotFoundError, NotADirectoryError) as e:
            raise ProbeError(f'{flag} {folder}: {e}'.replace('\n', ' ')) from None
    if args.rlp_head == 'per-class' and sets[0].classes != sets[1].classes:
        raise ProbeError('--rlp-head per-class: the two folders hold different classes')
    return *sets, f'images in {args.heldout_dir}', None


def probe_arch(args):
    """The command for a torchvision architecture: probe, write probe.json, return it."""
    model, init_model = load_arch(args.arch, args.checkpoint, args.seed)
    check_writable(args.out)
    resolve_layers(model, args.layers)  # a bad name fails now, before any data is read
    train, heldout, source, transform = arch_data(args, model)
    device = train_lib.pick_device(args)
    options = ('random_labels', 'rlp_head', 'n', 'label_seed', 'batch_size', 'workers')
    options = {k: getattr(args, k) for k in options}  # probe()'s keywords, named as the flags
    options |= {'init_model': init_model.to(device), 'transform': transform}
    try:
        result = probe(model.to(device), train, heldout, args.layers, **options)
    except OSError as e:  # an image file that cannot be read
        raise ProbeError(f'{type(e).__name__}: {e}'.replace('\n', ' ')) from None
    result |= {'heldout': source, 'arch': args.arch}
    train_lib.write_json(args.out, result)
    return result


# --- the command ---------------------------------------------------------------------------------


def table(result, K=None):
    """The probe's numbers as a readable table, with one sentence per tap."""
    K = K or result['random_labels']
    lines = [
        f'n = {result["n"]} training and {result["n"]} held-out samples ({result["heldout"]}), '
        f'K = {K} (chance {100 / K:.1f}%), {result["draws"]} fresh label draws per fit',
        f'{"tap":<12} {"D":>5} {"per head":>8} {"2D(K-1)":>7} {"a_train":>8} {"a_heldout":>9} '
        f'{"a_init":>7} {"a_fresh":>8} {"m [95% interval]":>24} {"online":>7} {"steps":>6}',
    ]
    for tap, t in result['taps'].items():
        lo, hi = t['memorization_ci']
        m = f'{100 * t["memorization"]:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]'
        online = f'{100 * t["online"]:.1f}' if t['online'] is not None else '—'
        steps = f'{t["steps"]}' + ('' if t['converged'] else '!')
        lines.append(
            f'{tap:<12} {t["dim"]:>5} {t["samples_per_head"]:>8.0f} {t["capacity"]["shatter"]:>7} '
            f'{100 * t["a_train"]:>8.1f} {100 * t["a_heldout"]:>9.1f} {100 * t["a_init"]:>7.1f} '
            f'{100 * t["a_fresh"]:>8.1f} {m:>24} {online:>7} {steps:>6}'
        )
    lines.append('accuracies in %; m = a_train - a_heldout in points; "!" marks an unconverged fit')
    for tap, t in result['taps'].items():
        words = interval_words(*t['memorization_ci'])
        sentence = f'{tap}: the interval of m {words}'
        if words == 'holds 0':
            sentence += ': training samples are not more decodable than held-out ones'
        elif words == 'above 0':
            sentence = f'{tap}: the interval of m is above 0: the features hold these random labels'
        else:  # no memorization reads below 0: chance (1 interval in 20), or held-out data unlike
            sentence = (
                f'{tap}: the interval of m is below 0: held-out samples are more decodable; by '
                'chance 1 interval in 20, else check that they come from the same distribution'
            )
        if t['capacity']['samples_per_shatter'] < 1:
            sentence += '; WARNING: the head can shatter these labels (samples per head < 2D(K-1))'
        lines.append(sentence + '.')
    return '\n'.join(lines)


# options of --arch only: a run folder refuses them (it probes with its own)
ARCH_ONLY = (
    'checkpoint',
    'dataset',
    'fake_like',
    'train_dir',
    'heldout_dir',
    'random_labels',
    'rlp_head',
    'n',
    'label_seed',
    'seed',
    'batch_size',
    'workers',
)


def build_parser():
    p = train_lib.Parser(
        prog='probe.py', description=__doc__.split('\n')[0], formatter_class=train_lib.HelpFormatter
    )
    add = p.add_argument
    add('run_dir', nargs='?', help='a finished run folder of train.py (or give --arch)')
    add('--layers', nargs='+', metavar='LAYER', help='node names to tap, or "penultimate"')
    add('--list-layers', action='store_true', help='print the node names and the default taps')
    add('--data-dir', help="where datasets are (default: the run's, or data)")
    add('--device', default='auto', choices=['auto', 'cpu', 'cuda'], help='auto: CUDA if any')
    add('--out', help='probe.json (default: in RUN_DIR, or beside the checkpoint)')
    add = p.add_argument_group('a torchvision architecture and its checkpoint').add_argument
    add('--arch', help='a torchvision classification architecture, e.g. resnet18')
    add('--checkpoint', help="the network's state_dict (torch.save(model.state_dict(), FILE))")
    add('--dataset', choices=data_lib.DATASETS, help="this repo's data: training vs test split")
    add('--fake-like', default='cifar10', choices=list(data_lib.FAKE_SHAPES), help='fake shape')
    add('--train-dir', help='image folder (a subfolder per class) the network trained on')
    add('--heldout-dir', help='image folder of the same distribution it never trained on')
    add('--random-labels', type=int, default=2, metavar='K', help='random labels per sample')
    add('--rlp-head', default='shared', choices=['per-class', 'shared'], help='head layout')
    add('--n', type=int, help='samples per set (default: all of the smaller set)')
    add('--label-seed', type=int, default=0, help='seeds the random labels')
    add('--seed', type=int, default=0, help='seeds the re-initialized network (capacity floor)')
    add('--batch-size', type=int, default=256, help='images per forward pass')
    add('--workers', type=int, default=0, help='DataLoader processes decoding image folders')
    return p


def parse_args(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    if (args.run_dir is None) == (args.arch is None):
        p.error('give a run folder of train.py, or --arch with --checkpoint and data, not both')
    given = [k for k in ARCH_ONLY if getattr(args, k) != p.get_default(k)]
    if args.run_dir is not None and given:
        p.error(f'--{given[0].replace("_", "-")} is for --arch; a run folder probes with its own')
    if args.arch is not None and args.arch not in ARCHS:
        maybe = ' or '.join(difflib.get_close_matches(args.arch, ARCHS, 3)) or 'resnet18'
        p.error(f'--arch {args.arch}: not a torchvision classification model; {maybe}?')
    arch = args.arch is not None and not args.list_layers
    folders = args.train_dir is not None and args.heldout_dir is not None
    checks = [
        (not arch or args.checkpoint, '--arch needs --checkpoint FILE'),
        (
            not arch or (args.dataset is None) == folders,
            '--arch needs --dataset NAME, or --train-dir DIR and --heldout-dir DIR',
        ),
        (args.random_labels >= 2, f'--random-labels K must be >= 2 (got {args.random_labels})'),
        (args.n is None or args.n >= 1, f'--n must be >= 1 (got {args.n})'),
        (args.batch_size >= 1, f'--batch-size must be >= 1 (got {args.batch_size})'),
        (args.workers >= 0, f'--workers must be >= 0 (got {args.workers})'),
        (
            args.device != 'cuda' or torch.cuda.is_available(),
            '--device cuda: no CUDA GPU is visible; use --device cpu',
        ),
    ]
    for ok, message in checks:
        if not ok:
            p.error(message)
    if args.arch is not None:
        args.data_dir = args.data_dir or 'data'
        args.out = args.out or os.path.join(os.path.dirname(args.checkpoint or ''), 'probe.json')
    return args


def list_layers(args):
    """Print every node name, then the default taps."""
    if args.run_dir is not None:
        model = load_run(args.run_dir, read_results(args.run_dir), args.device, args.data_dir)[2]
        default = f"{' '.join(model.taps)} (the run's own, from model.Net.features)"
    else:
        model = torchvision.models.get_model(args.arch)
        default = ' '.join(
            t if t == n else f'{t} (= {n})' for t, n in resolve_layers(model).items()
        )
    print('\n'.join(layer_names(model)))
    print(f'default taps: {default}')


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.list_layers:
            return list_layers(args)
        if args.arch is not None:
            result, K = probe_arch(args), args.random_labels
        else:
            result = probe_run(args.run_dir, args.device, args.data_dir, args.layers, args.out)
            K = read_results(args.run_dir)['config']['random_labels']
    except (ProbeError, TapError, data_lib.DataError) as e:
        print(f'probe.py: error: {e}', file=sys.stderr)
        sys.exit(2)
    if result['status'] != 'done':
        print(f'{args.run_dir}: run {result["status"]}, nothing to probe')
        return result
    print(table(result, K))
    print(f'wrote {args.out or os.path.join(args.run_dir, "probe.json")}')
    return result


if __name__ == '__main__':
    main()
