"""One training run with random-label heads: python train.py --dataset fashion-mnist --model cnn --out runs/x

Trains f and g on the class labels and one random-label head per tap on the random labels
(model.py), with the objective of regularizer.losses, and measures memorization as in metrics.py.
Writes DIR/checkpoint.pt atomically every epoch and DIR/results.json when the run ends (status
"done" or "diverged"); rerunning the same command resumes from the checkpoint, and a finished run
is not redone. Bad input: one line on stderr, exit code 2.

Defaults: SGD with Nesterov momentum 0.9, batch 512, peak lr 0.2 (the usual 0.1 at batch 128 of the
WRN and ResNet CIFAR recipes, scaled by sqrt(4) for batch 512), one epoch of linear warm-up then
cosine decay to 0, weight decay 5e-4 (Zagoruyko & Komodakis 2016; not applied to the random-label
heads, whose capacity is the thing measured), crop+flip augmentation, 30 epochs.
"""  # noqa: E501 (the first line is the --help description; kept whole)

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
from metrics import autocast, complexity, evaluate, wilson_interval
from model import MODELS, Net
from regularizer import losses

# steps between the only host-device syncs of training (divergence check, progress bar)
SYNC_EVERY_CUDA = 50


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2, no usage dump
        self.exit(2, f'train.py: error: {message} (see python train.py --help)\n')


