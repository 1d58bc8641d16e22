r"""One training run with random-label heads, then its controls: python train.py --out runs/x

Trains f and g on the class labels and one random-label head h per tap on the random labels
(model.py; [Becker & Risse 2024], [Becker et al. 2026]), minimizing
$L = L_{class} + \sum_{taps} L_{rnd} + \lambda L_{unlearn}$ (regularizer.losses) with SGD.
After every epoch it records the papers' number, the online head: each head's accuracy on the
batches it trained on. After the last it measures the same on the whole training set
(`final_metrics`) and fits fresh heads on the frozen network with their controls
(metrics.measure). Files in --out: checkpoint.pt after every epoch, results.json, probe.json;
plumbing.py writes them atomically, resumes a killed run bit for bit, refuses another run's folder.

Defaults: SGD with Nesterov momentum 0.9, batch 512, peak lr 0.2 (the usual 0.1 at batch 128 of the
WRN and ResNet CIFAR recipes, scaled by sqrt(4) for batch 512), one epoch of linear warm-up then
cosine decay to 0 ([Loshchilov & Hutter 2017]), weight decay 5e-4 ([Zagoruyko & Komodakis 2016];
not on the random-label heads, whose capacity is what is measured), crop + flip augmentation, 30
epochs.

[Becker & Risse 2024]: https://arxiv.org/abs/2411.19640
[Becker et al. 2026]: https://arxiv.org/abs/2607.11541
[Ganin & Lempitsky 2015]: https://arxiv.org/abs/1409.7495
[Zagoruyko & Komodakis 2016]: https://arxiv.org/abs/1605.07146
[Loshchilov & Hutter 2017]: https://arxiv.org/abs/1608.03983
[Jiang et al. 2020]: https://arxiv.org/abs/1912.02178
"""

import argparse
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm import tqdm

import data as data_lib
import plumbing
from metrics import capacity, complexity, correct, measure, wilson_interval
from model import MODELS, Net
from plumbing import COUNT, FRACTION, K_LABELS, NONNEGATIVE, POSITIVE, PROBABILITY
from regularizer import losses

SYNC_EVERY_CUDA = 50  # steps between the host-device syncs of training (divergence, progress bar)
LOSS_TERMS = ('class', 'rnd', 'unlearn')


def build_parser():
    example = '--dataset fake --fake-like fashion-mnist --subset 512 --batch-size 64 --lr 0.1'
    p = plumbing.Parser(
        'train.py',
        __doc__,
        epilog=f'About 10 s on a CPU: python train.py {example} '
        '--rlp-head shared --epochs 10 --out runs/first',
    )
    add, flag = p.add_argument, argparse.BooleanOptionalAction
    add('--dataset', default='fashion-mnist', choices=data_lib.DATASETS, help='training data')
    add('--fake-like', default='cifar10', choices=list(data_lib.FAKE_SHAPES), help='fake shape')
    add('--model', default='cnn', choices=MODELS, help='backbone f')
    add('--epochs', type=COUNT, default=30, help='passes over the training set')
    add('--stop-at-loss', type=POSITIVE, default=None, help="stop when an epoch's class loss ≤ it")
    add('--batch-size', type=COUNT, default=512, help='images per step')
    add('--lr', type=POSITIVE, default=0.2, help='peak learning rate (warm-up, then cosine)')
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
    add('--memorize', action=flag, default=False, help='the positive control: f learns r')
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
    memorize_or_unlearn = '--memorize trains f on r and --unlearn against it; use one'
    p.checks += [lambda cfg: cfg.memorize and cfg.unlearn != 'none' and memorize_or_unlearn]
    p.checks += [plumbing.cuda_visible, lambda cfg: plumbing.writable(cfg.out)]
    return p


def parse_args(argv=None, parser=None):
    return (parser or build_parser()).parse(argv)


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
    return model.to(device, memory_format=data_lib.memory_format(device))


