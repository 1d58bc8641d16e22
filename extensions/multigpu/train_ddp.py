"""train.py on several processes: torchrun --nproc_per_node N -m extensions.multigpu.train_ddp

Takes every option of train.py and computes what one process computes with the same global
--batch-size (parallel.py says how), on N GPUs or, with the gloo backend, N CPU processes. Only
rank 0 prints and writes; every process resumes from rank 0's checkpoint, and a run may resume
under another number of processes (train.py included): the world size is no part of a run. This
file is train.py's `run` and `train` with the distributed lines added: diff the two to see them.
"""

import os
import sys
import time

import torch

import data as data_lib
import train
from metrics import autocast, evaluate, measure
from regularizer import losses

from . import parallel


class Objective(torch.nn.Module):
    """regularizer.losses of a batch as a module: DistributedDataParallel averages the gradients
    of the parameters a module's forward pass uses, the heads' among them."""

    def __init__(self, model, cfg):
        super().__init__()
        self.model, self.cfg = model, cfg

    def forward(self, x, y, r, lam):
        options = {k: getattr(self.cfg, k) for k in train.LOSS_OPTIONS}
        return losses(self.model, x, y, r, lam, **options)


def step(objective, loader, model, batch, lam, cfg):
    """train.forward_step on this process's shard: the loss weighed by the shard's share of the
    global batch (DDP then averages the gradients into the global batch's mean gradient), and the
    statistics summed over the processes, so that every process sees the same numbers."""
    x, y, r = batch
    with autocast(x.device, cfg.bf16):
        terms, logits, rand_logits = objective(x, y, r, lam)
    stats = {f'loss_{k}': terms[k].detach() * len(y) for k in ('class', 'rnd', 'unlearn')}
    stats['images'] = x.new_tensor(float(len(y)))
    stats['correct'] = (logits.argmax(1) == y).sum().float()
    stats |= {f'rand_{tap}': (out.argmax(1) == r).float().sum() for tap, out in rand_logits.items()}
    summed = parallel.all_reduce_sum(torch.stack(list(stats.values())))
    share = len(y) * parallel.world_size() / loader.batch_len
    return terms['total'] * share, dict(zip(stats, summed, strict=True))


def pick_device(cfg):
    """This process's GPU (its local rank's), or the CPU."""
    if not train.pick_device(cfg).type == 'cuda':
        return torch.device('cpu')
    index = int(os.environ.get('LOCAL_RANK', 0))
    if index >= torch.cuda.device_count():
        train.fail(
            f'local process {index} on {torch.cuda.device_count()} GPUs: lower --nproc_per_node'
        )
    torch.cuda.set_device(index)  # the default GPU: its RNG state is the one checkpoints save
    return torch.device('cuda', index)


def refuse_small_batches(cfg, n):
    """Exit 2 when some process would get an empty shard of a training batch."""
    last = 0 if cfg.compile else n % cfg.batch_size  # the epoch's partial batch, if any
    smallest = min(cfg.batch_size, n, last or n)
    if smallest < parallel.world_size():
        train.fail(
            f'--batch-size {cfg.batch_size} on {n} training images gives a batch of '
            f'{smallest} images, fewer than the {parallel.world_size()} processes'
        )


def run(cfg, data=None):
    paths = {'results': 'results.json', 'probe': 'probe.json', 'checkpoint': 'checkpoint.pt'}
    paths = {k: os.path.join(cfg.out, v) for k, v in paths.items()}
    device = pick_device(cfg)
    parallel.start(device)  # join the other processes; only rank 0 keeps its stdout
    main = parallel.rank() == 0  # the one that writes files
    results = train.read_finished(paths['results'], vars(cfg))
    if results is not None and (os.path.exists(paths['probe']) or not cfg.probe):
        print(f'{paths["results"]} exists: run finished, nothing to do')
        return results
    data = data or train.load_data(cfg)
    refuse_small_batches(cfg, len(data.train_y))
    model = train.build_model(cfg, data, device)
    if results is None:
        results = train_ddp(cfg, data, model, device, paths, main)
    else:
        train.load_checkpoint(paths['checkpoint'], model, None, None, vars(cfg))
    if main and cfg.probe and results['status'] == 'done':  # the controls: one process suffices
        init_model = train.build_model(cfg, data, device)
        probe = measure(
            model, init_model, data, cfg.random_labels, cfg.rlp_head, cfg.label_seed, device
        )
        train.write_json(paths['probe'], probe | {'commit': train.commit()})
    return results


def train_ddp(cfg, data, model, device, paths, main):
    config, env = vars(cfg), train.environment(device, cfg) | {'world_size': parallel.world_size()}
    print(
        f'torch {env["torch"]} on {env["device"]} x {env["world_size"]} | config {config}',
        flush=True,
    )
    labels = (data.train_y, data.train_r)
    order = {'shuffle': True, 'augment': cfg.augment, 'drop_last': cfg.compile, 'seed': cfg.seed}
    whole = data_lib.GpuLoader(
        data.train_x, labels, data.mean, data.std, cfg.batch_size, device, **order
    )
    loader = parallel.ShardedLoader(whole, parallel.rank(), parallel.world_size())
    model = parallel.global_batch(model, loader, device)  # BatchNorm and dropout: the global batch
    test_loader = train.eval_loader(data, 'test', device)  # every process evaluates it all
    opt = train.make_optimizer(model, cfg, device)
    lam = torch.zeros((), device=device)
    history = []
    if os.path.exists(paths['checkpoint']):  # every process resumes from rank 0's checkpoint
        history = train.load_checkpoint(paths['checkpoint'], model, opt, loader, config)
        print(f'resumed from {paths["checkpoint"]} after epoch {len(history)}')
    objective = parallel.distribute(Objective(model, cfg), device)

    def step_fn(model, batch, lam, cfg):
        return step(objective, loader, model, batch, lam, cfg)

    results = {'config': config, 'env': env}
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        try:
            online, seen = train.train_epoch(model, opt, loader, step_fn, cfg, lam, epoch)
        except train.Diverged as e:  # every process sees the same sums: all stop here
            results |= {'status': 'diverged', 'diverged': {'epoch': epoch, 'reason': str(e)}}
            if main:
                train.write_json(paths['results'], results | {'history': history, 'final': None})
            return results
        seconds = time.perf_counter() - t0
        test = evaluate(model, test_loader, train.loss_fn(model, cfg, cfg.lam), cfg.bf16)
        K = cfg.random_labels
        record = train.epoch_record(epoch, opt, lam, online, test, seconds, seen, K)
        history.append(record)
        loss, accuracy = online['loss_class'], test['acc']
        print(f'epoch {epoch:3d}/{cfg.epochs} | loss {loss:.3f} | test {accuracy:.1%}', flush=True)
        if main:
            train.save_checkpoint(
                paths['checkpoint'], model, opt, loader, history, config, data.train_index
            )

    final = train.final_metrics(
        model, data, history, cfg, device, train.loss_fn(model, cfg, cfg.lam)
    )
    results |= {
        'status': 'done',
        'history': history,
        'final': final,
        'data': train.data_sizes(data),
    }
    if main:
        train.write_json(paths['results'], results)
    print(f'done | test {final["test_acc"]:.1%} | {paths["results"]}')
    return results


def main(argv=None):
    cfg = train.parse_args(argv)
    try:
        run(cfg)
    except data_lib.DataError as e:
        train.fail(str(e))
    finally:
        parallel.stop()


if __name__ == '__main__':
    main(sys.argv[1:])
