r"""Datasets, fixed random labels, label noise, and a batch loader that keeps data on the device.

Random labels ([Becker & Risse 2024]; [Becker et al. 2026], the method): every training sample i
gets one random label
    $r_i \sim \mathrm{Uniform}\{0, \dots, K-1\}$,
drawn once, before training, independently of its class $y_i$ (`draw_random_labels`). The labels
come from a CPU `torch.Generator` seeded by `--label-seed`, so the same seed gives the same labels
on any device, and they never change during training: a head can only fit them by remembering
each sample. Test samples get their own draw; nothing can predict those better than chance $1/K$,
which makes them a chance check.

Label noise ([Zhang et al. 2017]): each training class label is replaced with probability p by a
uniform draw over all C classes (p = 1: fully random class labels).

One generator seeded by `--label-seed` makes every draw, always in the same order and always over
the whole training split, so a sample keeps its random label and its class label whatever
`--subset` and `--label-noise` select: random labels (train, test), label noise, the subset, the
test subset. The held-out set is every training-split image the run does not train on: the
controls of metrics.py compare the two.

Speed: the training set lives on the device as uint8 (N, C, H, W); random crop (padding 4) and
horizontal flip run for a whole batch as one gather on the device, so no CPU worker touches a pixel
(airbench does the same); on CUDA, bf16 autocast and the channels-last layout. The datasets' files
(torchvision's, or the Debian package's offline) are read by plumbing.read_dataset.

[Becker & Risse 2024]: https://arxiv.org/abs/2411.19640
[Becker et al. 2026]: https://arxiv.org/abs/2607.11541
[Zhang et al. 2017]: https://arxiv.org/abs/1611.03530
"""

import functools
from dataclasses import dataclass

import torch

from plumbing import DataError, read_dataset

DATASETS = ['cifar10', 'cifar100', 'fashion-mnist', 'fake']
# the synthetic set `fake` comes shaped like a real one: classes, channels, size, n_train, n_test
FAKE_SHAPES = {
    'cifar10': (10, 3, 32, 50000, 10000),
    'cifar100': (100, 3, 32, 50000, 10000),
    'fashion-mnist': (10, 1, 28, 60000, 10000),
}


@dataclass
class Data:
    """One run's data, on the CPU. Images are (N, C, H, W) uint8, labels (N,) int64."""

    train_x: torch.Tensor  # the images the network trains on
    train_y: torch.Tensor  # their class labels y, after label noise
    train_r: torch.Tensor  # their random labels r
    train_index: torch.Tensor  # their rows in the full training split: a sample's identity
    train_noisy: torch.Tensor  # (N,) bool: label noise changed this class label
    heldout_x: torch.Tensor  # training-split images the network never sees
    heldout_y: torch.Tensor
    heldout_r: torch.Tensor  # with random labels of their own
    test_x: torch.Tensor
    test_y: torch.Tensor
    test_r: torch.Tensor  # the chance check
    num_classes: int
    mean: tuple  # per channel, in [0, 1], of the training images
    std: tuple


def draw_random_labels(n, K, generator):
    r"""$r_i \sim \mathrm{Uniform}\{0, \dots, K-1\}$ for n samples, independent of everything
    else: (n,) int64 ([Becker & Risse 2024])."""
    return torch.randint(K, (n,), generator=generator)


def add_label_noise(y, p, num_classes, generator):
    """Replace each label with probability p by a uniform draw over all classes ([Zhang et al.
    2017]: p = 1 is their random labels); also say which labels changed (a draw may give the label
    back). Always draws 2n numbers, whatever p."""
    replace = torch.rand(len(y), generator=generator) < p
    noisy_y = torch.where(replace, torch.randint(num_classes, y.shape, generator=generator), y)
    return noisy_y, noisy_y != y


def load(
    name,
    data_dir,
    label_seed,
    random_labels,
    label_noise=0.0,
    subset=None,
    test_subset=None,
    fake_like='cifar10',
):
    """Everything a run needs, on the CPU: images, class labels, random labels.

    subset N: train on a seeded random N of the training images (default: all of them); the
    others are the held-out set. test_subset N: evaluate on a seeded random N test images.
    """
    read = make_fake(fake_like) if name == 'fake' else read_dataset(name, data_dir)
    (train_x, train_y), (test_x, test_y), classes = read
    n, n_test = len(train_x), len(test_x)
    for flag, asked, have in (('--subset', subset, n), ('--test-subset', test_subset, n_test)):
        if asked is not None and asked > have:
            raise DataError(f'{flag} {asked} is larger than the {have} images of {name}')

    g = torch.Generator().manual_seed(label_seed)  # every draw, in this order, over the full set
    r = draw_random_labels(n, random_labels, g)
    test_r = draw_random_labels(n_test, random_labels, g)
    y, noisy = add_label_noise(train_y, label_noise, classes, g)
    chosen = torch.zeros(n, dtype=torch.bool)
    chosen[torch.randperm(n, generator=g)[:subset]] = True
    keep, rest = chosen.nonzero()[:, 0], (~chosen).nonzero()[:, 0]  # in dataset order
    keep_test = torch.randperm(n_test, generator=g)[:test_subset].sort().values

    pixels = train_x[keep].float().div_(255)  # per-channel statistics of the training images
    return Data(
        train_x=train_x[keep],
        train_y=y[keep],
        train_r=r[keep],
        train_index=keep,
        train_noisy=noisy[keep],
        heldout_x=train_x[rest],
        heldout_y=y[rest],
        heldout_r=r[rest],
        test_x=test_x[keep_test],
        test_y=test_y[keep_test],
        test_r=test_r[keep_test],
        num_classes=classes,
        mean=tuple(pixels.mean((0, 2, 3)).tolist()),
        std=tuple(pixels.std((0, 2, 3)).tolist()),
    )


