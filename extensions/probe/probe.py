"""Probe any network: the fresh-head controls of metrics.py at named layers of any nn.Module.

    python -m extensions.probe.probe RUN_DIR [--layers stage1 stages.1 penultimate] [--label-seed S]
    python -m extensions.probe.probe --arch resnet18 --checkpoint FILE (--dataset NAME |
        --train-dir A --heldout-dir B [--image-size 32 --mean ... --std ...])
    extensions.probe.probe.probe(model, train_data, heldout_data, layers)      from Python

train.py measures its own runs at their own taps (probe.json). This extension measures a run folder
at other layers or with other label draws (written to reprobe.json, so the run's probe.json stays
as train.py wrote it), a torchvision architecture from its state_dict, or any nn.Module. For every
tap, the same fresh head (metrics.fit_heads) is fitted on the frozen features of n training samples
and of n held-out ones, and metrics.controls gives a_train, a_fresh, a_heldout, a_init, the
memorization estimate m = a_fresh - a_heldout and a_train - a_fresh, with their intervals.

Taps are named layers (taps.py); a run folder also takes its own names (stage1 ... penultimate).
Data: a run folder's own (the samples its checkpoint says it trained on, against the training
images it never saw). For --arch: this repo's --dataset (training split against test split), or
two image folders, resized and normalized like the architecture's default weights unless
--image-size, --mean and --std say otherwise. Random labels are drawn once per sample from a CPU
generator seeded by --label-seed. The capacity floor is the same architecture re-initialized.
"""

import argparse
import copy
import dataclasses
import difflib
import json
import os
import sys

import torch
import torch.nn as nn
import torchvision
import torchvision.transforms as T
from torch.utils.data import DataLoader, Subset, TensorDataset

import data as data_lib
import plumbing
import train as train_lib
from extensions.report.markdown import bounded
from extensions.report.power import implied_df
from metrics import DRAWS, controls, measure, tap_features

from .taps import TapError, extractor, layer_names, pool, reinitialized, resolve_layers

ARCHS = torchvision.models.list_models(module=torchvision.models)  # the classification networks


class ProbeError(Exception):
    """Bad input to the probe: one line on stderr, exit code 2."""


def subsample(n_total, n, seed):
    """The same seeded n of n_total indices every time, in order."""
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n].sort().values


def normalize(mean, std, channels=None):
    """uint8 images (B, C, H, W) -> floats normalized per channel as train.py feeds them; grey
    images repeated to `channels`."""
    mean = torch.tensor(mean).view(1, -1, 1, 1) * 255
    std = torch.tensor(std).view(1, -1, 1, 1) * 255

    def transform(x):
        x = (x.float() - mean.to(x.device)) / std.to(x.device)
        return x.expand(-1, channels or x.shape[1], -1, -1)

    return transform


# --- the measurement ------------------------------------------------------------------------------


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


