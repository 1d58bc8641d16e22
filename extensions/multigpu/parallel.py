"""Several GPUs: one run over several processes, and several runs over one machine's GPUs.

One run, N processes (train_ddp.py under torchrun, DistributedDataParallel). It computes what one
process computes with the same global batch B = `--batch-size`, up to the order of floating-point
sums; each process takes a shard of about B/N samples of every batch:
  data       every process holds the whole training set, makes each global batch (order and
             augmentation) from the same seeded generators exactly as one process does, and keeps
             its shard (ShardedLoader). A fixed shard of the data per process could not serve the
             global order without exchanging images every step, so the uint8 training set sits on
             every GPU (147 MiB for CIFAR, 45 MiB for Fashion-MNIST).
  BatchNorm  statistics of the global batch: torch's SyncBatchNorm on GPUs; on the CPU, where
             SyncBatchNorm refuses to run, GlobalBatchNorm (two all-reduces of C numbers a layer).
  dropout    the mask one process would draw for the global batch, sliced (GlobalBatchDropout).
  gradients  each process weighs its loss by its share of the global batch, and DDP averages.
  metrics    every process evaluates the whole sets itself, so all hold the same numbers; the
             online statistics of each step are summed over the processes.
  labels     random labels come from seeded CPU generators (data.py): the same in every process.
Only rank 0 prints and writes results.json and checkpoint.pt; every process resumes from that
checkpoint, and so can a run with another number of processes (world size is no part of a run).

Several runs, one GPU each (`make -j N`, claim_gpu.py): a run takes the first GPU whose lock file
no other process holds and keeps it until it exits; the kernel drops the lock when the process
ends, even when it is killed.
"""

import os
import sys
import tempfile
import time
import warnings

import torch
import torch.distributed as dist
import torch.nn as nn

# one lock file per GPU, named by the GPU's UUID, shared by every run of this user on the machine
# (os.getuid and fcntl are POSIX: importing this module works on Windows too, claiming a GPU not)
USER = os.getuid() if hasattr(os, 'getuid') else os.environ.get('USERNAME', 'user')
LOCK_DIR = os.path.join(tempfile.gettempdir(), f'random-label-heads-gpus-{USER}')
HELD = []  # open lock files of this process; closing one frees its GPU


def rank():
    return int(os.environ.get('RANK', 0))


def world_size():
    return int(os.environ.get('WORLD_SIZE', 1))


def under_torchrun():
    return 'LOCAL_RANK' in os.environ


def start(device):
    """Join the other processes of this run (no-op for one); only rank 0 keeps its stdout."""
    if world_size() == 1:
        return
    cuda = device.type == 'cuda'
    dist.init_process_group('nccl' if cuda else 'gloo', device_id=device if cuda else None)
    if rank() != 0:
        sys.stdout = open(os.devnull, 'w')  # errors still reach stderr


def stop():
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t):
    """t summed over the processes, in place (t itself for one process)."""
    if dist.is_initialized():
        dist.all_reduce(t)
    return t