def make_optimizer(model, cfg):
    """SGD with Nesterov momentum; weight decay on f and g, never on the random-label heads."""
    heads = list(model.rand_heads.parameters())
    body = [p for name, p in model.named_parameters() if not name.startswith('rand_heads.')]
    groups = [
        {'params': body, 'weight_decay': cfg.weight_decay},
        {'params': heads, 'weight_decay': 0},
    ]
    fused = heads[0].is_cuda  # one kernel for the whole update
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True, fused=fused)


def lr_at(step, total, steps_per_epoch, cfg):
    r"""One epoch of linear warm-up, then cosine decay to 0 ([Loshchilov & Hutter 2017]):
    $\eta = \eta_{peak} (1 + \cos \pi p) / 2$, p the progress after the warm-up."""
    if step < steps_per_epoch:
        return cfg.lr * (step + 1) / steps_per_epoch
    progress = (step - steps_per_epoch) / max(1, total - steps_per_epoch)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


def lam_at(progress, cfg):
    r"""λ, constant or ramped up as in DANN ([Ganin & Lempitsky 2015]),
    $\lambda_p = \lambda (2 / (1 + e^{-10 p}) - 1)$, progress p in [0, 1]."""
    if cfg.lam_schedule == 'dann':
        return cfg.lam * (2 / (1 + math.exp(-10 * progress)) - 1)
    return cfg.lam


def training_batches(cfg, data, device):
    """The training set in a seeded order, augmented on the device: batches (x, y, r)."""
    order = {'shuffle': True, 'augment': cfg.augment, 'drop_last': cfg.compile, 'seed': cfg.seed}
    x, labels, bs = data.train_x, (data.train_y, data.train_r), cfg.batch_size
    return data_lib.GpuLoader(x, labels, data.mean, data.std, bs, device, **order)


def eval_batches(data, split, device):
    """A split ('train', 'heldout', 'test') in order, without augmentation: batches (x, y, r)."""
    x, y, r = (getattr(data, f'{split}_{k}') for k in 'xyr')
    return data_lib.GpuLoader(x, (y, r), data.mean, data.std, 1024, device)


# --- the training step, the epoch, the evaluation pass ----------------------------------------


def objective(model, batch, lam, cfg):
    """The loss terms of a batch (x, y, r), its class logits and each tap's random-label logits."""
    (x, y, r), smoothing = batch[:3], cfg.label_smoothing
    return losses(model, x, y, r, lam, cfg.unlearn, cfg.unlearn_taps, cfg.memorize, smoothing)


def sums(terms, logits, rand_logits, y, r):
    """A batch's statistics as sums, kept on the device (no host sync per step)."""
    out = {f'loss_{k}': terms[k].detach().float() * len(y) for k in LOSS_TERMS}
    out |= {'images': torch.tensor(float(len(y)), device=y.device)}
    out |= {'correct': correct(logits, y).sum().float()}
    return out | {f'rand_{tap}': correct(h, r).sum().float() for tap, h in rand_logits.items()}


def means(sums_, taps):
    """Summed statistics, read back to the host -> the mean loss terms, class accuracy (`acc`) and
    random-label accuracy per tap; and the number of images."""
    s = dict(zip(sums_, torch.stack(list(sums_.values())).tolist(), strict=True))
    n = s['images']
    out = {f'loss_{k}': s[f'loss_{k}'] / n for k in LOSS_TERMS} | {'acc': s['correct'] / n}
    return out | {'rand_acc': {t: s[f'rand_{t}'] / n for t in taps}, 'n': int(n)}


def train_step(model, batches, cfg, objective):
    """The training step of `model`: (batch, λ) -> the loss to minimize and the batch's sums."""

    def step(batch, lam):
        with data_lib.autocast(lam.device, cfg.bf16):
            terms, logits, rand_logits = objective(model, batch, lam, cfg)
        return terms['total'], sums(terms, logits, rand_logits, *batch[1:3])

    return torch.compile(step) if cfg.compile else step  # compile fuses the heads' small kernels


