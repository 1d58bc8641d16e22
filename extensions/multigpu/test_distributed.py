"""Several processes (parallel.py, train_ddp.py), on the CPU with the gloo backend: two processes
give the numbers of one process (train.py) with the same global batch, a killed two-process run
resumes to the numbers of an uninterrupted one, a checkpoint resumes under another number of
processes, and runs take GPUs that no other run holds.

The comparisons with one process run in float64 (this file, run as a script under torchrun, is
train_ddp.py in float64): there the only differences, the order of floating-point sums, stay near
1e-15. In float32, training amplifies them into flipped argmaxes (3 of 512 images after two
epochs), so the float32 test compares a two-process run with another one, bit for bit."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import torch
from conftest import ROOT, TINY, run_train

import data
import plumbing
import train
from extensions.multigpu import parallel, train_ddp

# every feature that must match one process: augmentation, dropout, heads at every tap, the
# regularizer with a ramped λ, and batches that split unevenly over two processes
FEATURES = ['--augment', '--dropout', '0.2', '--taps', 'all', '--unlearn', 'reg']
FEATURES += ['--lam-schedule', 'dann', '--epochs', '3']
ARGS = [*FEATURES, '--batch-size', '63']  # 63 = 31 + 32; the last 8 = 4 + 4
# float64 is slow on the CPU: 128 images, batches of 31 = 15 + 16, the last 4 = 2 + 2
ARGS64 = [*FEATURES, '--batch-size', '31', '--subset', '128', '--test-subset', '128']
EXACT = 1e-9  # float64 runs that differ only in the order of sums


def numbers(results):
    """Every number of results.json but the timings, by its path."""

    def flat(x, path):
        if isinstance(x, dict):
            for k, v in x.items():
                yield from flat(v, f'{path}.{k}')
        elif isinstance(x, list):
            for i, v in enumerate(x):
                yield from flat(v, f'{path}[{i}]')
        elif isinstance(x, int | float) and not path.endswith(('seconds', 'images_per_s')):
            yield path, x

    return dict(flat({'history': results['history'], 'final': results['final']}, ''))


def max_difference(a, b):
    a, b = numbers(a), numbers(b)
    assert a.keys() == b.keys()
    return max(abs(a[k] - b[k]) for k in a)


def read(out):
    with open(os.path.join(out, 'results.json')) as f:
        return json.load(f)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def log_path(out, rank):
    return os.path.join(os.path.dirname(out), f'{os.path.basename(out)}-rank{rank}.log')


def spawn(out, args, world=2):
    """The processes of one run, each with the variables torchrun gives it; stdout to files."""
    os.makedirs(out, exist_ok=True)
    port, procs = free_port(), []
    for rank in range(world):
        env = {
            **os.environ,
            'MASTER_ADDR': '127.0.0.1',
            'MASTER_PORT': str(port),
            'RANK': str(rank),
            'LOCAL_RANK': str(rank),
            'WORLD_SIZE': str(world),
            'LOCAL_WORLD_SIZE': str(world),
            'OMP_NUM_THREADS': '1',  # as torchrun sets it: two processes share two cores
            'PYTHONUNBUFFERED': '1',
        }
        log = open(log_path(out, rank), 'w')
        argv = [
            sys.executable,
            '-m',
            'extensions.multigpu.train_ddp',
            *TINY,
            *args,
            '--out',
            str(out),
        ]
        procs.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log))
    return procs


def wait(procs, out):
    """Wait for every process; returns what each printed."""
    for p in procs:
        assert p.wait(timeout=300) == 0
    return [open(log_path(out, rank)).read() for rank in range(len(procs))]


def torchrun(out, args, stop_before=None):
    """`torchrun --standalone --nproc_per_node 2` of this file: train_ddp.py in float64."""
    argv = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2']
    argv += [os.path.abspath(__file__), *TINY, *args, '--out', str(out)]
    env = {**os.environ, 'STOP_BEFORE_EPOCH': str(stop_before or 0)}
    env['PYTHONPATH'] = os.pathsep.join([ROOT, os.path.join(ROOT, 'tests')])
    p = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout


@contextlib.contextmanager
def float64():
    """This process computes in float64 (train.py's .float() casts become .double()) on one
    thread, as each process under torchrun does (two threads on two busy cores: 20x slower)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(torch.Tensor, 'float', torch.Tensor.double)
        dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
        torch.set_default_dtype(torch.float64)
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_default_dtype(dtype)
            torch.set_num_threads(threads)


class Stop(Exception):
    pass


def stop_before(epoch, monkeypatch):
    """End the run before `epoch`, once the checkpoint of the epoch before it is written."""
    real_train_epoch = train.train_epoch

    def train_epoch(model, opt, loader, step_fn, cfg, lam, this_epoch):
        if this_epoch == epoch:  # every process, once rank 0 wrote the checkpoint
            if torch.distributed.is_initialized():
                torch.distributed.barrier()
            raise Stop
        return real_train_epoch(model, opt, loader, step_fn, cfg, lam, this_epoch)

    monkeypatch.setattr(train, 'train_epoch', train_epoch)


@pytest.fixture(scope='module')
def one_process(tmp_path_factory):
    with float64():
        return run_train(tmp_path_factory.mktemp('one'), *ARGS64)


def test_loader_shards_make_up_the_batches_of_one_process():
    x = torch.randint(0, 256, (52, 3, 8, 8), dtype=torch.uint8)
    y, r = torch.arange(52), torch.arange(52) % 2

    def loader(rank, world):
        whole = data.GpuLoader(x, (y, r), (0.5,) * 3, (0.25,) * 3, 16, 'cpu', True, True, seed=3)
        return parallel.ShardedLoader(whole, rank, world)

    one, shards = loader(0, 1), [loader(k, 3) for k in range(3)]
    for epoch in range(2):
        # batches of 16 = 5 + 5 + 6 images, and a last one of 4 = 1 + 1 + 2, shuffled, augmented
        for whole, *parts in zip(one, *shards, strict=True):
            for a, b in zip(whole, map(torch.cat, zip(*parts, strict=True)), strict=True):
                assert torch.equal(a, b), epoch


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason='no GPU')


