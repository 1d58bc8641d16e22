"""One training run with random-label heads: python train.py --dataset fake --out runs/x

Trains f and g on the class labels and one random-label head per tap on the random labels
(model.py), with the objective of regularizer.losses, and measures the heads as in metrics.py.
Writes DIR/checkpoint.pt atomically every epoch and DIR/results.json when the run ends (status
"done" or "diverged"); rerunning the same command resumes from the checkpoint, a finished run is
not redone, and a changed option on an existing folder is refused. Bad input: one line on stderr,
exit code 2.

Several GPUs: `torchrun --nproc_per_node N train.py ...` trains one run on N processes with the
same numbers as one process with the same global --batch-size (parallel.py says how); a run not
under torchrun takes a GPU that no other run holds, so `make -j N` spreads a study over N GPUs.

Defaults: SGD with Nesterov momentum 0.9, batch 512, peak lr 0.2 (the usual 0.1 at batch 128 of the
WRN and ResNet CIFAR recipes, scaled by sqrt(4) for batch 512), one epoch of linear warm-up then
cosine decay to 0, weight decay 5e-4 (Zagoruyko & Komodakis 2016; not applied to the random-label
heads, whose capacity is the thing measured), crop+flip augmentation, 30 epochs.
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
import parallel
import tod
from metrics import autocast, complexity, evaluate, wilson_interval
from model import MODELS, Net
from regularizer import class_loss_options, losses

# steps between the only host-device syncs of training (divergence check, progress bar)
SYNC_EVERY_CUDA = 50
# options that say where and how fast a run goes, not what it computes: a resumed or repeated
# run may change them
PLACE_OPTIONS = ('out', 'device', 'compile', 'data_dir')


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2, no usage dump
        self.exit(2, f'{self.prog}: error: {message} (see python {self.prog} --help)\n')


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every default, except None (the help text says what no value means)."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def build_parser():
    p = Parser(prog='train.py', description=__doc__.split('\n')[0], formatter_class=HelpFormatter)
    add, flag = p.add_argument, argparse.BooleanOptionalAction
    add('--dataset', default='fashion-mnist', choices=data_lib.DATASETS, help='training data')
    add('--fake-like', default='cifar10', choices=list(data_lib.FAKE_SHAPES), help='fake shape')
    add('--model', default='cnn', choices=MODELS, help='backbone f')
    add('--epochs', type=int, default=30, help='passes over the training set')
    add('--batch-size', type=int, default=512, help='images per step')
    add('--lr', type=float, default=0.2, help='peak learning rate (1 epoch warm-up, then cosine)')
    add('--weight-decay', type=float, default=5e-4, help='on f and g, not on the heads')
    add('--dropout', type=float, default=0.0, help='on z before the task head g')
    add('--label-smoothing', type=float, default=0.0, help='of the class loss')
    add('--augment', action=flag, default=True, help='random crop (pad 4) + horizontal flip')
    add('--random-labels', type=int, default=2, metavar='K', help='random labels (2: Rademacher)')
    add('--rlp-head', default='per-class', choices=['per-class', 'shared'], help='head layout')
    add('--taps', default='penultimate', choices=['penultimate', 'all'], help='where heads sit')
    add(
        '--unlearn',
        default='none',
        choices=['none', 'grl', 'reg', 'confusion'],
        help='unlearning term (confusion: Alvi et al. 2018)',
    )
    add('--unlearn-taps', default='penultimate', choices=['penultimate', 'all'], help='where')
    add('--lam', type=float, default=1.0, help='λ, weight of the unlearning term')
    add('--lam-schedule', default='constant', choices=['constant', 'dann'], help='λ over time')
    # the related systems (SPEC, "Related systems"), each an option of the same run
    add('--loss', default='ce', choices=['ce', 'rll'], help='class loss (rll: Patel & Sastry 2021)')
    add('--rll-alpha', type=float, default=0.1, help='α of the robust log loss')
    add('--limit', action=flag, default=False,
        help="LIMIT (Harutyunyan et al. 2020): the class gradient at g's logits is predicted from "
        'x alone by an auxiliary network q of the same architecture')  # fmt: skip
    add('--limit-beta', type=float, default=1.0, help="β, weight of LIMIT's penalty β‖ĝ‖²")
    add('--tod', action=flag, default=False,
        help='turn-over dropout on z with a fixed mask per dataset index (Kobayashi et al. 2020): '
        'per-sample self-influence in DIR/self_influence.pt')  # fmt: skip
    add(
        '--memorize',
        action=flag,
        default=False,
        help='positive control: the penultimate head reads z without stop-gradient, so f is '
        'trained on the random labels (the network memorizes them)',
    )
    add('--label-seed', type=int, default=0, help='seeds random labels, noise, subset, halves')
    add('--seed', type=int, default=0, help='seeds initialization, data order, augmentation')
    add('--label-noise', type=float, default=0.0, help='probability of replacing a class label')
    add('--subset', type=int, default=None, help='train on this many images (default: all)')
    add(
        '--half',
        type=int,
        default=None,
        metavar='J',
        help='train on the J-th seeded random half of the training images (halves 2k and 2k+1 '
        'are complementary: the leave-out models of Feldman & Zhang 2020)',
    )
    add('--test-subset', type=int, default=None, help='test on this many images (default: all)')
    add('--data-dir', default='data', help='where datasets are read or downloaded')
    add('--out', default='runs/default', help='run folder: results.json, checkpoint.pt')
    add('--device', default='auto', choices=['auto', 'cpu', 'cuda'], help='auto: CUDA if any')
    add('--compile', action=flag, default=False, help='torch.compile the training step')
    add('--bf16', action=flag, default=True, help='bf16 autocast on CUDA (no effect on the CPU)')
    return p


def parse_args(argv=None):
    p = build_parser()
    cfg = p.parse_args(argv)
    finite = math.isfinite
    checks = [
        (cfg.epochs >= 1, f'--epochs must be >= 1 (got {cfg.epochs})'),
        (cfg.batch_size >= 1, f'--batch-size must be >= 1 (got {cfg.batch_size})'),
        (finite(cfg.lr) and cfg.lr > 0, f'--lr must be a finite number > 0 (got {cfg.lr})'),
        (
            finite(cfg.weight_decay) and cfg.weight_decay >= 0,
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
        (finite(cfg.lam) and cfg.lam >= 0, f'--lam must be a finite number >= 0 (got {cfg.lam})'),
        (
            not (cfg.memorize and cfg.unlearn != 'none'),
            '--memorize trains f on the random labels and --unlearn against them; use one',
        ),
        (
            finite(cfg.rll_alpha) and cfg.rll_alpha > 0,
            f'--rll-alpha must be a finite number > 0 (got {cfg.rll_alpha})',
        ),
        (
            finite(cfg.limit_beta) and cfg.limit_beta >= 0,
            f'--limit-beta must be a finite number >= 0 (got {cfg.limit_beta})',
        ),
        (
            not (cfg.loss == 'rll' and cfg.label_smoothing > 0),
            '--label-smoothing smooths the cross-entropy target; use it with --loss ce',
        ),
        (
            not (cfg.limit and cfg.loss != 'ce'),
            '--limit predicts the gradient of the cross-entropy; use it with --loss ce',
        ),
        (
            0 <= cfg.label_noise <= 1,
            f'--label-noise must be a probability in [0, 1] (got {cfg.label_noise})',
        ),
        (cfg.subset is None or cfg.subset >= 1, f'--subset must be >= 1 (got {cfg.subset})'),
        (cfg.half is None or cfg.half >= 0, f'--half must be >= 0 (got {cfg.half})'),
        (
            not (cfg.tod and parallel.world_size() > 1),
            '--tod scores every training sample in one process; run it without torchrun',
        ),
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
        probe = os.path.join(cfg.out, f'.write-test-{os.getpid()}')  # one per process
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


def pick_device(cfg):
    """The CPU, or a GPU: under torchrun the local rank's, else one that no other run holds (when
    several are visible: `make -j N` runs N runs on N GPUs)."""
    cuda = cfg.device == 'cuda' or (cfg.device == 'auto' and torch.cuda.is_available())
    if not cuda:
        return torch.device('cpu')
    count = torch.cuda.device_count()
    if parallel.under_torchrun():
        index = int(os.environ['LOCAL_RANK'])
        if index >= count:
            print(
                f'train.py: error: torchrun started local process {index} on a machine with '
                f'{count} GPUs; use --nproc_per_node {count} or less',
                file=sys.stderr,
            )
            sys.exit(2)
    else:
        index = 0 if count == 1 else parallel.claim_gpu(parallel.gpu_ids())
    torch.cuda.set_device(index)  # the default GPU: its RNG state is the one checkpoints save
    return torch.device('cuda', index)


def load_data(cfg):
    """The run's data (CPU tensors), as its config selects it."""
    return data_lib.load(
        cfg.dataset,
        cfg.data_dir,
        cfg.label_seed,
        cfg.random_labels,
        label_noise=cfg.label_noise,
        subset=cfg.subset,
        fake_like=cfg.fake_like,
        test_subset=cfg.test_subset,
        half=cfg.half,
    )