def measure_any(
    taps, taps_init, train, heldout, K, layout, device, seed, num_classes=None, **stream
):
    """Every tap's controls (metrics.controls). train, heldout: (Dataset of n (image, class
    label), their random labels (n,)); taps, taps_init: x -> {tap: activation} of the trained and
    the untrained network."""
    z_train, y_train = features(taps, train[0], device, **stream)
    z_held, y_held = features(taps, heldout[0], device, **stream)
    z_init, _ = features(taps_init, train[0], device, **stream)
    r_train, r_held = train[1].to(device), heldout[1].to(device)
    num_classes = num_classes or int(max(y_train.max(), y_held.max())) + 1
    per_head = len(y_train) / (num_classes if layout == 'per-class' else 1)
    result = {}
    for tap, z in z_train.items():
        sides = (
            (z, y_train, r_train),
            (z_held[tap], y_held, r_held),
            (z_init[tap], y_train, r_train),
        )
        D = z.shape[1]
        result[tap] = {'dim': D, 'samples_per_head': per_head, 'cover': 2 * D * (K - 1)}
        result[tap] |= controls(*sides, K, num_classes, layout, seed=seed) | {'online': None}
    return result, z_train, y_train


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
    """The controls of any nn.Module, tap by tap: probe.json's dict.

    train_data: a Dataset of (image, class label) the model trained on; heldout_data: the same
    from its distribution, never trained on; images ready for the model, or made so batch by batch
    on the device by `transform`. layers: node names (taps.layer_names(model)), a module's name
    meaning its last node, or "penultimate" (default: the stages and the penultimate).
    init_model: the capacity floor (default: the model re-initialized, seed 0). Runs where the
    model's parameters are, in eval mode; leaves the model's mode and the global random number
    generator as they were. For example:

        import torch, torchvision, torchvision.transforms as T
        from extensions.probe import probe
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
    r_heldout = torch.randint(random_labels, (len(heldout_data),), generator=g)  # their own draw
    keep_train = subsample(len(train_data), n, label_seed)
    keep_held = subsample(len(heldout_data), n, label_seed + 1)
    train = (Subset(train_data, keep_train.tolist()), r_train[keep_train])
    heldout = (Subset(heldout_data, keep_held.tolist()), r_heldout[keep_held])
    stream = {'transform': transform, 'batch_size': batch_size, 'workers': workers}
    device = next(model.parameters()).device
    modes = model.training, init_model.training
    try:
        taps_model, taps_init = extractor(model, taps), extractor(init_model, taps)
        args = (train, heldout, random_labels, rlp_head, device, label_seed + 2)
        result = measure_any(taps_model, taps_init, *args, **stream)[0]
    finally:  # the extractors share the models' layers, and put them in eval mode
        model.train(modes[0])
        init_model.train(modes[1])
    out = {'status': 'done', 'n': n, 'draws': DRAWS, 'heldout': 'held-out data', 'taps': result}
    return out | {'random_labels': random_labels, 'rlp_head': rlp_head, 'layers': taps}


# --- a run folder of train.py ---------------------------------------------------------------------


def read_results(run_dir):
    path = os.path.join(run_dir, 'results.json')
    if not os.path.exists(path):
        raise ProbeError(f'{run_dir} holds no results.json: give a finished run folder of train.py')
    with open(path) as f:
        return json.load(f)


def load_run(run_dir, device='auto', data_dir=None):
    """(config, data, trained network, network at initialization, device) of a run folder. The
    data: the samples the checkpoint says the run trained on, against every other training image
    (so it also serves runs whose extension chose its own training samples)."""
    results = read_results(run_dir)
    ckpt_path = os.path.join(run_dir, 'checkpoint.pt')
    if not os.path.exists(ckpt_path):
        raise ProbeError(f'{run_dir} holds no checkpoint.pt: rerun its train.py command')
    options = vars(train_lib.build_parser().parse_args([]))
    config = options | results['config']  # an option added after the run: its default
    cfg = argparse.Namespace(**{k: config[k] for k in options} | {'device': device})
    cfg.data_dir = data_dir or cfg.data_dir
    dev = plumbing.pick_device(cfg.device)
    ckpt = torch.load(ckpt_path, map_location=dev, weights_only=False)
    draws = (cfg.label_seed, cfg.random_labels, cfg.label_noise, None, cfg.test_subset)
    full = data_lib.load(cfg.dataset, cfg.data_dir, *draws, cfg.fake_like)  # every training image
    data = trained_on(full, ckpt['train_index'])
    init_model = train_lib.build_model(cfg, data, dev)  # seeded: the run's own initialization
    model = train_lib.build_model(cfg, data, dev)
    model.load_state_dict(ckpt['model'])
    return cfg, data, model, init_model, dev


def trained_on(full, index):
    """The Data of a run that trained on rows `index` of the full training split."""
    inside = torch.zeros(len(full.train_y), dtype=torch.bool)
    inside[index] = True
    keep, rest = inside.nonzero()[:, 0], (~inside).nonzero()[:, 0]
    pixels = full.train_x[keep].float().div_(255)
    split = {f'train_{k}': getattr(full, f'train_{k}')[keep] for k in ('x', 'y', 'r', 'noisy')}
    split |= {f'heldout_{k}': getattr(full, f'train_{k}')[rest] for k in 'xyr'}
    stats = {'mean': tuple(pixels.mean((0, 2, 3)).tolist())}
    stats['std'] = tuple(pixels.std((0, 2, 3)).tolist())
    return dataclasses.replace(full, **split, train_index=keep, **stats)


def run_layers(model, layers):
    """A run's own tap names (stage1, ...) as the node names of its stages; others as given."""
    own = {f'stage{i}': f'stages.{i - 1}' for i in range(1, len(model.stages) + 1)}
    return [own.get(layer, layer) for layer in layers]