def build_parser():
    p = Parser(
        description=__doc__.split('\n')[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument('--dataset', default='fashion-mnist', choices=data_lib.DATASETS)
    p.add_argument(
        '--fake-like',
        default='cifar10',
        choices=list(data_lib.FAKE_SHAPES),
        help='shape of --dataset fake',
    )
    p.add_argument('--model', default='cnn', choices=MODELS)
    p.add_argument('--epochs', type=int, default=30)
    p.add_argument('--batch-size', type=int, default=512)
    p.add_argument(
        '--lr',
        type=float,
        default=0.2,
        help='peak learning rate (warm-up 1 epoch, then cosine to 0)',
    )
    p.add_argument(
        '--weight-decay', type=float, default=5e-4, help='on f and g, not on the random-label heads'
    )
    p.add_argument('--dropout', type=float, default=0.0, help='on z before the task head g')
    p.add_argument('--label-smoothing', type=float, default=0.0)
    p.add_argument(
        '--augment',
        action=argparse.BooleanOptionalAction,
        default=True,
        help='random crop (pad 4) + flip',
    )
    p.add_argument(
        '--random-labels',
        type=int,
        default=2,
        metavar='K',
        help='number of random labels (2: Rademacher)',
    )
    p.add_argument('--rlp-head', default='per-class', choices=['per-class', 'shared'])
    p.add_argument('--taps', default='penultimate', choices=['penultimate', 'all'])
    p.add_argument('--unlearn', default='none', choices=['none', 'grl', 'reg'])
    p.add_argument('--unlearn-taps', default='penultimate', choices=['penultimate', 'all'])
    p.add_argument(
        '--lam',
        type=float,
        default=1.0,
        help='λ, weight of the unlearning term (ignored with --unlearn none)',
    )
    p.add_argument(
        '--lam-schedule',
        default='constant',
        choices=['constant', 'dann'],
        help='dann: λ(2/(1+e^-10p)-1)',
    )
    p.add_argument(
        '--label-seed', type=int, default=0, help='seeds random labels, label noise and --subset'
    )
    p.add_argument(
        '--seed', type=int, default=0, help='seeds initialization, data order and augmentation'
    )
    p.add_argument(
        '--label-noise', type=float, default=0.0, help='probability of replacing a class label'
    )
    p.add_argument(
        '--subset', type=int, default=None, help='train on this many images (default: all)'
    )
    p.add_argument(
        '--test-subset',
        type=int,
        default=None,
        help='evaluate on this many test images (default: all)',
    )
    p.add_argument('--data-dir', default='data')
    p.add_argument('--out', default='runs/default')
    p.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'])
    p.add_argument(
        '--compile',
        action=argparse.BooleanOptionalAction,
        default=False,
        help='torch.compile the step',
    )
    p.add_argument(
        '--bf16',
        action=argparse.BooleanOptionalAction,
        default=True,
        help='bf16 autocast on CUDA (--no-bf16: fp32)',
    )
    return p


def parse_args(argv=None):
    p = build_parser()
    cfg = p.parse_args(argv)
    checks = [
        (cfg.epochs >= 1, f'--epochs must be >= 1 (got {cfg.epochs})'),
        (cfg.batch_size >= 1, f'--batch-size must be >= 1 (got {cfg.batch_size})'),
        (math.isfinite(cfg.lr) and cfg.lr > 0, f'--lr must be a finite number > 0 (got {cfg.lr})'),
        (
            math.isfinite(cfg.weight_decay) and cfg.weight_decay >= 0,
            f'--weight-decay must be finite and >= 0 (got {cfg.weight_decay})',
        ),
        (0 <= cfg.dropout < 1, f'--dropout must be in [0, 1) (got {cfg.dropout})'),
        (
            0 <= cfg.label_smoothing < 1,
            f'--label-smoothing must be in [0, 1) (got {cfg.label_smoothing})',
        ),
        (
            cfg.random_labels >= 2,
            f'--random-labels K must be >= 2 (got {cfg.random_labels}); K = 2 gives binary labels',
        ),
        (
            math.isfinite(cfg.lam) and cfg.lam >= 0,
            f'--lam must be a finite number >= 0 (got {cfg.lam})',
        ),
        (
            0 <= cfg.label_noise <= 1,
            f'--label-noise must be a probability in [0, 1] (got {cfg.label_noise})',
        ),
        (cfg.subset is None or cfg.subset >= 1, f'--subset must be >= 1 (got {cfg.subset})'),
        (
            cfg.test_subset is None or cfg.test_subset >= 1,
            f'--test-subset must be >= 1 (got {cfg.test_subset})',
        ),
        (
            cfg.device != 'cuda' or torch.cuda.is_available(),
            '--device cuda: no CUDA GPU is visible; use --device cpu',
        ),
    ]
    for ok, message in checks:
        if not ok:
            p.error(message)
    try:  # fail now, not after an epoch, if results cannot be written
        os.makedirs(cfg.out, exist_ok=True)
        probe = os.path.join(cfg.out, '.write-test')
        open(probe, 'w').close()
        os.remove(probe)
    except OSError as e:
        p.error(f'--out {cfg.out} is not writable ({e.strerror}); choose another folder')
    return cfg


def write_json(path, obj):
    """Write to a temporary name, then rename: a reader never sees half a file."""
    with open(path + '.tmp', 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(path + '.tmp', path)


def setup(cfg):
    """Device, data (CPU tensors) and the model, seeded by cfg.seed."""
    device = torch.device(
        'cuda'
        if cfg.device == 'cuda' or (cfg.device == 'auto' and torch.cuda.is_available())
        else 'cpu'
    )
    data = data_lib.load(
        cfg.dataset,
        cfg.data_dir,
        cfg.label_seed,
        cfg.random_labels,
        cfg.label_noise,
        cfg.subset,
        cfg.fake_like,
        cfg.test_subset,
    )
    torch.manual_seed(cfg.seed)
    _, channels, size, _ = data.train_x.shape
    model = Net(
        cfg.model,
        channels,
        data.num_classes,
        cfg.random_labels,
        cfg.rlp_head,
        cfg.taps,
        cfg.dropout,
        size,
    )
    # faster convs on GPUs
    memory_format = torch.channels_last if device.type == 'cuda' else torch.contiguous_format
    torch.backends.cudnn.benchmark = True  # pick the fastest conv kernels once per shape
    return data, model.to(device, memory_format=memory_format), device


def eval_loaders(data, cfg, device):
    """Loaders for the training set without augmentation (final metric, probe) and the test set."""

    def make(x, y, r):
        return data_lib.GpuLoader(x, y, r, data.mean, data.std, 1024, device)

    train_eval = make(data.train_x, data.train_y, data.train_r)
    test_eval = make(data.test_x, data.test_y, data.test_r)
    return train_eval, test_eval


def lr_at(step, total, steps_per_epoch, cfg):
    """One epoch of linear warm-up, then cosine decay to 0."""
    if step < steps_per_epoch:
        return cfg.lr * (step + 1) / steps_per_epoch
    return (
        cfg.lr
        * 0.5
        * (1 + math.cos(math.pi * (step - steps_per_epoch) / max(1, total - steps_per_epoch)))
    )


def lam_at(progress, cfg):
    """λ, constant or ramped up as in DANN (Ganin & Lempitsky 2015), progress p in [0, 1]."""
    return (
        cfg.lam * (2 / (1 + math.exp(-10 * progress)) - 1)
        if cfg.lam_schedule == 'dann'
        else cfg.lam
    )


def forward_step(model, x, y, r, cfg, lam):
    """Loss to minimize and a vector of batch statistics (kept on the device): loss terms,
    correct counts."""
    with autocast(x.device, cfg.bf16):
        terms, logits, rand_logits = losses(
            model, x, y, r, cfg.unlearn, lam, cfg.unlearn_taps, cfg.label_smoothing
        )
    counts = [(logits.argmax(1) == y).sum()] + [
        (head_logits.argmax(1) == r).sum() for head_logits in rand_logits.values()
    ]
    stats = torch.stack(
        [terms[k] * len(y) for k in ('class', 'rnd', 'unlearn')] + [c.float() for c in counts]
    )
    return terms['total'], stats.detach()  # (3 + 1 + taps,): loss sums, correct counts


def environment(device):
    try:
        commit = subprocess.run(
            ['git', 'rev-parse', 'HEAD'],
            capture_output=True,
            text=True,
            cwd=os.path.dirname(__file__) or '.',
        ).stdout.strip()
    except OSError:
        commit = ''
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'
    return {
        'torch': torch.__version__,
        'torchvision': torchvision.__version__,
        'device': name,
        'git_commit': commit,
    }


class Diverged(Exception):
    """The loss became NaN or infinite: the run stops and is recorded as diverged."""


def make_optimizer(model, cfg, device):
    """SGD with Nesterov momentum; weight decay on f and g, never on the random-label heads
    (their capacity is what we measure)."""
    heads = list(model.rand_heads.parameters())
    body = [p for name, p in model.named_parameters() if not name.startswith('rand_heads.')]
    return torch.optim.SGD(
        [
            {'params': body, 'weight_decay': cfg.weight_decay},
            {'params': heads, 'weight_decay': 0.0},
        ],
        lr=cfg.lr,
        momentum=0.9,
        nesterov=True,
        fused=device.type == 'cuda',
    )


def save_checkpoint(path, model, opt, loader, history, config):
    """Everything a resumed run needs to continue bit for bit: weights, optimizer, data order,
    RNG states."""
    cuda = next(model.parameters()).is_cuda
    state = {
        'model': model.state_dict(),
        'optimizer': opt.state_dict(),
        'loader': loader.state_dict(),
        'rng_cpu': torch.get_rng_state(),
        'rng_cuda': torch.cuda.get_rng_state() if cuda else None,
        'history': history,
        'config': config,
    }
    torch.save(state, path + '.tmp')
    os.replace(path + '.tmp', path)  # atomic: a kill loses at most the current epoch


def load_checkpoint(path, model, opt, loader, config):
    """Restore a checkpoint of this same run; returns its history.

    A checkpoint of another run is refused.
    """
    ckpt = torch.load(path, map_location=next(model.parameters()).device, weights_only=False)

    def same(c):
        return {k: v for k, v in c.items() if k not in ('out', 'device', 'compile', 'data_dir')}

    if same(ckpt['config']) != same(config):
        print(
            f'train.py: error: --out {config["out"]} holds a checkpoint of a different run; '
            'use another --out',
            file=sys.stderr,
        )
        sys.exit(2)
    model.load_state_dict(ckpt['model'])
    opt.load_state_dict(ckpt['optimizer'])
    loader.load_state_dict(ckpt['loader'])
    torch.set_rng_state(ckpt['rng_cpu'])
    if ckpt['rng_cuda'] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(ckpt['rng_cuda'])
    print(f'resumed from {path} after epoch {len(ckpt["history"])}')
    return ckpt['history']


def train_epoch(model, opt, loader, step_fn, cfg, lam, epoch, taps):
    """One pass over the training set.

    Returns the online statistics and the number of images seen.
    """
    device, steps_per_epoch = lam.device, len(loader)
    total_steps, sync_every = cfg.epochs * steps_per_epoch, (SYNC_EVERY_CUDA if lam.is_cuda else 1)
    sums, seen = torch.zeros(4 + len(taps), device=device), 0
    model.train()
    bar = tqdm(loader, desc=f'epoch {epoch}/{cfg.epochs}', leave=False, disable=None)
    for i, (x, y, r) in enumerate(bar):
        step = (epoch - 1) * steps_per_epoch + i
        for group in opt.param_groups:
            group['lr'] = lr_at(step, total_steps, steps_per_epoch, cfg)
        lam.fill_(lam_at(step / total_steps, cfg))
        loss, stats = step_fn(model, x, y, r, cfg, lam)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sums += stats
        seen += len(y)
        if (i + 1) % sync_every == 0 or i + 1 == steps_per_epoch:
            # the only sync: a NaN in any step makes these NaN
            mean_losses = (sums[:3] / seen).tolist()
            if not all(map(math.isfinite, mean_losses)):
                raise Diverged(
                    f'non-finite loss at step {step}: '
                    + ', '.join(
                        f'{k} {v}'
                        for k, v in zip(('class', 'rnd', 'unlearn'), mean_losses, strict=True)
                    )
                )
            bar.set_postfix(loss=f'{mean_losses[0]:.3f}')
    sums = [v / seen for v in sums.tolist()]
    return {
        'loss_class': sums[0],
        'loss_rnd': sums[1],
        'loss_unlearn': sums[2],
        'train_acc': sums[3],
        'rand_acc': dict(zip(taps, sums[4:], strict=True)),
    }, seen


def final_metrics(model, train_eval, history, cfg, num_classes, n_test):
    """The metric after the last epoch: a full pass over the training set (eval mode, no
    augmentation). The test numbers are the last epoch's, which were measured on these same
    weights."""
    train, last, K = evaluate(model, train_eval, cfg), history[-1], cfg.random_labels
    per_head = train['n'] / (num_classes if cfg.rlp_head == 'per-class' else 1)
    return {
        'epoch': cfg.epochs,
        'lr': last['lr'],
        'lam': last['lam'],
        **{k: train[k] for k in ('loss_class', 'loss_rnd', 'loss_unlearn')},
        'train_acc': train['acc'],
        'test_acc': last['test_acc'],
        'gen_gap': train['acc'] - last['test_acc'],
        'rand_acc': train['rand_acc'],
        'rand_acc_test': last['rand_acc_test'],
        'complexity': {t: complexity(a, K) for t, a in train['rand_acc'].items()},
        'rand_acc_ci': {t: wilson_interval(a, train['n']) for t, a in train['rand_acc'].items()},
        # where chance may fall
        'rand_acc_test_ci': {t: wilson_interval(1 / K, n_test) for t in model.taps},
        'head_capacity': {
            t: {'samples_per_head': per_head, 'dim': d, 'cover_2d': 2 * d}
            for t, d in model.dims.items()
        },
        'seconds': sum(h['seconds'] for h in history),
        'images_per_s': sum(h['images_per_s'] for h in history) / len(history),
    }


def run(cfg):
    results_path = os.path.join(cfg.out, 'results.json')
    ckpt_path = os.path.join(cfg.out, 'checkpoint.pt')
    if os.path.exists(results_path):
        print(f'{results_path} exists: run finished, nothing to do')
        with open(results_path) as f:
            return json.load(f)
    config = vars(cfg)
    data, model, device = setup(cfg)
    env = environment(device)
    print(f'torch {env["torch"]} on {env["device"]} | config {json.dumps(config)}', flush=True)
    loader = data_lib.GpuLoader(
        data.train_x,
        data.train_y,
        data.train_r,
        data.mean,
        data.std,
        cfg.batch_size,
        device,
        shuffle=True,
        augment=cfg.augment,
        drop_last=cfg.compile,
        seed=cfg.seed,
    )
    train_eval, test_eval = eval_loaders(data, cfg, device)
    opt = make_optimizer(model, cfg, device)
    # fuses the heads' small kernels
    step_fn = torch.compile(forward_step) if cfg.compile else forward_step
    lam = torch.zeros((), device=device)  # a tensor: changing λ never recompiles
    history = (
        load_checkpoint(ckpt_path, model, opt, loader, config) if os.path.exists(ckpt_path) else []
    )
    results = {'config': config, 'env': env}
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        try:
            online, seen = train_epoch(model, opt, loader, step_fn, cfg, lam, epoch, model.taps)
        except Diverged as e:
            results.update(
                status='diverged',
                diverged={'epoch': epoch, 'reason': str(e)},
                history=history,
                final=None,
            )
            write_json(results_path, results)
            print(f'diverged in epoch {epoch} ({e}); wrote {results_path}', file=sys.stderr)
            return results
        seconds = time.perf_counter() - t0
        test = evaluate(model, test_eval, cfg)
        history.append(
            {
                'epoch': epoch,
                'lr': opt.param_groups[0]['lr'],
                'lam': lam.item(),
                **online,
                'test_acc': test['acc'],
                'rand_acc_test': test['rand_acc'],
                'complexity': {
                    t: complexity(a, cfg.random_labels) for t, a in online['rand_acc'].items()
                },
                'seconds': seconds,
                'images_per_s': seen / seconds,
            }
        )
        print(
            f'epoch {epoch:3d}/{cfg.epochs} | loss {online["loss_class"]:.3f} '
            f'| train {online["train_acc"]:.1%} test {test["acc"]:.1%} '
            f'| random-label train {online["rand_acc"]["penultimate"]:.1%} '
            f'test {test["rand_acc"]["penultimate"]:.1%} (chance {1 / cfg.random_labels:.1%}) | '
            f'{seconds:.1f} s, {seen / seconds:,.0f} img/s',
            flush=True,
        )
        save_checkpoint(ckpt_path, model, opt, loader, history, config)

    final = final_metrics(model, train_eval, history, cfg, data.num_classes, len(data.test_y))
    results.update(
        status='done',
        history=history,
        final=final,
        data={
            'n_train': len(data.train_y),
            'n_test': len(data.test_y),
            'num_classes': data.num_classes,
            'noisy_labels': data.noisy_labels,
        },
    )
    write_json(results_path, results)
    print(
        f'done | test {final["test_acc"]:.1%} | random-label train '
        + ', '.join(f'{t} {a:.1%}' for t, a in final['rand_acc'].items())
        + ' | test (chance check) '
        + ', '.join(f'{t} {a:.1%}' for t, a in final['rand_acc_test'].items())
        + f' | {results_path}'
    )
    return results


def main(argv=None):
    cfg = parse_args(argv)
    try:
        run(cfg)
    except data_lib.DataError as e:
        print(f'train.py: error: {e}', file=sys.stderr)
        sys.exit(2)


if __name__ == '__main__':
    main()