@functools.lru_cache(maxsize=2)  # the same set on every call: made once per process, never written
def make_fake(like, seed=0):
    """Synthetic images with real class structure: a smooth class template plus per-sample noise,
    so a small CNN learns the classes in seconds and every sample has features of its own."""
    classes, channels, size, n_train, n_test = FAKE_SHAPES[like]
    g = torch.Generator().manual_seed(seed)
    f32 = torch.float32  # the same images whatever torch's default dtype
    templates = torch.randn(classes, channels, 4, 4, generator=g, dtype=f32)
    templates = torch.nn.functional.interpolate(templates, size=size, mode='bilinear')

    def split(n):
        y = torch.randint(classes, (n,), generator=g)
        noise = torch.randn(n, channels, size, size, generator=g, dtype=f32)
        return (128 + 20 * templates[y] + 70 * noise).clamp(0, 255).to(torch.uint8), y

    return split(n_train), split(n_test), classes


# --- the loader -------------------------------------------------------------------------------


def autocast(device, bf16=True):
    """bf16 autocast on CUDA (tensor-core matmuls, half the activation bytes); fp32 on the CPU."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16 and device.type == 'cuda')


def memory_format(device):
    """channels-last on CUDA, where convolutions are fastest in it; the usual layout elsewhere.
    The loader's batches and train.build_model's network both take it from here."""
    return torch.channels_last if torch.device(device).type == 'cuda' else torch.contiguous_format


class GpuLoader:
    """Batches (normalized float images, *labels) from tensors kept on `device`.

    x: (N, C, H, W) uint8 images; labels: a tuple of per-sample tensors (N, ...) that come with
    them (class labels y and random labels r). Shuffling uses a CPU generator and augmentation one
    on the device; both are in `state_dict()`, so a resumed run sees exactly the batches an
    uninterrupted one would.
    """

    def __init__(
        self,
        x,
        labels,
        mean,
        std,
        batch_size,
        device,
        shuffle=False,
        augment=False,
        drop_last=False,
        seed=0,
    ):
        self.x = x.to(device)  # uint8: 4x less memory than float
        self.labels = tuple(t.to(device) for t in labels)
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.drop_last = drop_last
        self.memory_format = memory_format(device)
        self.order_gen = torch.Generator().manual_seed(seed)
        self.aug_gen = torch.Generator(device=device).manual_seed(seed)

    def __len__(self):  # batches per epoch
        n, b = len(self.x), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        n = len(self.x)
        order = torch.randperm(n, generator=self.order_gen) if self.shuffle else torch.arange(n)
        order = order.to(self.x.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            x = self.x[idx]
            if self.augment:
                x = crop_flip(x, self.aug_gen)
            x = (
                x.float()
                .sub_(self.mean)
                .div_(self.std)
                .contiguous(memory_format=self.memory_format)
            )
            yield x, *(t[idx] for t in self.labels)

    def state_dict(self):
        return {'order': self.order_gen.get_state(), 'aug': self.aug_gen.get_state()}

    def load_state_dict(self, state):
        self.order_gen.set_state(state['order'])
        self.aug_gen.set_state(state['aug'])


def crop_flip(x, generator, pad=4):
    """Per-sample random crop (zero padding `pad`) and horizontal flip of a batch (B, C, H, W),
    as one gather on the batch's device; the draws come from `generator`, on that device."""
    B, C, H, W = x.shape
    dev = x.device
    dy = torch.randint(0, 2 * pad + 1, (B, 1), device=dev, generator=generator)  # (B, 1)
    dx = torch.randint(0, 2 * pad + 1, (B, 1), device=dev, generator=generator)
    flip = torch.rand(B, 1, device=dev, generator=generator) < 0.5
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))  # (B, C, H + 2 pad, W + 2 pad)
    rows = dy + torch.arange(H, device=dev)  # (B, H)
    cols = dx + torch.where(
        flip, torch.arange(W - 1, -1, -1, device=dev), torch.arange(W, device=dev)
    )
    out = padded[torch.arange(B, device=dev)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W), channels-last in memory
