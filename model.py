"""Backbones with taps, the task head g and the random-label heads h.

Notation (Becker & Risse 2024; Becker et al. 2026): x input, f feature extractor,
z = f(x) the pooled penultimate feature of dimension D, g(z) = Linear(D, C) the class logits, h the
random-label head with K outputs. Two layouts of h:
  per-class (workshop paper): one linear head per class, sample i scored by the head of its class
            y_i, so it must separate samples *within* a class. Stored as one Linear(D, C*K),
            viewed (B, C, K) and indexed by y (no loop over classes).
  shared    (ICLR paper): one Linear(D, K).
Taps: `stage1` ... `stage{S-1}` are the globally average-pooled outputs of the backbone's stages,
from the input side; `penultimate` is z, the pooled output of the last stage (after its final
activation). Each tap has its own head.

Backbones: WRN-16-4 (Zagoruyko & Komodakis 2016, the ICLR paper's CIFAR network), ResNet-18 from
torchvision with a CIFAR stem (3x3 conv, stride 1, no max-pool; He et al. 2016), and a small CNN
for CPUs.

Two related systems live in the network (SPEC, "Related systems"): turn-over dropout on z in front
of g (`tod`, Kobayashi et al. 2020; tod.py), and LIMIT's gradient predictor q (`limit_q`,
Harutyunyan et al. 2020; classloss.py), a second network of the same architecture that reads x only.
"""

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from tod import TurnOverDropout

MODELS = ['wrn16_4', 'resnet18', 'cnn']


def conv_bn_relu(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class WideBlock(nn.Module):
    """Pre-activation residual block of a wide ResNet.

    BN-ReLU-conv3x3, BN-ReLU-conv3x3, plus shortcut.
    """

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = (
            nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None
        )

    def forward(self, x):
        o = F.relu(self.bn1(x))
        y = self.conv2(F.relu(self.bn2(self.conv1(o))))
        return y + (self.shortcut(o) if self.shortcut is not None else x)


def wrn(in_channels, depth=16, k=4):
    n = (depth - 4) // 6  # blocks per stage: 2 for WRN-16
    widths = [16 * k, 32 * k, 64 * k]
    stem = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
    stages, cin = [], 16
    for width, stride in zip(widths, [1, 2, 2], strict=True):
        blocks = [
            WideBlock(cin if i == 0 else width, width, stride if i == 0 else 1) for i in range(n)
        ]
        stages.append(nn.Sequential(*blocks))
        cin = width
    # pre-activation nets end with BN-ReLU
    final = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True))
    return stem, stages, final


def resnet18(in_channels):
    net = torchvision.models.resnet18()
    # CIFAR stem: keep 32x32 resolution, no max-pool
    net.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
    stem = nn.Sequential(net.conv1, net.bn1, net.relu)
    return stem, [net.layer1, net.layer2, net.layer3, net.layer4], nn.Identity()


def cnn(in_channels, widths=(16, 32, 64)):
    stages, cin = [], in_channels
    for i, width in enumerate(widths):
        pool = [nn.MaxPool2d(2)] if i > 0 else []
        # thin: fast on 2 cores
        stages.append(nn.Sequential(*pool, conv_bn_relu(cin, width), conv_bn_relu(width, width)))
        cin = width
    return nn.Identity(), stages, nn.Identity()


BACKBONES = {'wrn16_4': wrn, 'resnet18': resnet18, 'cnn': cnn}