@pytest.mark.parametrize('device', ['cpu', pytest.param('cuda', marks=CUDA)])
def test_global_batch_dropout_draws_the_mask_of_one_process(device):
    z = torch.randn(11, 7, device=device)

    class Loader:  # what GlobalBatchDropout reads of the training loader
        batch_len = 11

    torch.manual_seed(0)
    whole = torch.nn.functional.dropout(z, 0.3, training=True)
    after = torch.rand(3, device=device)  # the generator moved on as far
    parts = []
    for rank in range(2):
        torch.manual_seed(0)  # every process's generator is in the same state
        Loader.part = parallel.shard(11, rank, 2)
        parts.append(parallel.GlobalBatchDropout(0.3, Loader)(z[Loader.part]))
        assert torch.equal(torch.rand(3, device=device), after)
    assert torch.equal(torch.cat(parts), whole)


def test_two_processes_give_the_numbers_of_one_process(tmp_path, one_process):
    out = tmp_path / 'two'
    printed = torchrun(out, ARGS64)
    two = read(out)
    assert two['env']['world_size'] == 2 and one_process['env']['world_size'] == 1
    assert printed.count('epoch   1/3') == 1  # only rank 0 prints
    assert max_difference(two, one_process) < EXACT


@pytest.mark.slow
def test_a_checkpoint_resumes_under_either_world_size(tmp_path, monkeypatch, one_process):
    """One process for epoch 1, two for epoch 2, one for epoch 3: one process's numbers."""
    out = tmp_path / 'run'
    with float64(), pytest.MonkeyPatch.context() as m, pytest.raises(Stop):
        stop_before(2, m)
        run_train(out, *ARGS64)
    assert 'resumed from' in torchrun(out, ARGS64, stop_before=3)
    assert not (out / 'results.json').exists()
    with float64():
        resumed = run_train(out, *ARGS64)
    assert [h['epoch'] for h in resumed['history']] == [1, 2, 3]
    assert max_difference(resumed, one_process) < EXACT


@pytest.mark.slow
def test_killed_two_process_run_resumes_to_the_same_numbers(tmp_path):
    """float32, train.py as it is: the same processes compute the same sums, bit for bit."""
    whole, killed = tmp_path / 'whole', tmp_path / 'killed'
    wait(spawn(whole, ARGS), whole)
    procs = spawn(killed, ARGS)
    ckpt = killed / 'checkpoint.pt'
    while not ckpt.exists() and all(p.poll() is None for p in procs):
        time.sleep(0.01)
    for p in procs:  # right after the checkpoint of epoch 1 (written atomically by rank 0)
        p.send_signal(signal.SIGKILL)
    assert [p.wait() for p in procs] == [-signal.SIGKILL] * 2, 'the run ended before the kill'
    assert not (killed / 'results.json').exists()
    printed = wait(spawn(killed, ARGS), killed)  # the same command again
    assert 'resumed from' in printed[0] and 'epoch' not in printed[1]  # only rank 0 prints
    assert max_difference(read(killed), read(whole)) == 0