def probe_run(run_dir, device='auto', data_dir=None, layers=None, label_seed=None, n=None):
    """Probe the final checkpoint of a finished run at `layers` (default: its own taps), with the
    fresh draws and subsample of `label_seed` (default: the run's own, train.probe_seed). The
    run's random labels r stay its own: they are what it trained beside."""
    cfg, data, model, init_model, dev = load_run(run_dir, device, data_dir)
    seed = train_lib.probe_seed(cfg) if label_seed is None else label_seed
    if n is not None and n < len(data.train_y):  # a seeded n of the training samples
        keep = subsample(len(data.train_y), n, seed)
        data = dataclasses.replace(
            data, **{f'train_{k}': getattr(data, f'train_{k}')[keep] for k in 'xyr'}
        )
    features = tap_features
    if layers is not None:  # named as the user named them, stage1 as well as stages.0
        nodes = dict(
            zip(layers, resolve_layers(model, run_layers(model, layers)).values(), strict=True)
        )
        features = fx_features(nodes)
    result = measure(model, init_model, data, cfg.random_labels, cfg.rlp_head, seed, dev, features)
    return result | {'random_labels': cfg.random_labels, 'seed': seed, **plumbing.identity()}


def fx_features(nodes):
    """metrics.measure's `features` at named nodes: {tap: (N, D)} pooled as model.py pools."""

    @torch.no_grad()
    def features(model, images, mean, std, device):
        taps = extractor(model.eval(), nodes)
        loader = data_lib.GpuLoader(images, (), mean, std, 512, device)
        batches = [{t: pool(z).float() for t, z in taps(x).items()} for (x,) in loader]
        return {t: torch.cat([b[t] for b in batches]) for t in nodes}

    return features


# --- a torchvision architecture and its checkpoint ------------------------------------------------


def load_arch(arch, checkpoint, seed):
    """(trained, initial) torchvision `arch`: the checkpoint's weights, and the architecture's own
    initialization under `seed`. The classes are counted by the checkpoint's last 2-D weight."""
    if not os.path.isfile(checkpoint):
        raise ProbeError(f'--checkpoint {checkpoint}: no such file')
    try:
        state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    except Exception as e:
        hint = ''
        if 'weights_only' in str(e) or 'Unsupported global' in str(e):  # a pickled nn.Module
            hint = '; it holds a whole pickled model: save model.state_dict() instead'
        message = f'--checkpoint {checkpoint}: unreadable ({type(e).__name__}){hint}'
        raise ProbeError(message) from None
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
        hint = '; for a run folder of train.py: give RUN_DIR' if of_a_run else ''
        raise ProbeError(
            f'--checkpoint {checkpoint} is not a {arch} state_dict ({len(wrong)} tensors missing, '
            f'unexpected or misshapen, e.g. {wrong[0]}){hint}'
        )
    model = copy.deepcopy(init)
    model.load_state_dict(state)
    return model, init


