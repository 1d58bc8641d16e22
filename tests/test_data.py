"""Loaders on fixtures in the datasets' own formats, random labels, label noise, and the batched
augmentation."""

import gzip
import os

import numpy as np
import pytest
import torch
from conftest import write_cifar, write_fashion_mnist_gz

import data
import plumbing


@pytest.mark.parametrize('name', ['cifar10', 'cifar100'])
def test_cifar_pickle_batches_load(tmp_path, name):
    arrays = write_cifar(tmp_path, name)
    d = data.load(name, str(tmp_path), label_seed=0, random_labels=2)
    first = arrays['data_batch_1' if name == 'cifar10' else 'train']
    assert (
        d.train_x.shape == (100 if name == 'cifar10' else 20, 3, 32, 32)
        and d.train_x.dtype == torch.uint8
    )
    assert np.array_equal(d.train_x[:20].numpy().reshape(20, -1), first[0])
    assert d.train_y[:20].tolist() == first[1] and d.num_classes == (
        100 if name == 'cifar100' else 10
    )
    assert d.test_x.shape == (10, 3, 32, 32)


def test_fashion_mnist_from_debian_files_in_torchvision_layout(tmp_path, monkeypatch):
    debian = tmp_path / 'debian'
    arrays = write_fashion_mnist_gz(debian)
    monkeypatch.setattr(plumbing, 'FASHION_MNIST_DEBIAN', str(debian))
    d = data.load('fashion-mnist', str(tmp_path / 'data'), label_seed=0, random_labels=2)
    assert (tmp_path / 'data' / 'FashionMNIST' / 'raw' / 'train-images-idx3-ubyte').exists()
    assert np.array_equal(d.train_x[:, 0].numpy(), arrays['train-images-idx3-ubyte'])
    assert np.array_equal(d.test_y.numpy(), arrays['t10k-labels-idx1-ubyte'])


def test_missing_dataset_offline_is_a_data_error(tmp_path, no_debian_fashion_mnist, monkeypatch):
    monkeypatch.setattr(
        plumbing,
        'download',
        lambda make, source: (_ for _ in ()).throw(data.DataError('no internet')),
    )
    for name in ('fashion-mnist', 'cifar10'):
        with pytest.raises(data.DataError, match='--dataset'):
            data.load(name, str(tmp_path), label_seed=0, random_labels=2)


def test_truncated_files_are_a_data_error(tmp_path):
    write_cifar(tmp_path, 'cifar10')
    path = tmp_path / 'cifar-10-batches-py' / 'data_batch_3'
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(data.DataError, match='corrupt'):
        data.load('cifar10', str(tmp_path), label_seed=0, random_labels=2)


def test_truncated_idx_file_is_a_data_error(tmp_path, no_debian_fashion_mnist):
    raw = tmp_path / 'FashionMNIST' / 'raw'
    write_fashion_mnist_gz(tmp_path / 'gz')
    raw.mkdir(parents=True)
    for f in os.listdir(tmp_path / 'gz'):
        (raw / f[:-3]).write_bytes(gzip.open(tmp_path / 'gz' / f).read())
    img = raw / 'train-images-idx3-ubyte'
    img.write_bytes(img.read_bytes()[:1000])
    with pytest.raises(data.DataError):
        data.load('fashion-mnist', str(tmp_path), label_seed=0, random_labels=2)


def test_random_labels_are_seeded_uniform_and_belong_to_the_sample():
    a = data.load('fake', '', label_seed=3, random_labels=2, fake_like='fashion-mnist')
    b = data.load('fake', '', label_seed=3, random_labels=2, fake_like='fashion-mnist', subset=1000)
    c = data.load('fake', '', label_seed=4, random_labels=2, fake_like='fashion-mnist')
    assert abs(a.train_r.float().mean() - 0.5) < 0.01 and abs(a.test_r.float().mean() - 0.5) < 0.02
    assert not torch.equal(a.train_r, c.train_r)
    # the subset keeps each sample's own random label: find its rows in the full set by their pixels
    rows = {bytes(x.numpy()): i for i, x in enumerate(a.train_x)}
    idx = torch.tensor([rows[bytes(x.numpy())] for x in b.train_x])
    assert torch.equal(b.train_r, a.train_r[idx]) and torch.equal(b.train_y, a.train_y[idx])
    # independent of the class: per class, still about half ones
    for k in range(10):
        assert abs(a.train_r[a.train_y == k].float().mean() - 0.5) < 0.05