def shard(n, rank, world):
    """The contiguous part of a global batch of n samples that process `rank` of `world` takes:
    sizes differ by at most one."""
    return slice(n * rank // world, n * (rank + 1) // world)


class ShardedLoader:
    """This process's shard of every global batch of a data.GpuLoader. The loader makes the whole
    global batch (its order and augmentation drawn as one process draws them), so the shards of
    all processes together are exactly one process's batch, whatever the world size. batch_len
    and part: which global batch the last shard came from (GlobalBatchDropout reads them)."""

    def __init__(self, loader, rank, world):
        self.loader, self.rank, self.world = loader, rank, world
        self.batch_size = loader.batch_size
        self.batch_len, self.part = 0, slice(0, 0)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            self.batch_len, self.part = len(batch[0]), shard(len(batch[0]), self.rank, self.world)
            yield tuple(t[self.part] for t in batch)

    def state_dict(self):
        return self.loader.state_dict()

    def load_state_dict(self, state):
        self.loader.load_state_dict(state)


class SumOverProcesses(torch.autograd.Function):
    """all_reduce(SUM) with its gradient: every process's input feeds every process's output, so
    the gradient reaching an input is the sum of the gradients of all processes' outputs."""

    @staticmethod
    def forward(ctx, t):
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch (Ioffe & Szegedy 2015:
    x̂ = (x - μ_B) / sqrt(σ²_B + ε) with μ_B, σ²_B over every process's shard). What SyncBatchNorm
    does on GPUs, for the CPU: per channel, the sum and then the squared deviations are summed
    over processes (two passes, as exact as one process's). Eval mode is plain BatchNorm2d."""

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        assert self.momentum is not None, 'only the exponential running average is implemented'
        C = x.shape[1]
        local = torch.cat([x.sum((0, 2, 3)), x.new_full((1,), x.numel() // C)])  # (C + 1,)
        total = SumOverProcesses.apply(local)
        n = total[C]  # values per channel in the global batch
        mean = total[:C] / n  # (C,)
        centered = x - mean.view(1, C, 1, 1)
        var = SumOverProcesses.apply((centered * centered).sum((0, 2, 3))) / n  # (C,), biased
        with torch.no_grad():  # running estimates as nn.BatchNorm2d keeps them: unbiased variance
            self.num_batches_tracked += 1
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(m * mean)
            self.running_var.mul_(1 - m).add_(m * var * n / (n - 1))
        x_hat = centered * torch.rsqrt(var + self.eps).view(1, C, 1, 1)
        return x_hat * self.weight.view(1, C, 1, 1) + self.bias.view(1, C, 1, 1)


class GlobalBatchDropout(nn.Module):
    """Dropout with the mask one process draws for the whole global batch, of which this process
    keeps its shard's rows. Every process draws the same mask from the same seeded generator (the
    default one, as nn.Dropout), so the generators stay in step and the checkpoint of rank 0
    holds every process's state. loader: the ShardedLoader (global batch_len, part)."""

    def __init__(self, p, loader):
        super().__init__()
        self.p, self.loader = p, loader

    def forward(self, z):
        if not self.training or self.p == 0:
            return z
        shape = (self.loader.batch_len, *z.shape[1:])  # the global batch
        rows = self.loader.part  # this process's rows of it
        if z.is_cuda:  # the fused kernel of F.dropout on CUDA, on a global batch of ones
            keep = torch.native_dropout(z.new_ones(shape), self.p, True)[1]
            scale = 1 / torch.tensor(1 - self.p, dtype=torch.float32).item()  # as that kernel's
            return z * keep[rows] * scale
        noise = z.new_empty(shape).bernoulli_(1 - self.p).div_(1 - self.p)  # F.dropout's draw
        return z * noise[rows]


def global_batch(model, loader, device):
    """Make BatchNorm and dropout see the global batch (no-op for one process)."""
    if world_size() == 1:
        return model
    if device.type == 'cuda':
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    else:
        for m in model.modules():
            if type(m) is nn.BatchNorm2d:
                m.__class__ = GlobalBatchNorm  # the same parameters and buffers, global statistics
    model.dropout = GlobalBatchDropout(model.dropout.p, loader)
    return model


def distribute(module, device):
    """DDP around module (no-op for one process): it averages the gradients over processes."""
    if world_size() == 1:
        return module
    # a 1-channel input's first conv gets weight gradients whose strides differ from DDP's
    # buckets only along a dimension of size 1: a harmless copy, warned about once a process
    warnings.filterwarnings('ignore', 'Grad strides do not match bucket view strides')
    ids = [torch.cuda.current_device()] if device.type == 'cuda' else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def gpu_ids():
    """One name per visible GPU, the same in every process whatever CUDA_VISIBLE_DEVICES says."""
    return [str(torch.cuda.get_device_properties(i).uuid) for i in range(torch.cuda.device_count())]


def claim_gpu(ids, lock_dir=None, poll_s=2.0):
    """Index in ids of a GPU no other process holds, locked until this process ends; waits while
    all are held. flock locks belong to an open file, so two claims never get the same GPU, not
    even in one process, and a killed process frees its GPU."""
    import fcntl  # here, not at the top: Windows has none, and the tests import this module

    lock_dir = lock_dir or LOCK_DIR
    os.makedirs(lock_dir, exist_ok=True)
    waiting = False
    while True:
        for i, gpu in enumerate(ids):
            f = open(os.path.join(lock_dir, f'{gpu}.lock'), 'a')
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            HELD.append(f)
            return i
        if not waiting:
            print(f'all {len(ids)} GPUs are taken by other runs; waiting', file=sys.stderr)
            waiting = True
        time.sleep(poll_s)