def folder_transform(args):
    """The image folders' transform: the architecture's default weights' resize and
    normalization, unless --image-size, --mean or --std are given (no weights are downloaded)."""
    preset = torchvision.models.get_model_weights(args.arch).DEFAULT.transforms()
    size = args.image_size or preset.crop_size[0]
    resize = args.image_size or preset.resize_size[0]
    mean, std = args.mean or preset.mean, args.std or preset.std
    steps = [T.Resize(resize), T.CenterCrop(size), T.Lambda(lambda im: im.convert('RGB'))]
    return T.Compose(steps + [T.ToTensor(), T.Normalize(mean, std)])


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
    transform = folder_transform(args)
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
    device = plumbing.pick_device(args.device)
    options = ('random_labels', 'rlp_head', 'n', 'label_seed', 'batch_size', 'workers')
    options = {k: getattr(args, k) for k in options}  # probe()'s keywords, named as the flags
    options |= {'init_model': init_model.to(device), 'transform': transform}
    try:
        result = probe(model.to(device), train, heldout, args.layers, **options)
    except OSError as e:  # an image file that cannot be read
        raise ProbeError(f'{type(e).__name__}: {e}'.replace('\n', ' ')) from None
    return result | {'heldout': source, 'arch': args.arch, **plumbing.identity()}


def check_writable(out):
    """Fail before the work, not after it, where the output cannot be written."""
    if not os.access(os.path.dirname(out) or '.', os.W_OK):
        raise ProbeError(f'--out {out}: its folder is missing or not writable; choose another')


# --- the table ------------------------------------------------------------------------------------


def table(result):
    """The probe's numbers as a readable table, with one sentence per tap computed from them."""
    K = result['random_labels']
    lines = [
        f'n = {result["n"]} training and {result["n"]} held-out samples ({result["heldout"]}), '
        f'K = {K} (chance {100 / K:.1f}%), {result["draws"]} label draws per side',
        f'{"tap":<12} {"D":>5} {"per head":>8} {"2D(K-1)":>7} {"a_train":>8} {"a_fresh":>8} '
        f'{"a_heldout":>9} {"a_init":>7} {"m [95%]":>21} {"a_train-a_fresh":>21} {"online":>7} '
        f'{"steps":>6}',
    ]
    for tap, t in result['taps'].items():
        cells = [f'{100 * t[k]:.1f}' for k in ('a_train', 'a_fresh', 'a_heldout', 'a_init')]
        m, specific = plumbing.points(t, 'memorization'), plumbing.points(t, 'specific')
        online = f'{100 * t["online"]:.1f}' if t['online'] is not None else '—'
        steps = f'{t["steps"]}' + ('' if t['converged'] else '!')
        lines.append(
            f'{tap:<12} {t["dim"]:>5} {t["samples_per_head"]:>8.0f} {t["cover"]:>7} '
            f'{cells[0]:>8} {cells[1]:>8} {cells[2]:>9} {cells[3]:>7} {m:>21} {specific:>21} '
            f'{online:>7} {steps:>6}'
        )
    lines.append('accuracies in %, differences in points; "!" marks an unconverged fit')
    lines += [f'{tap}: {sentence(t)}.' for tap, t in result['taps'].items()]
    return '\n'.join(lines)


def sentence(t):
    """What one tap's intervals say, and what they cannot."""
    if min(t['a_train'], t['a_fresh'], t['a_heldout']) > 0.99:
        return (
            'every fit reads about 100%: the head shatters any labels on these few samples (n per '
            'head against 2D(K-1)), so this measurement is uninformative; use more samples'
        )
    ci, se = t['memorization_ci'], t['memorization_se']
    text = bounded('m', {'ci': ci, 'se': se, 'df': implied_df(ci, se)})  # Welch's df, ~30
    if t['memorization_ci'][0] > 0:
        text += ': the training features hold more random labels than held-out ones'
    elif t['memorization_ci'][1] < 0:
        text += ': held-out features hold more; check that they come from the training distribution'
    if t['specific_ci'][0] > 0:
        text += '; a_train is above a_fresh: these very labels are in the features'
    if t['samples_per_head'] < t['cover']:
        text += '; WARNING: the head can shatter these labels (samples per head < 2D(K-1))'
    return text


# --- the command ----------------------------------------------------------------------------------