def reached(history, cfg):
    """--stop-at-loss: the last epoch's online class cross-entropy (the mean over the batches it
    trained on) is at or below the criterion ([Jiang et al. 2020] train to 0.01)."""
    last = history[-1]['loss_class'] if history else math.inf
    return cfg.stop_at_loss is not None and last <= cfg.stop_at_loss


class Diverged(Exception):
    """The loss became NaN or infinite: the run stops and is recorded as diverged."""


def train_epoch(model, opt, batches, step, cfg, lam, epoch):
    """One pass over the training set; returns its online means: the papers' number among them,
    each head's accuracy on the batches it trained on."""
    steps_per_epoch, total = len(batches), None
    sync_every = SYNC_EVERY_CUDA if lam.is_cuda else 1
    model.train()
    for i, batch in enumerate(tqdm(batches, desc=f'epoch {epoch}', leave=False, disable=None)):
        t = (epoch - 1) * steps_per_epoch + i
        for group in opt.param_groups:
            group['lr'] = lr_at(t, cfg.epochs * steps_per_epoch, steps_per_epoch, cfg)
        lam.fill_(lam_at(t / (cfg.epochs * steps_per_epoch), cfg))
        loss, batch_sums = step(batch, lam)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total = batch_sums if total is None else {k: total[k] + v for k, v in batch_sums.items()}
        if (i + 1) % sync_every == 0 or i + 1 == steps_per_epoch:  # a NaN in any step shows here
            online = means(total, model.taps)
            if not all(math.isfinite(v) for k, v in online.items() if k.startswith('loss')):
                raise Diverged(f'non-finite loss at step {t}: class loss {online["loss_class"]}')
    return online


@torch.no_grad()
def evaluate(model, batches, objective, cfg):
    """One pass in eval mode: the training step's means, and which samples g classifies right
    (`correct`, in the batches' order)."""
    model.eval()
    total, hits = None, []
    for batch in batches:
        with data_lib.autocast(batch[0].device, cfg.bf16):
            terms, logits, rand_logits = objective(model, batch, cfg.lam, cfg)
        s = sums(terms, logits, rand_logits, *batch[1:3])
        total = s if total is None else {k: total[k] + v for k, v in s.items()}
        hits.append(correct(logits, batch[1]))
    model.train()
    return means(total, model.taps) | {'correct': torch.cat(hits).cpu()}


def epoch_record(epoch, opt, lam, online, test, seconds, K):
    """One epoch's entry of results.json's history: the online numbers and the test pass."""
    record = {'epoch': epoch, 'lr': opt.param_groups[0]['lr'], 'lam': lam.item()}
    record |= {f'loss_{k}': online[f'loss_{k}'] for k in LOSS_TERMS}
    record |= {'train_acc': online['acc'], 'test_acc': test['acc'], 'rand_acc': online['rand_acc']}
    record |= {'rand_acc_test': test['rand_acc']}
    record['complexity'] = {t: complexity(a, K) for t, a in online['rand_acc'].items()}
    return record | {'seconds': seconds, 'images_per_s': online['n'] / seconds}


