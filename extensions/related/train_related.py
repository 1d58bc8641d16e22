"""train.py with the related systems: python -m extensions.related.train_related [train.py options]

Every option of train.py, plus (SPEC, "Related systems"):
  --loss rll --rll-alpha α     the robust log loss instead of CE for the class (classloss.py)
  --limit --limit-beta β       LIMIT: g's gradient predicted from x alone (classloss.py)
  --tod                        turn-over dropout on z with a fixed mask per sample (tod.py)
  --unlearn confusion          f pushes the frozen random-label head toward uniform output
The run's files and their contracts are train.py's; a --tod run adds DIR/self_influence.pt and
self-influence numbers to results.json. With none of these options it computes what train.py
computes (tests/ check it: the same results.json and probe.json), so the loop below is train.py's
`train` with the systems' lines added: diff the two to see them.

Confusion (Alvi, Zisserman & Nellåker 2018, "Turning a blind eye", the fair-AI method the seed
paper names as its inspiration): L_conf = -(1/K) Σ_k log p̂_k, the cross-entropy between the uniform
distribution and the frozen head's output, weighted by λ. It is smallest when the head cannot
tell the random labels apart (p̂ uniform, gradient 0) and, unlike gradient reversal or the output
regularizer, gives f no reward for making the head confidently wrong.
"""

import os
import sys
import time

import torch
import torch.nn.functional as F

import data as data_lib
import train
from metrics import autocast, evaluate, measure
from regularizer import random_label_losses

from . import classloss, tod


def build_parser():
    p = train.build_parser()
    p.prog = 'train_related'
    p.conflict_handler = 'resolve'  # --unlearn gains a choice: the option is redefined
    add = p.add_argument_group('related systems (SPEC, "Related systems")').add_argument
    choices = ['none', 'grl', 'reg', 'confusion']
    add('--unlearn', default='none', choices=choices, help='unlearning term (confusion: Alvi 2018)')
    add('--loss', default='ce', choices=['ce', 'rll'], help='class loss (rll: Patel & Sastry 2021)')
    add('--rll-alpha', type=train.POSITIVE, default=0.1, help='α of the robust log loss')
    add('--limit', action='store_true', help='LIMIT (Harutyunyan et al. 2020): predicted gradient')
    add('--limit-beta', type=train.NONNEGATIVE, default=1.0, help="β, weight of LIMIT's β‖ĝ‖²")
    add('--tod', action='store_true', help='turn-over dropout on z (Kobayashi et al. 2020)')
    return p


def parse_args(argv=None):
    p = build_parser()
    cfg = train.parse_args(argv, p)
    if cfg.loss == 'rll' and cfg.label_smoothing > 0:
        p.error('--label-smoothing smooths the cross-entropy target; use it with --loss ce')
    if cfg.limit and cfg.loss != 'ce':
        p.error('--limit predicts the gradient of the cross-entropy; use it with --loss ce')
    return cfg


def build_model(cfg, data, device):
    """train.py's network (the same initialization), plus LIMIT's q and the turn-over masks."""
    model = train.build_model(cfg, data, device)
    _, channels, size, _ = data.train_x.shape
    if cfg.limit:  # built after the network, whose initialization stays that of a plain run
        q = classloss.GradientPredictor(cfg.model, channels, data.num_classes, size)
        model.limit_q = q.to(device)
    if cfg.tod:  # masks over the whole training split, keyed by dataset index
        n_all = len(data.train_y) + len(data.heldout_y)
        model.tod = tod.TurnOverDropout(n_all, model.dims['penultimate'], cfg.seed).to(device)
    return model