def build_model(cfg, data, device):
    """The network at initialization, seeded by cfg.seed: the same weights on every call."""
    torch.manual_seed(cfg.seed)
    _, channels, size, _ = data.train_x.shape
    model = Net(
        cfg.model,
        channels,
        data.num_classes,
        random_labels=cfg.random_labels,
        rlp_head=cfg.rlp_head,
        taps=cfg.taps,
        dropout=cfg.dropout,
        image_size=size,
        # turn-over dropout masks over the whole training split, keyed by dataset index
        tod_samples=len(data.train_y) + len(data.heldout_y) if cfg.tod else 0,
        tod_seed=cfg.seed,
        limit=cfg.limit,
    )
    # channels-last: the GPU's fast convolution layout
    memory_format = torch.channels_last if device.type == 'cuda' else torch.contiguous_format
    torch.backends.cudnn.benchmark = True  # pick the fastest conv kernels once per shape
    return model.to(device, memory_format=memory_format)


def eval_loader(data, split, device, limit=None):
    """A split ('train', 'heldout', 'test') in order, without augmentation; the first `limit`
    samples only if given. Training samples come with their dataset indices. Under torchrun, this
    process's shard of every batch."""
    x, y, r = (getattr(data, f'{split}_{k}')[:limit] for k in 'xyr')
    index = data.train_index if split == 'train' else None
    shard = {'rank': parallel.rank(), 'world': parallel.world_size()}
    return data_lib.GpuLoader(x, y, r, data.mean, data.std, 1024, device, index=index, **shard)


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


