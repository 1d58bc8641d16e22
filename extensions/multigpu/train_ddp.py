"""train.py on several processes: torchrun --nproc_per_node N -m extensions.multigpu.train_ddp

Takes every option of train.py and computes what one process computes with the same global
--batch-size (parallel.py says how), on N GPUs or, with the gloo backend, N CPU processes. The run
is train.run with two seams replaced: the batches (this process's shard of every global batch) and
the step (BatchNorm and dropout over the global batch, gradients averaged by DDP, statistics summed
over the processes). Only rank 0 prints and writes (plumbing.WRITER); every process resumes from
rank 0's checkpoint, and a run may resume under another number of processes (train.py included):
the world size is no part of a run.
"""

import os
import sys

import torch

import data as data_lib
import plumbing
import train

from . import parallel


class Objective(torch.nn.Module):
    """train.objective of a batch as a module: DistributedDataParallel averages the gradients of
    the parameters a module's forward pass uses, the heads' among them."""

    def __init__(self, model, cfg, objective):
        super().__init__()
        self.model, self.cfg, self.objective = model, cfg, objective

    def forward(self, x, y, r, lam):
        return self.objective(self.model, (x, y, r), lam, self.cfg)


def batches(cfg, data, device):
    """This process's shard of every global batch train.py would make; refused when some process
    would get an empty shard."""
    n, world = len(data.train_y), parallel.world_size()
    last = 0 if cfg.compile else n % cfg.batch_size  # the epoch's partial batch, if any
    smallest = min(cfg.batch_size, n, last or n)
    if smallest < world:
        why = f'--batch-size {cfg.batch_size} on {n} training images gives a batch of {smallest}'
        raise plumbing.Refused(f'{why} images, fewer than the {world} processes')
    return parallel.ShardedLoader(train.training_batches(cfg, data, device), parallel.rank(), world)


def step(model, batches, cfg, objective):
    """train.train_step on this process's shard: the loss weighed by the shard's share of the
    global batch (DDP then averages the gradients into the global batch's mean gradient), and the
    statistics summed over the processes, so that every process sees the same numbers."""
    device = next(model.parameters()).device
    parallel.global_batch(model, batches, device)  # BatchNorm and dropout: the global batch
    distributed = parallel.distribute(Objective(model, cfg, objective), device)

    def step(batch, lam):
        x, y, r = batch
        with data_lib.autocast(device, cfg.bf16):
            terms, logits, rand_logits = distributed(x, y, r, lam)
        sums = train.sums(terms, logits, rand_logits, y, r)
        summed = parallel.all_reduce_sum(torch.stack(list(sums.values())))
        share = len(y) * parallel.world_size() / batches.batch_len
        return terms['total'] * share, dict(zip(sums, summed, strict=True))

    return step


def local_device(cfg):
    """This process's GPU (its local rank's, made the default one), or the CPU."""
    if plumbing.pick_device(cfg.device).type != 'cuda':
        return torch.device('cpu')
    index = int(os.environ.get('LOCAL_RANK', 0))
    if index >= torch.cuda.device_count():
        raise plumbing.Refused(
            f'local process {index} on {torch.cuda.device_count()} GPUs: lower --nproc_per_node'
        )
    torch.cuda.set_device(index)  # train.run's 'cuda' is this GPU; its RNG is what checkpoints save
    return torch.device('cuda', index)


def main(argv=None):
    parser = train.build_parser()
    parser.prog = 'train_ddp'
    cfg = parser.parse(argv)
    try:
        parallel.start(local_device(cfg))  # join the other processes; only rank 0 keeps stdout
        train.run(cfg, seams=train.Seams(batches=batches, step=step))
    except (data_lib.DataError, plumbing.Refused) as e:
        parser.fail(str(e))
    finally:
        parallel.stop()


if __name__ == '__main__':
    main(sys.argv[1:])