def final_metrics(model, data, history, cfg, device, objective):
    """The metric after the last epoch: a full pass over the training set (eval mode, no
    augmentation). The test numbers are the last epoch's, measured on these same weights."""
    train = evaluate(model, eval_batches(data, 'train', device), objective, cfg)
    K, n, noisy, rand = cfg.random_labels, train['n'], data.train_noisy, train['rand_acc']
    last = {k: history[-1][k] for k in ('lr', 'lam', 'test_acc', 'rand_acc_test')}
    return {
        'epoch': len(history),
        **last,
        **{f'loss_{k}': train[f'loss_{k}'] for k in LOSS_TERMS},
        'train_acc': train['acc'],
        # accuracy on the (noisy) training labels of the samples label noise left alone / changed
        'train_acc_clean': train['correct'][~noisy].float().mean().item() if noisy.any() else None,
        'train_acc_noisy': train['correct'][noisy].float().mean().item() if noisy.any() else None,
        'gen_gap': train['acc'] - last['test_acc'],
        'rand_acc': rand,
        'complexity': {t: complexity(a, K) for t, a in rand.items()},
        'rand_acc_ci': {t: wilson_interval(a, n) for t, a in rand.items()},
        'rand_acc_test_ci': {t: wilson_interval(1 / K, len(data.test_y)) for t in rand},
        'head_capacity': {
            t: capacity(d, n, data.num_classes, K, cfg.rlp_head) for t, d in model.dims.items()
        },
        'seconds': sum(h['seconds'] for h in history),
        'images_per_s': sum(h['images_per_s'] for h in history) / len(history),
    }


def data_sizes(data):
    """results.json's `data`: how many samples each split holds."""
    sizes = {f'n_{s}': len(getattr(data, f'{s}_y')) for s in ('train', 'heldout', 'test')}
    return sizes | {'num_classes': data.num_classes, 'noisy_labels': int(data.train_noisy.sum())}


# --- one run ----------------------------------------------------------------------------------


@dataclass
class Seams:
    """The parts of a run an extension's trainer replaces (extensions/README.md says which one
    replaces what); train.py runs with these."""

    load_data: Callable = load_data  # cfg -> the run's Data
    build_model: Callable = build_model  # (cfg, data, device) -> the network at initialization
    objective: Callable = objective  # (model, batch, λ, cfg) -> terms, logits, {tap: logits}
    batches: Callable = training_batches  # (cfg, data, device) -> the training batches
    step: Callable = train_step  # (model, batches, cfg, objective) -> step(batch, λ)
    extras: Callable = lambda model, data, cfg, final: {}  # more numbers for results.json


def probe_seed(cfg):
    """The seed of a run's controls (which samples, which fresh label draws): --label-seed and
    --seed together, so that no two networks of a study share them (make validate's two halves of
    a pool share their label seed)."""
    return 1000 * cfg.label_seed + cfg.seed


def run(cfg, data=None, seams=None):
    """Train (or resume), evaluate, then measure the controls; returns results.json. data: the
    run's Data (default: as the options select it; an extension may pass its own)."""
    seams = seams or Seams()
    paths = {k: os.path.join(cfg.out, k) for k in ('results.json', 'probe.json', 'checkpoint.pt')}
    device = plumbing.pick_device(cfg.device)
    results = plumbing.read_finished(paths['results.json'], vars(cfg))
    if results is not None and (os.path.exists(paths['probe.json']) or not cfg.probe):
        print(plumbing.finished(cfg.out, results))
        return results
    data = data or seams.load_data(cfg)
    if cfg.compile and len(data.train_y) < cfg.batch_size:
        why = f'--compile needs full batches: --batch-size {cfg.batch_size} > {len(data.train_y)}'
        raise plumbing.Refused(f'{why} training images')
    model = seams.build_model(cfg, data, device)
    if results is None:
        results = train(cfg, data, model, device, paths, seams)
    else:  # finished, but without its controls: measure only (make, after metrics.py changed)
        plumbing.load_checkpoint(paths['checkpoint.pt'], model, vars(cfg))
        if results.get('code') != plumbing.code_fingerprint():
            print(
                f'{cfg.out}: trained by other code ({results.get("code")}); measured by this code'
            )
    if cfg.probe and results['status'] == 'done':
        init_model = build_model(cfg, data, device)  # the same seed: the run's own initialization
        layout = (cfg.random_labels, cfg.rlp_head)
        probe = measure(model, init_model, data, *layout, probe_seed(cfg), device)
        plumbing.write_json(paths['probe.json'], probe | plumbing.identity())
        t = probe['taps']['penultimate']
        fits = ' '.join(f'{k} {t[k]:.1%}' for k in ('a_train', 'a_fresh', 'a_heldout', 'a_init'))
        m, specific = (plumbing.points(t, k) for k in ('memorization', 'specific'))
        print(f'controls, penultimate: {fits} | m {m} | a_train - a_fresh {specific} points')
    return results