def test_label_noise_replaces_the_expected_fraction():
    clean = data.load('fake', '', label_seed=0, random_labels=2, fake_like='fashion-mnist')
    noisy = data.load(
        'fake', '', label_seed=0, random_labels=2, fake_like='fashion-mnist', label_noise=0.5
    )
    changed = (clean.train_y != noisy.train_y).float().mean().item()
    assert abs(changed - 0.5 * 0.9) < 0.02  # 1 in C draws gives the label back
    assert int(noisy.train_noisy.sum()) == (clean.train_y != noisy.train_y).sum()
    assert torch.equal(clean.train_r, noisy.train_r)  # noise never moves the random labels


def test_crop_flip_equals_a_per_sample_reference():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    out = data.crop_flip(x, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # replay the loader's draws
    dy, dx = torch.randint(0, 9, (16, 1), generator=g), torch.randint(0, 9, (16, 1), generator=g)
    flip = torch.rand(16, 1, generator=g) < 0.5
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(16):
        crop = padded[i, :, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8]
        assert torch.equal(out[i], crop.flip(-1) if flip[i] else crop)
    assert 0 < flip.sum() < 16 and len(set(dy.flatten().tolist())) > 1


def test_loader_covers_every_sample_once_per_epoch_with_its_labels():
    x = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    labels = (torch.arange(10), torch.arange(100, 110))
    loader = data.GpuLoader(x, labels, (0,), (1 / 255,), 4, 'cpu', shuffle=True)
    batches = list(loader)
    seen = torch.cat([y for _, y, _ in batches])
    assert sorted(seen.tolist()) == list(range(10)) and len(loader) == 3
    assert all(torch.equal(r, y + 100) for _, y, r in batches)  # each sample's own labels
    assert all(torch.equal(x[:, 0, 0, 0], y.float()) for x, y, _ in batches)  # and its image


def test_heldout_is_every_training_image_not_trained_on():
    """The controls compare training samples with held-out ones: the two never share an image."""
    full = data.load('fake', '', 0, 2, fake_like='fashion-mnist', label_noise=0.5)
    d = data.load('fake', '', 0, 2, fake_like='fashion-mnist', subset=1000, label_noise=0.5)
    assert len(d.train_y) == 1000 and len(d.heldout_y) == 59000
    assert torch.equal(full.train_x[d.train_index], d.train_x)
    assert torch.equal(d.train_y, full.train_y[d.train_index])  # noise follows the sample
    assert torch.equal(d.train_noisy, full.train_noisy[d.train_index])
    assert int(d.train_noisy.sum()) > 0
    rest = torch.ones(60000, dtype=torch.bool)
    rest[d.train_index] = False
    assert torch.equal(d.heldout_x, full.train_x[rest])  # every other image, and only those
    assert torch.equal(d.heldout_r, full.train_r[rest])  # held-out samples keep their own r
    trained = {bytes(x.numpy()) for x in d.train_x}
    assert not any(bytes(x.numpy()) in trained for x in d.heldout_x[:5000])  # not one image shared


def test_label_seed_draws_labels_subset_and_noise_together():
    a = data.load('fake', '', 1, 2, fake_like='fashion-mnist', subset=500, label_noise=0.3)
    b = data.load('fake', '', 1, 2, fake_like='fashion-mnist', subset=500, label_noise=0.3)
    c = data.load('fake', '', 2, 2, fake_like='fashion-mnist', subset=500, label_noise=0.3)
    assert torch.equal(a.train_index, b.train_index) and torch.equal(a.train_r, b.train_r)
    assert not torch.equal(a.train_index, c.train_index)  # another seed: another network's data


def test_the_dataset_lock_holds_without_fcntl(tmp_path, monkeypatch):
    """Where the system has no fcntl (Windows), the lock is msvcrt's on a byte of the lock file,
    retried until it is taken: a working lock, not a crash."""
    import sys
    import types

    calls = []
    busy = {'left': 2}  # another process holds the byte for the first two tries

    def locking(fd, mode, nbytes):
        calls.append((mode, nbytes))
        if busy['left']:
            busy['left'] -= 1
            raise OSError('locked')

    fake = types.SimpleNamespace(LK_LOCK=1, locking=locking)
    monkeypatch.setattr(sys, 'platform', 'win32')
    monkeypatch.setitem(sys.modules, 'msvcrt', fake)
    with plumbing.one_at_a_time(tmp_path):
        assert calls == [(1, 1)] * 3  # two busy tries, then the lock
    assert (tmp_path / '.lock').exists()