def related_losses(model, x, y, r, index, lam, cfg):
    """regularizer.losses with the related systems: the class loss (CE, RLL or LIMIT), g reading z
    through the turn-over masks, and confusion as an unlearning term."""
    features = model.features(x)
    logits = tod.classify(model, features['penultimate'], index if cfg.tod else None)
    unlearn = 'none' if cfg.unlearn == 'confusion' else cfg.unlearn  # confusion: added below
    loss_rnd, loss_unlearn, rand_logits = random_label_losses(
        model.rand_heads, features, y, r, lam, unlearn, cfg.unlearn_taps, cfg.memorize
    )
    if cfg.unlearn == 'confusion':
        for tap, z in features.items():
            if cfg.unlearn_taps == 'all' or tap == 'penultimate':
                loss_unlearn = loss_unlearn + confusion_loss(
                    model.rand_heads[tap](z, y, frozen=True)
                )
    loss_q = torch.zeros((), device=x.device)
    class_logits = logits
    if cfg.limit:  # the classifier's gradient becomes the one q predicts from x alone
        class_logits, loss_q = classloss.limit(
            logits, model.limit_q(x), y, cfg.limit_beta, cfg.label_smoothing
        )
    if cfg.loss == 'rll':
        loss_class = classloss.robust_log_loss(class_logits, y, cfg.rll_alpha)
    else:
        loss_class = F.cross_entropy(class_logits.float(), y, label_smoothing=cfg.label_smoothing)
    weighted = lam * loss_unlearn if cfg.unlearn in ('reg', 'confusion') else 0
    total = loss_class + loss_rnd + loss_q + weighted
    terms = {'class': loss_class, 'rnd': loss_rnd, 'unlearn': loss_unlearn, 'total': total}
    return terms, logits, rand_logits


def confusion_loss(logits):
    """L_conf = mean_i -(1/K) Σ_k log p̂_{i,k} (Alvi et al. 2018). logits: (B, K), from the head
    with frozen parameters; its gradient p̂ - 1/K vanishes at a uniform head."""
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # (B, K), bf16 -> fp32
    return -torch.log_softmax(logits, 1).mean(1).mean()


def loss_fn(model, cfg, lam):
    """(x, y, r) -> loss terms and logits, for evaluation: no masks."""
    return lambda x, y, r: related_losses(model, x, y, r, None, lam, cfg)


def step(model, batch, lam, cfg):
    """train.forward_step with each sample's dataset index for the turn-over masks."""
    x, y, r, index = batch
    with autocast(x.device, cfg.bf16):
        terms, logits, rand_logits = related_losses(model, x, y, r, index, lam, cfg)
    stats = {f'loss_{k}': terms[k].detach() * len(y) for k in ('class', 'rnd', 'unlearn')}
    stats['images'] = x.new_tensor(len(y), dtype=torch.float32)
    stats['correct'] = (logits.argmax(1) == y).sum().float()
    stats |= {f'rand_{tap}': (out.argmax(1) == r).float().sum() for tap, out in rand_logits.items()}
    return terms['total'], stats


# --- turn-over dropout's numbers ------------------------------------------------------------------


def index_loader(data, device):
    """The training set in order, with each sample's dataset index."""
    labels = (data.train_y, data.train_r, data.train_index)
    return data_lib.GpuLoader(data.train_x, labels, data.mean, data.std, 1024, device)


def tod_epoch(model, data, device):
    """After an epoch: the mean self-influence of clean and noisy samples and their training
    accuracy through their own masks (who is fitted when; Liu, Lin & Jaggi 2021)."""
    per_sample = tod.self_influence(model, index_loader(data, device))
    summary = tod.summarize(per_sample, data.train_noisy)
    keep = ('self_influence', 'train_acc_clean', 'train_acc_noisy')
    return {k: summary[k] for k in keep}, per_sample


def tod_final(model, data, device, out):
    """Self-influence of every training sample and the test influence of hard and easy clean
    ones; writes DIR/self_influence.pt atomically and returns the summary for `final`."""
    summary, per_sample = tod_epoch(model, data, device)
    x, y, r = (t[: tod.TEST_INFLUENCE_MAX] for t in (data.test_x, data.test_y, data.test_r))
    test = data_lib.GpuLoader(x, (y, r), data.mean, data.std, 1024, device)
    index = per_sample['index']
    per_sample['test_influence'] = tod.test_influence(model, index, data.train_y, test)
    # control: every sample scored with another sample's mask (seeded permutation)
    permuted = index[torch.randperm(len(index), generator=torch.Generator().manual_seed(0))]
    per_sample['test_influence_control'] = tod.test_influence(model, permuted, data.train_y, test)
    per_sample.update(noisy=data.train_noisy, y=data.train_y)
    path = os.path.join(out, 'self_influence.pt')
    torch.save(per_sample, path + '.tmp')
    os.replace(path + '.tmp', path)
    return {
        'self_influence': summary['self_influence'],
        'self_influence_acc': tod.summarize(per_sample, data.train_noisy)['self_influence_acc'],
        'test_influence': tod.hard_and_easy(per_sample, data.train_noisy),
    }


