"""Datasets, random labels, label noise, and a GPU-resident batch loader.

Random labels (Becker & Risse 2024; Becker et al. 2026, the method): every sample i gets one
label r_i ~ Uniform{0..K-1}, drawn once from a CPU `torch.Generator` seeded by `--label-seed` and
independent of its class y_i, so the same seed gives the same labels on any device. Test samples
get their own draw; a head can only predict those at chance 1/K, which makes them a chance check.

Label noise (Zhang et al. 2017): each training class label is replaced with probability p by a
uniform draw over all C classes (p = 1: fully random class labels).

Speed: the whole training set lives on the device as uint8 (N, C, H, W); random crop (padding 4) and
horizontal flip run for a whole batch as one gather on the device, so no CPU worker touches a pixel.

Several processes (torchrun, parallel.py): each holds the whole set and draws every *global* batch's
order and augmentation exactly as one process would, then keeps its shard of that batch (`shard`).
"""

import contextlib
import fcntl
import functools
import gzip
import os
import pickle
import shutil
import socket
from dataclasses import dataclass

import numpy as np
import torch
import torchvision

FASHION_MNIST_DEBIAN = '/usr/share/datasets/fashion-mnist'
CIFAR_FOLDERS = {
    'cifar10': (
        'cifar-10-batches-py',
        [f'data_batch_{i}' for i in range(1, 6)],
        ['test_batch'],
        'labels',
    ),
    'cifar100': ('cifar-100-python', ['train'], ['test'], 'fine_labels'),
}
# classes, channels, size, n_train, n_test
FAKE_SHAPES = {
    'cifar10': (10, 3, 32, 50000, 10000),
    'cifar100': (100, 3, 32, 50000, 10000),
    'fashion-mnist': (10, 1, 28, 60000, 10000),
}
DATASETS = ['cifar10', 'cifar100', 'fashion-mnist', 'fake']


class DataError(Exception):
    """A missing or unreadable dataset.

    train.py turns it into one line on stderr and exit code 2.
    """


@dataclass
class Data:
    """One run's data on the CPU. Images are (N, C, H, W) uint8; labels (N,) int64."""

    train_x: torch.Tensor  # the images the network trains on
    train_y: torch.Tensor  # their class labels, after label noise
    train_r: torch.Tensor  # their random labels
    train_index: torch.Tensor  # their positions in the full training split (a sample's identity)
    train_noisy: torch.Tensor  # (N,) bool: label noise changed this class label
    heldout_x: torch.Tensor  # training-split images the network never sees (may be empty)
    heldout_y: torch.Tensor  # with the same label-noise process as the training images
    heldout_r: torch.Tensor  # and their own random labels
    test_x: torch.Tensor
    test_y: torch.Tensor
    test_r: torch.Tensor
    num_classes: int
    mean: tuple  # per-channel, in [0, 1], of the training images
    std: tuple

    @property
    def noisy_labels(self):
        """How many training class labels label noise changed."""
        return int(self.train_noisy.sum())


def _download(make, source):
    socket.setdefaulttimeout(15)  # offline, fail in seconds instead of hanging on a mirror
    try:
        make()
    except Exception as e:
        raise DataError(
            f'could not download it ({type(e).__name__}); '
            f'get {source} and unpack it into --data-dir'
        ) from None


def load_cifar(name, root):
    folder, train_files, test_files, key = CIFAR_FOLDERS[name]
    cls = torchvision.datasets.CIFAR10 if name == 'cifar10' else torchvision.datasets.CIFAR100
    if not os.path.isdir(os.path.join(root, folder)):
        _download(lambda: cls(root, download=True), cls.url)

    # the pickle batches that torchvision downloads: data (n, 3072) uint8, labels list
    def read(files):
        xs, ys = [], []
        for f in files:
            with open(os.path.join(root, folder, f), 'rb') as fh:
                batch = pickle.load(fh, encoding='latin1')
            xs.append(np.asarray(batch['data'], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[key], dtype=np.int64))
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    return read(train_files), read(test_files), 100 if name == 'cifar100' else 10


