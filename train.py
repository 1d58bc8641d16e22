"""One training run with random-label heads, then its controls: python train.py --out runs/x

Trains f and g on the class labels and one random-label head per tap on the random labels (model.py)
with the objective L = L_class + Σ_taps L_rnd + λ·L_unlearn (regularizer.losses), measures the
papers' random-label accuracy after every epoch (the online head), and at the end fits fresh heads
on the frozen network with their controls (metrics.controls).

Writes DIR/checkpoint.pt atomically after every epoch, DIR/results.json when training ends (status
"done" or "diverged") and DIR/probe.json with the controls. Rerunning the same command resumes from
the checkpoint, measures a finished run whose probe.json is missing, and does nothing for a run that
has both; a changed option on an existing folder is refused. Bad input: one line, exit code 2.

Defaults: SGD with Nesterov momentum 0.9, batch 512, peak lr 0.2 (the usual 0.1 at batch 128 of the
WRN and ResNet CIFAR recipes, scaled by sqrt(4) for batch 512), one epoch of linear warm-up then
cosine decay to 0, weight decay 5e-4 (Zagoruyko & Komodakis 2016; not on the random-label heads,
whose capacity is what is measured), crop + flip augmentation, 30 epochs.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch
import torchvision
from tqdm import tqdm

import data as data_lib
from metrics import autocast, complexity, evaluate, measure, wilson_interval
from model import MODELS, Net
from regularizer import losses

SYNC_EVERY_CUDA = 50  # steps between the host-device syncs of training (divergence, progress bar)
# options that say where and how a run goes, not what it computes: a rerun may change them
PLACE_OPTIONS = ('out', 'device', 'compile', 'data_dir', 'probe')
LOSS_OPTIONS = ('unlearn', 'unlearn_taps', 'memorize', 'label_smoothing')  # regularizer.losses'


# --- the options ----------------------------------------------------------------------------


def checked(kind, ok, rule):
    """An argparse type: text -> kind, refused with `rule` unless ok(value) holds."""

    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f'must be {rule} (got {text})')
        return value

    return convert


COUNT = checked(int, lambda v: v >= 1, 'an integer >= 1')
K_LABELS = checked(int, lambda v: v >= 2, 'an integer >= 2 (K = 2: binary labels)')
POSITIVE = checked(float, lambda v: math.isfinite(v) and v > 0, 'a finite number > 0')
NONNEGATIVE = checked(float, lambda v: math.isfinite(v) and v >= 0, 'a finite number >= 0')
FRACTION = checked(float, lambda v: 0 <= v < 1, 'in [0, 1)')
PROBABILITY = checked(float, lambda v: 0 <= v <= 1, 'a probability in [0, 1]')


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2, no usage dump
        self.exit(2, f'{self.prog}: error: {message} (see --help)\n')


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every default but None, where the help text says what no value means."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def build_parser():
    p = Parser(
        prog='train.py',
        description=__doc__.split('\n')[0],
        formatter_class=HelpFormatter,
        epilog='About 20 s on a CPU: python train.py --dataset fake --fake-like fashion-mnist '
        '--subset 512 --epochs 10 --batch-size 64 --lr 0.1 --rlp-head shared --out runs/first',
    )
    add, flag = p.add_argument, argparse.BooleanOptionalAction
    add('--dataset', default='fashion-mnist', choices=data_lib.DATASETS, help='training data')
    add('--fake-like', default='cifar10', choices=list(data_lib.FAKE_SHAPES), help='fake shape')
    add('--model', default='cnn', choices=MODELS, help='backbone f')
    add('--epochs', type=COUNT, default=30, help='passes over the training set')
    add('--batch-size', type=COUNT, default=512, help='images per step')
    add(
        '--lr', type=POSITIVE, default=0.2, help='peak learning rate (1 epoch warm-up, then cosine)'
    )
    add('--weight-decay', type=NONNEGATIVE, default=5e-4, help='on f and g, not on the heads')
    add('--dropout', type=FRACTION, default=0.0, help='on z before the task head g')
    add('--label-smoothing', type=FRACTION, default=0.0, help='of the class loss')
    add('--augment', action=flag, default=True, help='random crop (pad 4) + horizontal flip')
    add('--random-labels', type=K_LABELS, default=2, metavar='K', help='random labels per sample')
    add('--rlp-head', default='per-class', choices=['per-class', 'shared'], help='head layout')
    add('--taps', default='penultimate', choices=['penultimate', 'all'], help='where heads sit')
    add('--unlearn', default='none', choices=['none', 'grl', 'reg'], help='unlearning term')
    add('--unlearn-taps', default='penultimate', choices=['penultimate', 'all'], help='where')
    add('--lam', type=NONNEGATIVE, default=1.0, help='λ, weight of the unlearning term')
    add('--lam-schedule', default='constant', choices=['constant', 'dann'], help='λ over time')
    add(
        '--memorize',
        action=flag,
        default=False,
        help='positive control: the penultimate head reads z without stop-gradient, so f is '
        'trained on the random labels',
    )
    add('--label-seed', type=int, default=0, help='seeds random labels, label noise, subsets')
    add('--seed', type=int, default=0, help='seeds initialization, data order, augmentation')
    add('--label-noise', type=PROBABILITY, default=0.0, help='chance to replace a class label')
    add('--subset', type=COUNT, default=None, help='train on this many images (default: all)')
    add('--test-subset', type=COUNT, default=None, help='test on this many images (default: all)')
    add('--data-dir', default='data', help='where datasets are read or downloaded')
    add('--out', default='runs/default', help='run folder: results.json, probe.json, checkpoint.pt')
    add('--device', default='auto', choices=['auto', 'cpu', 'cuda'], help='auto: CUDA if any')
    add('--compile', action=flag, default=False, help='torch.compile the training step')
    add('--bf16', action=flag, default=True, help='bf16 autocast on CUDA (no effect on the CPU)')
    add('--probe', action=flag, default=True, help='fit fresh heads with controls at the end')
    return p


def parse_args(argv=None, parser=None):
    p = parser or build_parser()
    cfg = p.parse_args(argv)
    if cfg.memorize and cfg.unlearn != 'none':
        p.error('--memorize trains f on the random labels and --unlearn against them; use one')
    if cfg.device == 'cuda' and not torch.cuda.is_available():
        p.error('--device cuda: no CUDA GPU is visible; use --device cpu')
    try:  # fail now, not after an epoch, if results cannot be written
        os.makedirs(cfg.out, exist_ok=True)
        probe = os.path.join(cfg.out, f'.write-test-{os.getpid()}')
        open(probe, 'w').close()
        os.remove(probe)
    except OSError as e:
        p.error(f'--out {cfg.out} is not writable ({e.strerror}); choose another folder')
    return cfg


# --- data, network, optimizer, schedules ------------------------------------------------------


def load_data(cfg):
    """The run's data, on the CPU, as its options select it."""
    c = cfg
    draws = (c.label_seed, c.random_labels, c.label_noise, c.subset, c.test_subset, c.fake_like)
    return data_lib.load(c.dataset, c.data_dir, *draws)