class Objective(torch.nn.Module):
    """regularizer.losses of a batch as a module. DDP wraps it (parallel.distribute), so that
    every parameter, the heads' too, is used inside the forward pass whose gradients it averages.
    index: the samples' dataset indices (used by turn-over dropout only)."""

    def __init__(self, model, cfg):
        super().__init__()
        self.model, self.cfg = model, cfg

    def forward(self, x, y, r, lam, index=None):
        c = self.cfg
        return losses(
            self.model,
            x,
            y,
            r,
            c.unlearn,
            lam,
            c.unlearn_taps,
            c.label_smoothing,
            c.memorize,
            **class_loss_options(c),
            index=index if c.tod else None,
        )


def forward_step(objective, x, y, r, cfg, lam, index=None):
    """Loss to minimize, and batch statistics kept on the device (loss sums, images, correct
    counts). objective: an Objective, or the same under DDP; index: the samples' dataset indices."""
    with autocast(x.device, cfg.bf16):
        terms, logits, rand_logits = objective(x, y, r, lam, index)
    counts = [(logits.argmax(1) == y).sum()]
    counts += [(head_logits.argmax(1) == r).sum() for head_logits in rand_logits.values()]
    loss_sums = [terms[k] * len(y) for k in ('class', 'rnd', 'unlearn')]
    images = x.new_full((), len(y))
    stats = torch.stack(loss_sums + [images] + [c.float() for c in counts])  # (3 + 1 + 1 + taps,)
    return terms['total'], stats.detach()


def environment(device, cfg):
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        git = subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True, cwd=here)
        commit = git.stdout.strip()
    except OSError:
        commit = ''
    return {
        'torch': torch.__version__,
        'torchvision': torchvision.__version__,
        'device': torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu',
        'world_size': parallel.world_size(),
        'bf16': cfg.bf16 and device.type == 'cuda',  # what ran, whatever the flag said
        'git_commit': commit,
    }


class Diverged(Exception):
    """The loss became NaN or infinite: the run stops and is recorded as diverged."""