def test_batches_smaller_than_the_world_are_refused(monkeypatch):
    monkeypatch.setattr(parallel, 'world_size', lambda: 4)
    parse = train.build_parser().parse_args
    d = data.load('fake', '', 0, 2, fake_like='fashion-mnist', subset=512)
    with pytest.raises(plumbing.Refused, match='batch of 2 images'):  # 3 x 170, then 2
        train_ddp.batches(parse(['--batch-size', '170']), d, torch.device('cpu'))
    assert len(train_ddp.batches(parse(['--batch-size', '128']), d, torch.device('cpu'))) == 4


# --- one GPU per run: lock files --------------------------------------------------------------


@pytest.fixture
def release_gpus():
    yield
    while parallel.HELD:
        parallel.HELD.pop().close()


HOLD = 'import fcntl, sys; f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_EX); print("held")'


def test_each_run_takes_a_gpu_no_other_run_holds(tmp_path, release_gpus):
    ids = ['gpu-a', 'gpu-b', 'gpu-c']
    holder = subprocess.Popen(  # another run holds gpu-a
        [sys.executable, '-c', HOLD + '; sys.stdin.read()', str(tmp_path / 'gpu-a.lock')],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == 'held\n'
    assert parallel.claim_gpu(ids, tmp_path) == 1
    assert parallel.claim_gpu(ids, tmp_path) == 2  # claims exclude each other in one process too
    holder.kill()  # a killed run frees its GPU
    holder.wait()
    assert parallel.claim_gpu(ids, tmp_path) == 0


def test_a_run_waits_while_every_gpu_is_taken(tmp_path, release_gpus, capsys):
    assert [parallel.claim_gpu(['a', 'b'], tmp_path) for _ in range(2)] == [0, 1]
    threading.Timer(0.3, parallel.HELD[0].close).start()  # the run on GPU a ends
    t0 = time.perf_counter()
    assert parallel.claim_gpu(['a', 'b'], tmp_path, poll_s=0.05) == 0
    assert time.perf_counter() - t0 > 0.25 and 'waiting' in capsys.readouterr().err


def test_claim_gpu_runs_the_command_on_a_gpu_no_other_run_holds(
    tmp_path, monkeypatch, release_gpus
):
    """Without a GPU: three fake devices; the launcher shows the command only the one it took."""
    from extensions.multigpu import claim_gpu

    monkeypatch.setattr(parallel, 'gpu_ids', lambda: ['uuid-0', 'uuid-1', 'uuid-2'])
    monkeypatch.setattr(parallel, 'LOCK_DIR', str(tmp_path))
    monkeypatch.delenv('CUDA_VISIBLE_DEVICES', raising=False)
    seen = []
    monkeypatch.setattr(claim_gpu.subprocess, 'call', lambda argv, env=None: seen.append(env) or 0)
    for _ in range(3):  # make -j 3: three runs at once, each holding its GPU
        assert claim_gpu.main(['python', 'train.py']) == 0
    assert [env['CUDA_VISIBLE_DEVICES'] for env in seen] == ['0', '1', '2']


def test_runs_started_together_fetch_a_dataset_one_at_a_time(tmp_path):
    inside, seen_inside = [], []

    def fetch():
        with plumbing.one_at_a_time(tmp_path):
            seen_inside.append(len(inside))
            inside.append(1)
            time.sleep(0.1)
            inside.pop()

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen_inside == [0, 0, 0]


if __name__ == '__main__':  # under torchrun: train_ddp.py in float64 (the module docstring)
    torch.Tensor.float = torch.Tensor.double
    torch.set_default_dtype(torch.float64)
    epoch = int(os.environ['STOP_BEFORE_EPOCH'])
    if epoch:
        stop_before(epoch, pytest.MonkeyPatch())
    try:
        train_ddp.main(sys.argv[1:])
    except Stop:
        pass