def build_model(cfg, data, device):
    """The network at its initialization, seeded by --seed: the same weights on every call."""
    torch.manual_seed(cfg.seed)
    _, channels, size, _ = data.train_x.shape
    heads = (cfg.random_labels, cfg.rlp_head, cfg.taps)
    model = Net(cfg.model, channels, data.num_classes, *heads, cfg.dropout, size)
    torch.backends.cudnn.benchmark = True  # pick the fastest convolution kernels once per shape
    memory_format = torch.channels_last if device.type == 'cuda' else torch.contiguous_format
    return model.to(device, memory_format=memory_format)  # channels-last: fast convs on GPUs


def make_optimizer(model, cfg, device):
    """SGD with Nesterov momentum; weight decay on f and g, never on the random-label heads."""
    heads = list(model.rand_heads.parameters())
    body = [p for name, p in model.named_parameters() if not name.startswith('rand_heads.')]
    groups = [
        {'params': body, 'weight_decay': cfg.weight_decay},
        {'params': heads, 'weight_decay': 0},
    ]
    fused = device.type == 'cuda'  # one kernel for the whole update
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True, fused=fused)


def lr_at(step, total, steps_per_epoch, cfg):
    """One epoch of linear warm-up, then cosine decay to 0."""
    if step < steps_per_epoch:
        return cfg.lr * (step + 1) / steps_per_epoch
    progress = (step - steps_per_epoch) / max(1, total - steps_per_epoch)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


def lam_at(progress, cfg):
    """λ, constant or ramped up as in DANN (Ganin & Lempitsky 2015), progress p in [0, 1]."""
    if cfg.lam_schedule == 'dann':
        return cfg.lam * (2 / (1 + math.exp(-10 * progress)) - 1)
    return cfg.lam


def loss_fn(model, cfg, lam):
    """(x, y, r) -> the run's loss terms and logits (regularizer.losses with its options)."""
    options = {k: getattr(cfg, k) for k in LOSS_OPTIONS}
    return lambda x, y, r: losses(model, x, y, r, lam, **options)


# --- training ---------------------------------------------------------------------------------