def load_fashion_mnist(root):
    raw = os.path.join(root, 'FashionMNIST', 'raw')
    have_raw = os.path.exists(os.path.join(raw, 'train-images-idx3-ubyte'))
    if not have_raw and os.path.isdir(FASHION_MNIST_DEBIAN):
        # offline: the Debian package's files, in torchvision's layout
        os.makedirs(raw, exist_ok=True)
        for gz in os.listdir(FASHION_MNIST_DEBIAN):
            path = os.path.join(raw, gz[:-3])
            with (
                gzip.open(os.path.join(FASHION_MNIST_DEBIAN, gz)) as src,
                open(path + '.tmp', 'wb') as dst,
            ):
                shutil.copyfileobj(src, dst)
            # a kill mid-copy never leaves a truncated file under the real name
            os.replace(path + '.tmp', path)
    splits = []
    for train in (True, False):
        try:
            ds = torchvision.datasets.FashionMNIST(root, train=train, download=False)
        except RuntimeError:  # not found: try the internet
            _download(
                lambda train=train: torchvision.datasets.FashionMNIST(
                    root, train=train, download=True
                ),
                'the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)',
            )
            ds = torchvision.datasets.FashionMNIST(root, train=train, download=False)
        splits.append((ds.data.unsqueeze(1), ds.targets.long()))  # (N, 1, 28, 28) uint8
    return splits[0], splits[1], 10


# the same set on every call, so made once per process (callers index it, never write into it)
@functools.lru_cache(maxsize=2)
def make_fake(like, seed=0):
    """Synthetic images with real class structure: a smooth class template plus per-sample noise,
    so a small CNN learns the classes in seconds and every sample still has features of its own to
    memorize."""
    classes, channels, size, n_train, n_test = FAKE_SHAPES[like]
    g = torch.Generator().manual_seed(seed)
    f32 = torch.float32  # the same images whatever torch's default dtype
    templates = torch.randn(classes, channels, 4, 4, generator=g, dtype=f32)
    # (classes, C, H, W)
    templates = torch.nn.functional.interpolate(templates, size=size, mode='bilinear')

    def split(n):
        y = torch.randint(classes, (n,), generator=g)
        noise = torch.randn(n, channels, size, size, generator=g, dtype=f32)
        x = 128 + 20 * templates[y] + 70 * noise
        return x.clamp(0, 255).to(torch.uint8), y

    return split(n_train), split(n_test), classes


def load(
    name,
    data_dir,
    label_seed,
    random_labels,
    label_noise=0.0,
    subset=None,
    fake_like='cifar10',
    test_subset=None,
    half=None,
):
    """Everything a run needs, on the CPU: images, class labels, random labels.

    subset N: a seeded pool of N training images (default: all). half J: train on the J-th seeded
    random half of the pool (Feldman & Zhang's leave-out models: halves 2k and 2k+1 are
    complementary). The held-out set is every training-split image the run does not train on.
    """
    (train_x, train_y), (test_x, test_y), classes = read(name, data_dir, fake_like)
    n = len(train_x)
    if subset is not None and subset > n:
        raise DataError(
            f'--subset {subset} is larger than the {n} training images of {name}; use at most {n}'
        )
    if test_subset is not None and test_subset > len(test_x):
        raise DataError(
            f'--test-subset {test_subset} is larger than the {len(test_x)} test images of {name}; '
            f'use at most {len(test_x)}'
        )
    if half is not None and (subset or n) < 2:
        raise DataError(f'--half needs at least 2 training images (got --subset {subset})')

    # One generator per purpose, each drawn over the full set, so a sample keeps its random label
    # and its class label whatever --subset, --half and --label-noise are.
    g = torch.Generator().manual_seed(label_seed)
    all_r = torch.randint(random_labels, (n,), generator=g)
    test_r = torch.randint(random_labels, (len(test_x),), generator=g)
    g_noise = torch.Generator().manual_seed(label_seed + 1)
    flip = torch.rand(n, generator=g_noise) < label_noise
    all_y = torch.where(flip, torch.randint(classes, (n,), generator=g_noise), train_y)
    noisy = all_y != train_y
    pool = torch.randperm(n, generator=torch.Generator().manual_seed(label_seed + 2))[:subset]
    if half is not None:
        pool = pool_half(pool, label_seed, half)
    inside = torch.zeros(n, dtype=torch.bool)
    inside[pool] = True
    keep, rest = inside.nonzero()[:, 0], (~inside).nonzero()[:, 0]  # sorted

    g_test_subset = torch.Generator().manual_seed(label_seed + 3)
    keep_test = torch.randperm(len(test_x), generator=g_test_subset)[:test_subset].sort().values
    pixels = train_x[keep].float().div_(255)  # (N, C, H, W); statistics per channel
    return Data(
        train_x=train_x[keep],
        train_y=all_y[keep],
        train_r=all_r[keep],
        train_index=keep,
        train_noisy=noisy[keep],
        heldout_x=train_x[rest],
        heldout_y=all_y[rest],
        heldout_r=all_r[rest],
        test_x=test_x[keep_test],
        test_y=test_y[keep_test],
        test_r=test_r[keep_test],
        num_classes=classes,
        mean=tuple(pixels.mean((0, 2, 3)).tolist()),
        std=tuple(pixels.std((0, 2, 3)).tolist()),
    )