# --- one run: train.run and train.train, with the systems' lines ----------------------------------


def run(cfg, data=None):
    paths = {'results': 'results.json', 'probe': 'probe.json', 'checkpoint': 'checkpoint.pt'}
    paths = {k: os.path.join(cfg.out, v) for k, v in paths.items()}
    device = train.pick_device(cfg)
    results = train.read_finished(paths['results'], vars(cfg))
    if results is not None and (os.path.exists(paths['probe']) or not cfg.probe):
        print(f'{paths["results"]} exists: run finished, nothing to do')
        return results
    data = data or train.load_data(cfg)
    model = build_model(cfg, data, device)
    if results is None:
        results = train_related(cfg, data, model, device, paths)
    else:
        train.load_checkpoint(paths['checkpoint'], model, None, None, vars(cfg))
    if cfg.probe and results['status'] == 'done':
        init_model = build_model(cfg, data, device)
        probe = measure(
            model, init_model, data, cfg.random_labels, cfg.rlp_head, cfg.label_seed, device
        )
        train.write_json(paths['probe'], probe | {'commit': train.commit()})
        print(f'controls measured | {paths["probe"]}')
    return results


def train_related(cfg, data, model, device, paths):
    config, env = vars(cfg), train.environment(device, cfg)
    print(f'torch {env["torch"]} on {env["device"]} | config {config}', flush=True)
    labels = (data.train_y, data.train_r, data.train_index)  # + the index, for the masks
    order = {'shuffle': True, 'augment': cfg.augment, 'drop_last': cfg.compile, 'seed': cfg.seed}
    loader = data_lib.GpuLoader(
        data.train_x, labels, data.mean, data.std, cfg.batch_size, device, **order
    )
    test_loader = train.eval_loader(data, 'test', device)
    opt = train.make_optimizer(model, cfg, device)
    lam = torch.zeros((), device=device)
    history = []
    if os.path.exists(paths['checkpoint']):
        history = train.load_checkpoint(paths['checkpoint'], model, opt, loader, config)
        print(f'resumed from {paths["checkpoint"]} after epoch {len(history)}')
    step_fn = torch.compile(step) if cfg.compile else step
    results = {'config': config, 'env': env}
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        try:
            online, seen = train.train_epoch(model, opt, loader, step_fn, cfg, lam, epoch)
        except train.Diverged as e:
            results |= {'status': 'diverged', 'diverged': {'epoch': epoch, 'reason': str(e)}}
            train.write_json(paths['results'], results | {'history': history, 'final': None})
            print(f'diverged in epoch {epoch} ({e})', file=sys.stderr)
            return results
        seconds = time.perf_counter() - t0
        test = evaluate(model, test_loader, loss_fn(model, cfg, cfg.lam), cfg.bf16)
        K = cfg.random_labels
        record = train.epoch_record(epoch, opt, lam, online, test, seconds, seen, K)
        if cfg.tod:  # self-influence and accuracy of clean and noisy samples, per epoch
            record |= tod_epoch(model, data, device)[0]
        history.append(record)
        print(f'epoch {epoch:3d}/{cfg.epochs} | loss {online["loss_class"]:.3f}', flush=True)
        train.save_checkpoint(
            paths['checkpoint'], model, opt, loader, history, config, data.train_index
        )

    final = train.final_metrics(model, data, history, cfg, device, loss_fn(model, cfg, cfg.lam))
    if cfg.tod:
        final |= tod_final(model, data, device, cfg.out)
    results |= {
        'status': 'done',
        'history': history,
        'final': final,
        'data': train.data_sizes(data),
    }
    train.write_json(paths['results'], results)
    print(f'done | test {final["test_acc"]:.1%} | {paths["results"]}')
    return results


def main(argv=None):
    cfg = parse_args(argv)
    try:
        run(cfg)
    except data_lib.DataError as e:
        train.fail(str(e))


if __name__ == '__main__':
    main()