class Diverged(Exception):
    """The loss became NaN or infinite: the run stops and is recorded as diverged."""


def forward_step(model, batch, lam, cfg):
    """The loss to minimize, and the batch's statistics, kept on the device."""
    x, y, r = batch
    with autocast(x.device, cfg.bf16):
        terms, logits, rand_logits = loss_fn(model, cfg, lam)(x, y, r)
    stats = {f'loss_{k}': terms[k].detach() * len(y) for k in ('class', 'rnd', 'unlearn')}
    stats['images'] = x.new_tensor(len(y), dtype=torch.float32)
    stats['correct'] = (logits.argmax(1) == y).sum().float()
    stats |= {f'rand_{tap}': (out.argmax(1) == r).float().sum() for tap, out in rand_logits.items()}
    return terms['total'], stats


def train_epoch(model, opt, loader, step_fn, cfg, lam, epoch):
    """One pass over the training set; returns the online statistics (the papers' number among
    them: each head's accuracy on the batches it trained on) and the images seen."""
    steps_per_epoch, sums = len(loader), None
    total_steps = cfg.epochs * steps_per_epoch
    sync_every = SYNC_EVERY_CUDA if lam.is_cuda else 1
    model.train()
    bar = tqdm(loader, desc=f'epoch {epoch}/{cfg.epochs}', leave=False, disable=None)
    for i, batch in enumerate(bar):
        step = (epoch - 1) * steps_per_epoch + i
        for group in opt.param_groups:
            group['lr'] = lr_at(step, total_steps, steps_per_epoch, cfg)
        lam.fill_(lam_at(step / total_steps, cfg))
        loss, stats = step_fn(model, batch, lam, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sums = stats if sums is None else {k: sums[k] + v for k, v in stats.items()}
        if (i + 1) % sync_every == 0 or i + 1 == steps_per_epoch:  # a NaN in any step shows here
            totals = dict(zip(sums, torch.stack(list(sums.values())).tolist(), strict=True))
            loss_class = totals['loss_class'] / totals['images']
            if not all(math.isfinite(v) for v in totals.values()):
                raise Diverged(f'non-finite loss at step {step}: class loss {loss_class}')
            bar.set_postfix(loss=f'{loss_class:.3f}')
    seen = int(totals['images'])
    online = {k: totals[k] / seen for k in ('loss_class', 'loss_rnd', 'loss_unlearn')}
    online['train_acc'] = totals['correct'] / seen
    online['rand_acc'] = {tap: totals[f'rand_{tap}'] / seen for tap in model.taps}
    return online, seen


def final_metrics(model, data, history, cfg, device, loss):
    """The metric after the last epoch: a full pass over the training set (eval mode, no
    augmentation) with the loss function `loss`. The test numbers are the last epoch's, measured
    on these same weights."""
    train = evaluate(model, eval_loader(data, 'train', device), loss, cfg.bf16)
    last, K, n, dims = history[-1], cfg.random_labels, train['n'], model.dims.items()
    noisy = data.train_noisy
    per_head = n / (data.num_classes if cfg.rlp_head == 'per-class' else 1)
    return {
        'epoch': cfg.epochs,
        'lr': last['lr'],
        'lam': last['lam'],
        **{k: train[k] for k in ('loss_class', 'loss_rnd', 'loss_unlearn')},
        'train_acc': train['acc'],
        # accuracy on the (noisy) training labels of the samples label noise left alone / changed
        'train_acc_clean': train['correct'][~noisy].float().mean().item() if noisy.any() else None,
        'train_acc_noisy': train['correct'][noisy].float().mean().item() if noisy.any() else None,
        'test_acc': last['test_acc'],
        'gen_gap': train['acc'] - last['test_acc'],
        'rand_acc': train['rand_acc'],
        'rand_acc_test': last['rand_acc_test'],
        'complexity': {t: complexity(a, K) for t, a in train['rand_acc'].items()},
        'rand_acc_ci': {t: wilson_interval(a, n) for t, a in train['rand_acc'].items()},
        'rand_acc_test_ci': {t: wilson_interval(1 / K, len(data.test_y)) for t in model.taps},
        'head_capacity': {
            t: {'samples_per_head': per_head, 'dim': d, 'cover_2d': 2 * d} for t, d in dims
        },
        'seconds': sum(h['seconds'] for h in history),
        'images_per_s': sum(h['images_per_s'] for h in history) / len(history),
    }


def epoch_record(epoch, opt, lam, online, test, seconds, seen, K):
    """One epoch's entry of results.json's history: the online numbers and the test pass."""
    record = {'epoch': epoch, 'lr': opt.param_groups[0]['lr'], 'lam': lam.item(), **online}
    record |= {'test_acc': test['acc'], 'rand_acc_test': test['rand_acc']}
    record['complexity'] = {t: complexity(a, K) for t, a in online['rand_acc'].items()}
    return record | {'seconds': seconds, 'images_per_s': seen / seconds}


def data_sizes(data):
    """results.json's `data`: how many samples each split holds."""
    sizes = {f'n_{s}': len(getattr(data, f'{s}_y')) for s in ('train', 'heldout', 'test')}
    return sizes | {'num_classes': data.num_classes, 'noisy_labels': int(data.train_noisy.sum())}


def eval_loader(data, split, device):
    """A split ('train', 'heldout', 'test') in order, without augmentation."""
    x, y, r = (getattr(data, f'{split}_{k}') for k in 'xyr')
    return data_lib.GpuLoader(x, (y, r), data.mean, data.std, 1024, device)


# --- files: results, checkpoints, resume --------------------------------------------------------


def fail(message):
    """Bad input: one line on stderr, exit code 2."""
    print(f'train.py: error: {message}', file=sys.stderr)
    sys.exit(2)


def write_json(path, obj):
    """Write to a temporary name, then rename: a reader never sees half a file."""
    with open(path + '.tmp', 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(path + '.tmp', path)


def commit():
    """The code's git commit, '-dirty' when a .py file differs from it; '' outside git."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(
            ['git', 'rev-parse', 'HEAD'], capture_output=True, text=True, cwd=here
        )
        diff = subprocess.run(['git', 'diff', '--quiet', 'HEAD', '--', '*.py'], cwd=here)
    except OSError:
        return ''
    return head.stdout.strip() + ('-dirty' if diff.returncode == 1 else '')


def environment(device, cfg):
    return {
        'torch': torch.__version__,
        'torchvision': torchvision.__version__,
        'device': torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu',
        'world_size': 1,
        'bf16': cfg.bf16 and device.type == 'cuda',  # what ran, whatever the flag said
        'git_commit': commit(),
    }


def refuse_other_run(stored, config, what):
    """Exit 2 when an existing folder holds a run of another config, naming what differs."""
    old, new = ({k: v for k, v in c.items() if k not in PLACE_OPTIONS} for c in (stored, config))
    if old != new:
        diff = [k for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]
        shown = ', '.join(f'--{k.replace("_", "-")} {old.get(k)} -> {new.get(k)}' for k in diff)
        fail(f'--out {config["out"]} holds {what} of a different run ({shown}); use another --out')


def save_checkpoint(path, model, opt, loader, history, config, train_index):
    """Everything a resumed run needs to continue bit for bit (weights, optimizer, data order,
    random number generators), and which samples of the training split it trains on."""
    state = {
        'train_index': train_index,
        'model': model.state_dict(),
        'optimizer': opt.state_dict(),
        'loader': loader.state_dict(),
        'rng_cpu': torch.get_rng_state(),
        'rng_cuda': torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
        'history': history,
        'config': config,
    }
    torch.save(state, path + '.tmp')
    os.replace(path + '.tmp', path)  # atomic: a kill loses at most the current epoch


def load_checkpoint(path, model, opt, loader, config):
    """Restore a checkpoint of this same run (another run's is refused); returns its history."""
    ckpt = torch.load(path, map_location=next(model.parameters()).device, weights_only=False)
    refuse_other_run(ckpt['config'], config, 'a checkpoint')
    model.load_state_dict(ckpt['model'])
    if opt is not None:
        opt.load_state_dict(ckpt['optimizer'])
        loader.load_state_dict(ckpt['loader'])
        torch.set_rng_state(ckpt['rng_cpu'])
        if ckpt['rng_cuda'] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(ckpt['rng_cuda'])
    return ckpt['history']


def read_finished(results_path, config):
    """The results of a finished run of this same config, or None if there is none."""
    if not os.path.exists(results_path):
        return None
    with open(results_path) as f:
        results = json.load(f)
    refuse_other_run(results['config'], config, 'the results')
    return results


def pick_device(cfg):
    cuda = cfg.device == 'cuda' or (cfg.device == 'auto' and torch.cuda.is_available())
    return torch.device('cuda' if cuda else 'cpu')


# --- one run ----------------------------------------------------------------------------------


def run(cfg, data=None):
    """Train (or resume), evaluate, then measure the controls. data: the run's Data (default: as
    the options select it; an extension may pass its own)."""
    paths = {name: os.path.join(cfg.out, name) for name in ('results', 'probe', 'checkpoint')}
    paths = {k: v + ('.pt' if k == 'checkpoint' else '.json') for k, v in paths.items()}
    device = pick_device(cfg)
    results = read_finished(paths['results'], vars(cfg))
    if results is not None and (os.path.exists(paths['probe']) or not cfg.probe):
        print(f'{paths["results"]} exists: run finished, nothing to do')
        return results
    data = data or load_data(cfg)
    if cfg.compile and len(data.train_y) < cfg.batch_size:
        n = len(data.train_y)
        fail(f'--batch-size {cfg.batch_size} > {n} training images: --compile needs full batches')
    model = build_model(cfg, data, device)
    if results is None:
        results = train(cfg, data, model, device, paths)
    else:  # finished, but without its controls: measure only
        load_checkpoint(paths['checkpoint'], model, None, None, vars(cfg))
    if cfg.probe and results['status'] == 'done':
        init_model = build_model(cfg, data, device)  # the same seed: the run's own initialization
        probe = measure(
            model, init_model, data, cfg.random_labels, cfg.rlp_head, cfg.label_seed, device
        )
        write_json(paths['probe'], probe | {'commit': commit()})
        t = probe['taps']['penultimate']
        accuracies = ' '.join(
            f'{k} {t[k]:.1%}' for k in ('a_train', 'a_fresh', 'a_heldout', 'a_init')
        )
        lo, hi = (100 * v for v in t['memorization_ci'])
        m = f'm {100 * t["memorization"]:+.1f} [{lo:+.1f}, {hi:+.1f}] points'
        print(f'controls, penultimate: {accuracies} | {m} | {paths["probe"]}')
    return results


def train(cfg, data, model, device, paths):
    """The epochs, with a checkpoint after each, then the final pass; returns results.json."""
    config, env = vars(cfg), environment(device, cfg)
    print(f'torch {env["torch"]} on {env["device"]} | config {json.dumps(config)}', flush=True)
    labels = (data.train_y, data.train_r)
    order = {'shuffle': True, 'augment': cfg.augment, 'drop_last': cfg.compile, 'seed': cfg.seed}
    loader = data_lib.GpuLoader(
        data.train_x, labels, data.mean, data.std, cfg.batch_size, device, **order
    )
    test_loader = eval_loader(data, 'test', device)
    opt = make_optimizer(model, cfg, device)
    lam = torch.zeros((), device=device)  # a tensor: changing λ never recompiles
    history = []
    if os.path.exists(paths['checkpoint']):
        history = load_checkpoint(paths['checkpoint'], model, opt, loader, config)
        print(f'resumed from {paths["checkpoint"]} after epoch {len(history)}')
    step_fn = torch.compile(forward_step) if cfg.compile else forward_step  # fuses small kernels
    results = {'config': config, 'env': env}
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        try:
            online, seen = train_epoch(model, opt, loader, step_fn, cfg, lam, epoch)
        except Diverged as e:
            results |= {'status': 'diverged', 'diverged': {'epoch': epoch, 'reason': str(e)}}
            write_json(paths['results'], results | {'history': history, 'final': None})
            print(f'diverged in epoch {epoch} ({e}); wrote {paths["results"]}', file=sys.stderr)
            return results
        seconds = time.perf_counter() - t0
        test = evaluate(model, test_loader, loss_fn(model, cfg, cfg.lam), cfg.bf16)
        K = cfg.random_labels
        history.append(epoch_record(epoch, opt, lam, online, test, seconds, seen, K))
        rand, rand_test = online['rand_acc']['penultimate'], test['rand_acc']['penultimate']
        print(
            f'epoch {epoch:3d}/{cfg.epochs} | loss {online["loss_class"]:.3f} | train '
            f'{online["train_acc"]:.1%} test {test["acc"]:.1%} | random-label train {rand:.1%} '
            f'test {rand_test:.1%} (chance {1 / K:.1%}) | {seen / seconds:,.0f} img/s'
        )
        save_checkpoint(paths['checkpoint'], model, opt, loader, history, config, data.train_index)

    final = final_metrics(model, data, history, cfg, device, loss_fn(model, cfg, cfg.lam))
    results |= {'status': 'done', 'history': history, 'final': final, 'data': data_sizes(data)}
    write_json(paths['results'], results)
    rand = ', '.join(f'{t} {a:.1%}' for t, a in final['rand_acc'].items())
    print(f'done | test {final["test_acc"]:.1%} | random-label train {rand} | {paths["results"]}')
    return results


def main(argv=None):
    cfg = parse_args(argv)
    try:
        run(cfg)
    except data_lib.DataError as e:
        fail(str(e))


if __name__ == '__main__':
    main()