def train(cfg, data, model, device, paths, seams):
    """The epochs, with a checkpoint after each, then the final pass; returns results.json."""
    config, env = vars(cfg), plumbing.environment(device, cfg.bf16)
    print(f'torch {env["torch"]} on {env["device"]} | config {config}', flush=True)
    batches, test_batches = seams.batches(cfg, data, device), eval_batches(data, 'test', device)
    step = seams.step(model, batches, cfg, seams.objective)
    opt = make_optimizer(model, cfg)
    lam = torch.zeros((), device=device)  # a tensor: changing λ never recompiles
    results, history = {'config': config, 'env': env, **plumbing.identity()}, []
    if os.path.exists(paths['checkpoint.pt']):
        history = plumbing.load_checkpoint(paths['checkpoint.pt'], model, config, opt, batches)
        print(f'resumed from {paths["checkpoint.pt"]} after epoch {len(history)}')
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        if reached(history, cfg):  # --stop-at-loss: the criterion, met (on resume too)
            break
        t0 = time.perf_counter()
        try:
            online = train_epoch(model, opt, batches, step, cfg, lam, epoch)
        except Diverged as e:
            results |= {'status': 'diverged', 'diverged': {'epoch': epoch, 'reason': str(e)}}
            plumbing.write_json(
                paths['results.json'], results | {'history': history, 'final': None}
            )
            print(f'diverged in epoch {epoch} ({e}); wrote {paths["results.json"]}', flush=True)
            return results
        seconds = time.perf_counter() - t0
        test = evaluate(model, test_batches, seams.objective, cfg)
        history.append(epoch_record(epoch, opt, lam, online, test, seconds, cfg.random_labels))
        history[-1] |= seams.extras(model, data, cfg, final=False)
        rand, rand_test = online['rand_acc']['penultimate'], test['rand_acc']['penultimate']
        print(
            f'epoch {epoch:3d}/{cfg.epochs} | loss {online["loss_class"]:.3f} | train '
            f'{online["acc"]:.1%} test {test["acc"]:.1%} | random-label train {rand:.1%} test '
            f'{rand_test:.1%} (chance {1 / cfg.random_labels:.1%}) | {online["n"] / seconds:,.0f}'
            ' img/s'
        )
        saved = (model, opt, batches, history, config, data.train_index)
        plumbing.save_checkpoint(paths['checkpoint.pt'], *saved)
    final = final_metrics(model, data, history, cfg, device, seams.objective)
    final |= seams.extras(model, data, cfg, final=True)
    if cfg.stop_at_loss is not None:  # the criterion's record: epochs used, met or not
        final['stop'] = {'at_loss': cfg.stop_at_loss, 'epochs': len(history)}
        final['stop']['reached'] = history[-1]['loss_class'] <= cfg.stop_at_loss
    results |= {'status': 'done', 'history': history, 'final': final, 'data': data_sizes(data)}
    plumbing.write_json(paths['results.json'], results)
    rand = ', '.join(f'{t} {a:.1%}' for t, a in final['rand_acc'].items())
    print(
        f'done | test {final["test_acc"]:.1%} | random-label train {rand} | {paths["results.json"]}'
    )
    return results


def main(argv=None, parser=None, seams=None):
    """The command: a bad dataset or a refused folder is one line and exit code 2."""
    parser = parser or build_parser()
    cfg = parser.parse(argv)
    try:
        run(cfg, seams=seams)
    except (data_lib.DataError, plumbing.Refused) as e:
        parser.fail(str(e))


if __name__ == '__main__':
    main()
