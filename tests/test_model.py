"""Backbones, taps and the random-label heads."""

import pytest
import torch

from model import Net, RandomLabelHead


def test_per_class_head_gather_equals_a_loop_over_classes():
    torch.manual_seed(0)
    C, K, D, B = 4, 3, 6, 10
    head = RandomLabelHead(D, C, K, 'per-class')
    z, y = torch.randn(B, D), torch.randint(C, (B,))
    W, b = (
        head.linear.weight.view(C, K, D),
        head.linear.bias.view(C, K),
    )  # class c owns rows c*K .. c*K+K-1
    expected = torch.stack([z[i] @ W[y[i]].T + b[y[i]] for i in range(B)])
    assert torch.allclose(head(z, y), expected, atol=1e-6)


def test_shared_head_ignores_the_class():
    head = RandomLabelHead(6, 4, 3, 'shared')
    z = torch.randn(5, 6)
    assert torch.equal(head(z, torch.zeros(5, dtype=torch.long)), head(z, torch.full((5,), 3)))
    assert head(z, None).shape == (5, 3)


def test_frozen_head_passes_gradient_to_features_only():
    head = RandomLabelHead(6, 4, 2, 'per-class')
    z = torch.randn(5, 6, requires_grad=True)
    head(z, torch.randint(4, (5,)), frozen=True).sum().backward()
    assert z.grad is not None and head.linear.weight.grad is None


@pytest.mark.parametrize(
    'arch,channels,size,taps',
    [
        ('cnn', 1, 28, ['stage1', 'stage2', 'penultimate']),
        ('wrn16_4', 3, 32, ['stage1', 'stage2', 'penultimate']),
        ('resnet18', 3, 32, ['stage1', 'stage2', 'stage3', 'penultimate']),
    ],
)
def test_backbones_give_logits_and_every_tap(arch, channels, size, taps):
    model = Net(arch, channels, 7, random_labels=3, taps='all', image_size=size)
    out = model(torch.randn(2, channels, size, size))
    assert out.logits.shape == (2, 7)
    assert list(out.features) == taps == model.taps
    assert {t: z.shape[1] for t, z in out.features.items()} == model.dims
    assert Net(arch, channels, 7, image_size=size).taps == ['penultimate']


def test_wrn16_4_has_its_published_size():
    model = Net('wrn16_4', 3, 10)
    body = sum(p.numel() for n, p in model.named_parameters() if not n.startswith('rand_heads.'))
    assert (
        model.dims['penultimate'] == 256 and 2.7e6 < body < 2.8e6
    )  # 2.7M in Zagoruyko & Komodakis 2016