def make_optimizer(model, cfg, device):
    """SGD with Nesterov momentum; weight decay on f and g, never on the random-label heads
    (their capacity is what we measure)."""
    heads = list(model.rand_heads.parameters())
    body = [p for name, p in model.named_parameters() if not name.startswith('rand_heads.')]
    groups = [
        {'params': body, 'weight_decay': cfg.weight_decay},
        {'params': heads, 'weight_decay': 0.0},
    ]
    return torch.optim.SGD(
        groups, lr=cfg.lr, momentum=0.9, nesterov=True, fused=device.type == 'cuda'
    )


def run_identity(config):
    """The options that define what a run computes (not where or how fast it runs)."""
    return {k: v for k, v in config.items() if k not in PLACE_OPTIONS}


def refuse_other_run(stored, config, what):
    """Exit 2 when an existing folder holds a run of another config, naming what differs."""
    old, new = run_identity(stored), run_identity(config)
    if old != new:
        diff = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        shown = ', '.join(f'--{k.replace("_", "-")} {old.get(k)} -> {new.get(k)}' for k in diff)
        print(
            f'train.py: error: --out {config["out"]} holds {what} of a different run ({shown}); '
            'use another --out',
            file=sys.stderr,
        )
        sys.exit(2)


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
    """Restore a checkpoint of this same run; returns its history. Another run's is refused."""
    ckpt = torch.load(path, map_location=next(model.parameters()).device, weights_only=False)
    refuse_other_run(ckpt['config'], config, 'a checkpoint')
    model.load_state_dict(ckpt['model'])
    opt.load_state_dict(ckpt['optimizer'])
    loader.load_state_dict(ckpt['loader'])
    torch.set_rng_state(ckpt['rng_cpu'])
    if ckpt['rng_cuda'] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(ckpt['rng_cuda'])
    print(f'resumed from {path} after epoch {len(ckpt["history"])}')
    return ckpt['history']


def train_epoch(objective, opt, loader, step_fn, cfg, lam, epoch, taps):
    """One pass over the training set; returns the online statistics and the images seen (by all
    processes: the sums are added over them)."""
    steps_per_epoch = len(loader)
    total_steps = cfg.epochs * steps_per_epoch
    sync_every = SYNC_EVERY_CUDA if lam.is_cuda else 1
    sums = torch.zeros(5 + len(taps), device=lam.device)  # as forward_step's stats
    objective.train()
    quiet = None if parallel.rank() == 0 else True  # None: a bar when writing to a terminal
    bar = tqdm(loader, desc=f'epoch {epoch}/{cfg.epochs}', leave=False, disable=quiet)
    for i, (x, y, r, index) in enumerate(bar):
        step = (epoch - 1) * steps_per_epoch + i
        for group in opt.param_groups:
            group['lr'] = lr_at(step, total_steps, steps_per_epoch, cfg)
        lam.fill_(lam_at(step / total_steps, cfg))
        loss, stats = step_fn(objective, x, y, r, cfg, lam, index)
        # DDP averages the processes' gradients: weighing each by its share of the global batch
        # makes that the global batch's mean gradient (the share is 1 for one process)
        share = len(y) * parallel.world_size() / loader.batch_len
        opt.zero_grad(set_to_none=True)
        (loss * share).backward()
        opt.step()
        sums += stats
        if (i + 1) % sync_every == 0 or i + 1 == steps_per_epoch:
            # the only sync: a NaN in any step of any process makes these NaN
            totals = parallel.all_reduce_sum(sums.clone())
            mean_losses = (totals[:3] / totals[3]).tolist()
            if not all(map(math.isfinite, mean_losses)):
                names = ('class', 'rnd', 'unlearn')
                values = ', '.join(f'{k} {v}' for k, v in zip(names, mean_losses, strict=True))
                raise Diverged(f'non-finite loss at step {step}: {values}')
            bar.set_postfix(loss=f'{mean_losses[0]:.3f}')
    totals = totals.tolist()
    seen = int(totals[3])
    means = [v / seen for v in totals]
    online = {'loss_class': means[0], 'loss_rnd': means[1], 'loss_unlearn': means[2]}
    online.update(train_acc=means[4], rand_acc=dict(zip(taps, means[5:], strict=True)))
    return online, seen