ARCH_ONLY = 'checkpoint dataset fake_like train_dir heldout_dir random_labels rlp_head seed'.split()
ARCH_ONLY += 'batch_size workers image_size mean std'.split()


def build_parser():
    p = plumbing.Parser('probe', __doc__)
    add = p.add_argument
    add('run_dir', nargs='?', help='a finished run folder of train.py (or give --arch)')
    add('--layers', nargs='+', metavar='LAYER', help='taps: node names, stageN, or penultimate')
    add('--list-layers', action='store_true', help='print the names --layers takes, then exit')
    add('--n', type=int, help='samples per side (default: all of the smaller set)')
    add('--label-seed', type=int, help="seeds the probe's label draws (default: the run's, or 0)")
    add('--data-dir', help="where datasets are (default: the run's, or data)")
    add('--device', default='auto', choices=['auto', 'cpu', 'cuda'], help='auto: CUDA if any')
    add('--out', help='output JSON (default: RUN_DIR/reprobe.json, or beside the checkpoint)')
    add = p.add_argument_group('a torchvision architecture and its checkpoint').add_argument
    add('--arch', help='a torchvision classification architecture, e.g. resnet18')
    add('--checkpoint', help="the network's state_dict (torch.save(model.state_dict(), FILE))")
    add('--dataset', choices=data_lib.DATASETS, help="this repo's data: training vs test split")
    add('--fake-like', default='cifar10', choices=list(data_lib.FAKE_SHAPES), help='fake shape')
    add('--train-dir', help='image folder (a subfolder per class) the network trained on')
    add('--heldout-dir', help='image folder of the same distribution it never trained on')
    add('--image-size', type=int, help="folders: resize and crop to this (default: the arch's)")
    add('--mean', type=float, nargs='+', help="folders: per-channel mean (default: the arch's)")
    add('--std', type=float, nargs='+', help="folders: per-channel std (default: the arch's)")
    add('--random-labels', type=int, default=2, metavar='K', help='random labels per sample')
    add('--rlp-head', default='shared', choices=['per-class', 'shared'], help='head layout')
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
        (args.device != 'cuda' or torch.cuda.is_available(), '--device cuda: no GPU is visible'),
    ]
    for ok, message in checks:
        if not ok:
            p.error(message)
    if args.arch is not None:
        args.data_dir = args.data_dir or 'data'
        args.label_seed = args.label_seed or 0
        args.out = args.out or os.path.join(os.path.dirname(args.checkpoint or ''), 'probe.json')
    else:
        args.out = args.out or os.path.join(args.run_dir, 'reprobe.json')
    return args


def list_layers(args):
    """Print every name --layers takes, then the default taps."""
    if args.run_dir is not None:
        model = load_run(args.run_dir, args.device, args.data_dir)[2]
        own = [f'stage{i}' for i in range(1, len(model.stages) + 1)] + ['penultimate']
        print('\n'.join(own + layer_names(model)))
        print(f"default taps: {' '.join(model.taps)} (the run's own; stageN is node stages.N-1)")
        return
    model = torchvision.models.get_model(args.arch)
    print('\n'.join(layer_names(model)))
    taps = resolve_layers(model).items()
    print('default taps: ' + ' '.join(t if t == n else f'{t} (= {n})' for t, n in taps))


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.list_layers:
            return list_layers(args)
        check_writable(args.out)
        if args.arch is not None:
            result = probe_arch(args)
        else:
            options = (args.device, args.data_dir, args.layers, args.label_seed, args.n)
            result = probe_run(args.run_dir, *options)
        available = result['n']
        if args.n is not None and args.n > available:
            print(f'note: --n {args.n} is more than the data holds; used n = {available}')
    except (ProbeError, TapError, data_lib.DataError) as e:
        print(f'probe: error: {e}', file=sys.stderr)
        sys.exit(2)
    plumbing.write_json(args.out, result)
    print(table(result))
    print(f'wrote {args.out}')
    return result


if __name__ == '__main__':
    main()