def pool_half(pool, label_seed, half):
    """The half-th seeded random half of the indices `pool`: halves 2k and 2k+1 split the pool by
    the k-th permutation, so they are complementary and each pair is its own split."""
    g_half = torch.Generator().manual_seed(label_seed + 4 + half // 2)
    order = pool[torch.randperm(len(pool), generator=g_half)]
    return order[: len(order) // 2] if half % 2 == 0 else order[len(order) // 2 :]


@contextlib.contextmanager
def one_at_a_time(data_dir):
    """Runs started together (make -j) download or unpack a dataset one after the other, never
    into the same files at once. A folder we cannot write to is only read: no lock needed."""
    try:
        os.makedirs(data_dir, exist_ok=True)
        lock = open(os.path.join(data_dir, '.lock'), 'a')
    except OSError:
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process ends
        yield


def read(name, data_dir, fake_like='cifar10'):
    """((train images, labels), (test images, labels), classes) of a dataset, checked."""
    try:
        if name == 'fake':
            train, test, classes = make_fake(fake_like)
        elif name == 'fashion-mnist':
            with one_at_a_time(data_dir):
                train, test, classes = load_fashion_mnist(data_dir)
        else:
            with one_at_a_time(data_dir):
                train, test, classes = load_cifar(name, data_dir)
    except DataError as e:
        raise DataError(f'--dataset {name}: not found in --data-dir {data_dir} and {e}') from None
    except (
        OSError,
        EOFError,
        ValueError,
        KeyError,
        pickle.UnpicklingError,
        RuntimeError,
        AssertionError,
    ) as e:
        raise DataError(
            f'--dataset {name}: files in --data-dir {data_dir} are corrupt or truncated '
            f'({type(e).__name__}); delete them and download again'
        ) from None
    (train_x, train_y), (test_x, test_y) = train, test
    if len(train_x) != len(train_y) or len(test_x) != len(test_y) or train_y.max() >= classes:
        raise DataError(
            f'--dataset {name}: images and labels in --data-dir {data_dir} do not match; '
            'delete and download again'
        )
    return train, test, classes


def shard(n, rank, world):
    """The contiguous part of a global batch of n samples that process `rank` of `world` takes:
    sizes differ by at most one."""
    return slice(n * rank // world, n * (rank + 1) // world)


class GpuLoader:
    """Batches of (normalized float images, class labels, random labels, dataset indices) from
    tensors kept on `device`.

    Shuffling uses a CPU generator and augmentation a generator on the device; both are part of
    `state_dict()`, so a resumed run sees exactly the batches an uninterrupted one would.

    rank, world: under torchrun, each process yields its shard of every global batch of
    `batch_size`. The order and the augmentation draws are those of the whole global batch, so the
    shards of all processes together are exactly one process's batch, whatever the world size
    (what this costs: every process holds the whole set, see parallel.py). `batch_len` and `part`
    say which global batch the last shard came from (parallel.GlobalBatchDropout reads them).
    """

    def __init__(
        self,
        x,
        y,
        r,
        mean,
        std,
        batch_size,
        device,
        shuffle=False,
        augment=False,
        drop_last=False,
        seed=0,
        index=None,
        rank=0,
        world=1,
    ):
        # uint8 images: 4x less memory
        self.x = x.to(device)
        self.y = y.to(device)
        self.r = r.to(device)
        # a sample's identity (Data.train_index): per-sample state such as turn-over dropout masks
        self.index = (torch.arange(len(x)) if index is None else index).to(device)
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255
        self.batch_size = batch_size
        self.device = device
        self.shuffle = shuffle
        self.augment = augment
        self.drop_last = drop_last
        self.rank, self.world = rank, world
        self.batch_len, self.part = 0, slice(0, 0)
        # channels_last for the GPU's convs
        cuda = torch.device(device).type == 'cuda'
        self.memory_format = torch.channels_last if cuda else torch.contiguous_format
        self.order_gen = torch.Generator().manual_seed(seed)
        self.aug_gen = torch.Generator(device=device).manual_seed(seed)

    def __len__(self):  # global batches per epoch
        return (
            len(self.x) // self.batch_size if self.drop_last else -(-len(self.x) // self.batch_size)
        )

    def __iter__(self):
        n = len(self.x)
        order = torch.randperm(n, generator=self.order_gen) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]  # the global batch
            # drawn for the whole global batch on every process, as one process draws them
            draws = self.crop_flip_draws(len(idx)) if self.augment else None
            self.batch_len, self.part = len(idx), shard(len(idx), self.rank, self.world)
            idx = idx[self.part]
            if len(idx) == 0:  # a global batch smaller than the world (evaluation only)
                continue
            x = self.x[idx]
            if self.augment:
                x = self.crop_flip(x, draws=[d[self.part] for d in draws])
            x = (
                x.float()
                .sub_(self.mean)
                .div_(self.std)
                .contiguous(memory_format=self.memory_format)
            )
            yield x, self.y[idx], self.r[idx], self.index[idx]

    def crop_flip_draws(self, B, pad=4):
        """Each of B images' crop offsets dy, dx (B, 1) in [0, 2 pad] and flip (B, 1) bool."""
        dev = self.aug_gen.device
        dy = torch.randint(0, 2 * pad + 1, (B, 1), device=dev, generator=self.aug_gen)
        dx = torch.randint(0, 2 * pad + 1, (B, 1), device=dev, generator=self.aug_gen)
        flip = torch.rand(B, 1, device=dev, generator=self.aug_gen) < 0.5
        return dy, dx, flip

    def crop_flip(self, x, pad=4, draws=None):
        """Per-sample random crop (zero padding `pad`) and horizontal flip.

        Both run as one gather on the device. draws: (dy, dx, flip) of crop_flip_draws, drawn
        here when None.
        """
        B, C, H, W = x.shape
        dy, dx, flip = self.crop_flip_draws(B, pad) if draws is None else draws
        padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))  # (B, C, H+2p, W+2p)
        rows = dy + torch.arange(H, device=x.device)  # (B, H)
        cols = dx + torch.where(
            flip, torch.arange(W - 1, -1, -1, device=x.device), torch.arange(W, device=x.device)
        )  # (B, W)
        out = padded[
            torch.arange(B, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]
        ]  # (B, H, W, C)
        return out.permute(0, 3, 1, 2)  # (B, C, H, W), channels-last in memory

    def state_dict(self):
        return {'order': self.order_gen.get_state(), 'aug': self.aug_gen.get_state()}

    def load_state_dict(self, state):
        self.order_gen.set_state(state['order'])
        self.aug_gen.set_state(state['aug'])