def tod_epoch(model, data, device):
    """Turn-over dropout after an epoch: the mean self-influence of clean and noisy samples and
    their training accuracy through their own masks (who is fitted when; Liu et al. 2021)."""
    per_sample = tod.self_influence(model, eval_loader(data, 'train', device))
    summary = tod.summarize(per_sample, data.train_noisy)
    keep = ('self_influence', 'train_acc_clean', 'train_acc_noisy')
    return {k: summary[k] for k in keep}, per_sample


def tod_final(model, data, device, out):
    """Self-influence of every training sample, and the test influence of hard and easy clean
    ones; writes DIR/self_influence.pt atomically and returns the summary for `final`."""
    summary, per_sample = tod_epoch(model, data, device)
    test = eval_loader(data, 'test', device, limit=tod.TEST_INFLUENCE_MAX)
    index = per_sample['index']
    per_sample['test_influence'] = tod.test_influence(model, index, data.train_y, test)
    # control: every sample scored with another sample's mask (seeded permutation)
    permuted = index[torch.randperm(len(index), generator=torch.Generator().manual_seed(0))]
    per_sample['test_influence_control'] = tod.test_influence(model, permuted, data.train_y, test)
    per_sample.update(noisy=data.train_noisy, y=data.train_y)
    path = os.path.join(out, 'self_influence.pt')
    torch.save(per_sample, path + '.tmp')
    os.replace(path + '.tmp', path)
    acc = tod.summarize(per_sample, data.train_noisy)['self_influence_acc']
    hard_easy = tod.hard_and_easy(per_sample, data.train_noisy)
    return {
        'self_influence': summary['self_influence'],
        'self_influence_acc': acc,
        'test_influence': hard_easy,
    }


def final_metrics(model, data, history, cfg, device):
    """The metric after the last epoch: a full pass over the training set (eval mode, no
    augmentation). The test numbers are the last epoch's, measured on these same weights."""
    train = evaluate(model, eval_loader(data, 'train', device), cfg)
    last, K = history[-1], cfg.random_labels
    noisy = data.train_noisy
    per_head = train['n'] / (data.num_classes if cfg.rlp_head == 'per-class' else 1)
    rand_acc = train['rand_acc']
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
        'rand_acc': rand_acc,
        'rand_acc_test': last['rand_acc_test'],
        'complexity': {t: complexity(a, K) for t, a in rand_acc.items()},
        'rand_acc_ci': {t: wilson_interval(a, train['n']) for t, a in rand_acc.items()},
        # where chance may fall on the test set
        'rand_acc_test_ci': {t: wilson_interval(1 / K, len(data.test_y)) for t in model.taps},
        'head_capacity': {
            t: {'samples_per_head': per_head, 'dim': d, 'cover_2d': 2 * d}
            for t, d in model.dims.items()
        },
        'seconds': sum(h['seconds'] for h in history),
        'images_per_s': sum(h['images_per_s'] for h in history) / len(history),
        # turn-over dropout (--tod): mean self-influence of clean and noisy samples, and more
        **(tod_final(model, data, device, cfg.out) if cfg.tod else {'self_influence': None}),
    }


def finished(results_path, config):
    """The results of a finished run of this same config, or None if there is none."""
    if not os.path.exists(results_path):
        return None
    with open(results_path) as f:
        results = json.load(f)
    refuse_other_run(results['config'], config, 'the results')
    print(f'{results_path} exists: run finished, nothing to do')
    return results


def refuse_small_batches(cfg, n):
    """Exit 2 when a training batch would be empty: under --compile (which keeps only full
    batches), or for a process under torchrun (each takes a shard of every batch)."""
    if cfg.compile and n < cfg.batch_size:
        print(
            f'train.py: error: --batch-size {cfg.batch_size} is larger than the {n} training '
            f'images, and --compile keeps only full batches; use --batch-size {n} or less',
            file=sys.stderr,
        )
        sys.exit(2)
    last = 0 if cfg.compile else n % cfg.batch_size  # the epoch's partial batch, if any
    smallest = min(cfg.batch_size, n, last or n)
    world = parallel.world_size()
    if smallest < world:
        print(
            f'train.py: error: --batch-size {cfg.batch_size} on {n} training images gives a batch '
            f'of {smallest} images, fewer than the {world} processes; choose a --batch-size whose '
            f'batches all hold at least {world} images',
            file=sys.stderr,
        )
        sys.exit(2)


