"""Shared helpers: small fixtures in each dataset's own on-disk format, and an in-process training
run. The extensions' tests import them too (pyproject.toml puts tests/ on the path)."""

import gzip
import json
import os
import pickle
import struct
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import train  # noqa: E402

# A tiny over-parameterized setting: Fashion-MNIST-shaped synthetic data, the small CNN, no
# regularization.
TINY = [
    '--dataset',
    'fake',
    '--fake-like',
    'fashion-mnist',
    '--model',
    'cnn',
    '--subset',
    '512',
    '--test-subset',
    '512',
    '--batch-size',
    '64',
    '--lr',
    '0.1',
    '--weight-decay',
    '0',
    '--no-augment',
    '--device',
    'cpu',
    '--no-probe',  # the controls cost seconds a run: tests that read them pass --probe
]


def run_train(out, *args, main=None):
    """Run train.py (or another trainer's main) in this process and return its results.json."""
    (main or train.main)([*TINY, '--out', str(out), *args])
    with open(os.path.join(out, 'results.json')) as f:
        return json.load(f)


def read_probe(out):
    with open(os.path.join(out, 'probe.json')) as f:
        return json.load(f)


def without_timings(results):
    """A run's numbers without its wall-clock ones: what a resumed run must reproduce."""

    def strip(r):
        return {k: v for k, v in r.items() if k not in ('seconds', 'images_per_s')}

    return [strip(h) for h in results['history']], strip(results['final'])


def markdown_tables_are_whole(text):
    """Every Markdown table in text renders as one table: a header row directly followed by its
    delimiter row, then rows with the same number of cells, no blank line inside. Returns the
    problems found (none: [])."""
    problems, lines = [], text.split('\n')
    i = 0
    while i < len(lines):
        if not lines[i].startswith('|'):
            i += 1
            continue
        start = i
        while i < len(lines) and lines[i].startswith('|'):
            i += 1
        block = lines[start:i]
        cells = [len(row.strip().strip('|').split('|')) for row in block]
        if len(block) < 2 or set(block[1].replace('|', '').strip()) - set('-: '):
            problems.append(f'line {start + 1}: a table row without a delimiter row under it')
        elif len(set(cells)) > 1:
            problems.append(f'line {start + 1}: rows of {sorted(set(cells))} cells')
    return problems


def interrupt_in_epoch_two(monkeypatch, out, *args, main=None):
    """Run a trainer (train.py, or another's `main`: they all run train.run) until it dies after
    the epoch-1 checkpoint, before the epoch-2 one (a KeyboardInterrupt in the second evaluation
    pass of the test set), as a killed run would."""
    calls = {'n': 0}
    real_evaluate = train.evaluate

    def crash_in_epoch_two(*a, **k):
        calls['n'] += 1
        if calls['n'] == 2:
            raise KeyboardInterrupt
        return real_evaluate(*a, **k)

    with monkeypatch.context() as m:
        m.setattr(train, 'evaluate', crash_in_epoch_two)
        with pytest.raises(KeyboardInterrupt):
            run_train(out, *args, main=main)


def write_cifar(root, name, n_train=20, n_test=10, seed=0):
    """CIFAR-10/100 fixtures in the pickle-batch format torchvision downloads, written out here
    rather than from plumbing.CIFAR_FILES: a wrong reader cannot agree with a wrong fixture."""
    rng = np.random.default_rng(seed)
    folder, train_files, test_files, key = {
        'cifar10': (
            'cifar-10-batches-py',
            [f'data_batch_{i}' for i in range(1, 6)],
            ['test_batch'],
            'labels',
        ),
        'cifar100': ('cifar-100-python', ['train'], ['test'], 'fine_labels'),
    }[name]
    classes = 100 if name == 'cifar100' else 10
    os.makedirs(os.path.join(root, folder), exist_ok=True)
    arrays = {}
    for files, n in ((train_files, n_train), (test_files, n_test)):
        for f in files:
            data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
            labels = [int(v) for v in rng.integers(0, classes, n)]
            with open(os.path.join(root, folder, f), 'wb') as fh:
                pickle.dump({'data': data, key: labels}, fh)
            arrays[f] = (data, labels)
    return arrays


def idx_bytes(array):
    """The idx format of (Fashion-)MNIST: big-endian magic (0x08 = uint8, then the number of dims),
    sizes, data."""
    header = struct.pack('>I', 0x0800 + array.ndim) + b''.join(
        struct.pack('>I', s) for s in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def write_fashion_mnist_gz(folder, n_train=30, n_test=20, seed=0):
    """The four .gz files as the Debian package ships them; returns the arrays written."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    arrays = {
        'train-images-idx3-ubyte': rng.integers(0, 256, (n_train, 28, 28)),
        'train-labels-idx1-ubyte': rng.integers(0, 10, n_train),
        't10k-images-idx3-ubyte': rng.integers(0, 256, (n_test, 28, 28)),
        't10k-labels-idx1-ubyte': rng.integers(0, 10, n_test),
    }
    for name, a in arrays.items():
        with gzip.open(os.path.join(folder, name + '.gz'), 'wb') as f:
            f.write(idx_bytes(a))
    return arrays


@pytest.fixture
def no_debian_fashion_mnist(monkeypatch, tmp_path):
    """Pretend the Debian package is not installed."""
    import plumbing

    monkeypatch.setattr(plumbing, 'FASHION_MNIST_DEBIAN', str(tmp_path / 'not-installed'))