class RandomLabelHead(nn.Module):
    """h: K random-label logits per sample, per-class (read at the sample's class y) or shared."""

    def __init__(self, dim, num_classes, random_labels, layout):
        super().__init__()
        assert layout in ('per-class', 'shared'), f'unknown head layout {layout}'
        self.K = random_labels
        self.per_class = layout == 'per-class'
        self.linear = nn.Linear(
            dim, num_classes * random_labels if self.per_class else random_labels
        )

    def forward(self, z, y, frozen=False):
        """frozen=True: the head's parameters get no gradient, z still does.

        For the output regularizer.
        """
        w, b = self.linear.weight, self.linear.bias
        if frozen:
            w, b = w.detach(), b.detach()
        out = F.linear(z, w, b)  # (B, C*K) or (B, K)
        if not self.per_class:
            return out
        out = out.view(len(z), -1, self.K)  # (B, C, K)
        return out[torch.arange(len(z), device=z.device), y]  # (B, K): each sample's own class head


def init_convs(module):
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')


class GradientPredictor(nn.Module):
    """LIMIT's q (Harutyunyan et al. 2020): a backbone of the same architecture and a Linear(D, C)
    on its pooled output. It sees x only, never y; softmax(q(x)) predicts the label."""

    def __init__(self, arch, in_channels, num_classes, image_size):
        super().__init__()
        stem, stages, final = BACKBONES[arch](in_channels)
        self.body = nn.Sequential(stem, *stages, final)
        with torch.no_grad():
            dim = self.body(torch.zeros(2, in_channels, image_size, image_size)).shape[1]
        self.fc = nn.Linear(dim, num_classes)
        init_convs(self)

    def forward(self, x):
        return self.fc(self.body(x).mean((2, 3)))  # (B, C): the logits b


@dataclass
class Outputs:
    logits: torch.Tensor  # (B, C) task head g(z)
    features: dict  # tap name -> (B, D_tap) pooled features; 'penultimate' is z


class Net(nn.Module):
    """A backbone f, the task head g on z, and one random-label head per tap."""

    def __init__(
        self,
        arch,
        in_channels,
        num_classes,
        random_labels=2,
        rlp_head='per-class',
        taps='penultimate',
        dropout=0.0,
        image_size=32,
        tod_samples=0,
        tod_seed=0,
        limit=False,
    ):
        super().__init__()
        assert arch in BACKBONES, f'unknown model {arch}; choose from {MODELS}'
        stem, stages, self.final = BACKBONES[arch](in_channels)
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.taps = [f'stage{i}' for i in range(1, len(stages))] * (taps == 'all') + ['penultimate']
        # feature widths from one dummy image, whatever the backbone
        with torch.no_grad():
            dummy = torch.zeros(2, in_channels, image_size, image_size)
            dims = {t: z.shape[1] for t, z in self.features(dummy).items()}
        self.dims = dims
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(dims['penultimate'], num_classes)
        self.rand_heads = nn.ModuleDict(
            {t: RandomLabelHead(dims[t], num_classes, random_labels, rlp_head) for t in self.taps}
        )
        init_convs(self)
        # built after the network's own initialization, which stays that of a plain run
        # turn-over dropout: one fixed mask per dataset index (tod_samples = size of the split)
        self.tod = (
            TurnOverDropout(tod_samples, dims['penultimate'], tod_seed) if tod_samples else None
        )
        # LIMIT: the gradient predictor q, trained alongside
        self.limit_q = (
            GradientPredictor(arch, in_channels, num_classes, image_size) if limit else None
        )

    def features(self, x):
        feats, h = {}, self.stem(x)
        for i, stage in enumerate(self.stages, 1):
            h = stage(h)
            if f'stage{i}' in self.taps:
                feats[f'stage{i}'] = h.mean((2, 3))  # (B, C_i): global average pool
        feats['penultimate'] = self.final(h).mean((2, 3))  # (B, D)
        return feats

    def classify(self, z, index=None, flip=False):
        """g's logits (B, C) from z; under turn-over dropout, through the mask of each sample's
        dataset index (or its flip). Without an index: no mask."""
        if self.tod is not None:
            z = self.tod(z, index, flip)
        return self.fc(self.dropout(z))

    def forward(self, x, index=None):
        feats = self.features(x)
        return Outputs(self.classify(feats['penultimate'], index), feats)