def run(cfg):
    results_path = os.path.join(cfg.out, 'results.json')
    ckpt_path = os.path.join(cfg.out, 'checkpoint.pt')
    config = vars(cfg)
    device = pick_device(cfg)
    parallel.start(device)  # under torchrun: join the other processes; only rank 0 prints
    main_process = parallel.rank() == 0  # the one that writes files
    done = finished(results_path, config)
    if done is not None:
        return done
    data = load_data(cfg)
    refuse_small_batches(cfg, len(data.train_y))
    model = build_model(cfg, data, device)
    env = environment(device, cfg)
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
        drop_last=cfg.compile,  # one shape for the compiled step
        seed=cfg.seed,
        index=data.train_index,
        rank=parallel.rank(),
        world=parallel.world_size(),
    )
    model = parallel.global_batch(model, loader, device)  # BatchNorm and dropout, under torchrun
    test_eval = eval_loader(data, 'test', device)
    opt = make_optimizer(model, cfg, device)
    lam = torch.zeros((), device=device)  # a tensor: changing λ never recompiles
    # every process resumes from the checkpoint of rank 0, before any of them can write another
    resume = os.path.exists(ckpt_path)
    history = load_checkpoint(ckpt_path, model, opt, loader, config) if resume else []
    objective = parallel.distribute(Objective(model, cfg), device)  # DDP under torchrun
    # compile fuses the heads' small kernels
    step_fn = torch.compile(forward_step) if cfg.compile else forward_step
    results = {'config': config, 'env': env}
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        try:
            online, seen = train_epoch(objective, opt, loader, step_fn, cfg, lam, epoch, model.taps)
        except Diverged as e:  # every process sees the same sums, so all of them stop here
            diverged = {'epoch': epoch, 'reason': str(e)}
            results.update(status='diverged', diverged=diverged, history=history, final=None)
            if main_process:
                write_json(results_path, results)
                print(f'diverged in epoch {epoch} ({e}); wrote {results_path}', file=sys.stderr)
            return results
        seconds = time.perf_counter() - t0
        test = evaluate(model, test_eval, cfg)
        complexities = {t: complexity(a, cfg.random_labels) for t, a in online['rand_acc'].items()}
        history.append(
            {
                'epoch': epoch,
                'lr': opt.param_groups[0]['lr'],
                'lam': lam.item(),
                **online,
                'test_acc': test['acc'],
                'rand_acc_test': test['rand_acc'],
                'complexity': complexities,
                'seconds': seconds,
                'images_per_s': seen / seconds,
                # --tod: self-influence and accuracy of clean and noisy samples, per epoch
                **(tod_epoch(model, data, device)[0] if cfg.tod else {}),
            }
        )
        print(
            f'epoch {epoch:3d}/{cfg.epochs} | loss {online["loss_class"]:.3f} '
            f'| train {online["train_acc"]:.1%} test {test["acc"]:.1%} '
            f'| random-label train {online["rand_acc"]["penultimate"]:.1%} '
            f'test {test["rand_acc"]["penultimate"]:.1%} (chance {1 / cfg.random_labels:.1%}) '
            f'| {seconds:.1f} s, {seen / seconds:,.0f} img/s',
            flush=True,
        )
        if main_process:
            save_checkpoint(ckpt_path, model, opt, loader, history, config)

    final = final_metrics(model, data, history, cfg, device)
    data_info = {
        'n_train': len(data.train_y),
        'n_heldout': len(data.heldout_y),
        'n_test': len(data.test_y),
        'num_classes': data.num_classes,
        'noisy_labels': data.noisy_labels,
    }
    results.update(status='done', history=history, final=final, data=data_info)
    if main_process:
        write_json(results_path, results)
    rand = ', '.join(f'{t} {a:.1%}' for t, a in final['rand_acc'].items())
    chance = ', '.join(f'{t} {a:.1%}' for t, a in final['rand_acc_test'].items())
    print(
        f'done | test {final["test_acc"]:.1%} | random-label train {rand} '
        f'| test (chance check) {chance} | {results_path}'
    )
    return results


def main(argv=None):
    cfg = parse_args(argv)
    try:
        run(cfg)
    except data_lib.DataError as e:
        print(f'train.py: error: {e}', file=sys.stderr)
        sys.exit(2)
    finally:
        parallel.stop()


if __name__ == '__main__':
    main()
