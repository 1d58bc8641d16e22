r"""Backbones with taps, the task head g and the random-label heads h.

Notation ([Becker & Risse 2024]; [Becker et al. 2026]): x input, f feature extractor, $z = f(x)$
the pooled penultimate feature of dimension D, $g(z) = \mathrm{Linear}(D, C)$ the class logits, h
the random-label head with K outputs (K = `--random-labels`). Two layouts of h (`--rlp-head`):
- `per-class` (the workshop paper, [Becker & Risse 2024]): one linear head per class; sample i is
  scored by the head of its own class $y_i$, so a head must tell apart samples *within* a class.
  Stored as one $\mathrm{Linear}(D, C \cdot K)$, viewed (B, C, K) and indexed by y: no loop.
- `shared` (the ICLR paper, [Becker et al. 2026], the "RLP-head"): one $\mathrm{Linear}(D, K)$.

Taps (`--taps`): where heads attach (at any depth: [Becker et al. 2026]). `stage1` ...
`stage{S-1}` are the globally average-pooled outputs of the backbone's stages, from the input side;
`penultimate` is z, the pooled output of the last stage (so it is not tapped twice). Each tap has
its own head and its own accuracy.

Backbones: WRN-16-4 ([Zagoruyko & Komodakis 2016], the ICLR paper's CIFAR network), ResNet-18
from torchvision with a CIFAR stem (3x3 conv, stride 1, no max-pool; [He et al. 2016]), and a
small CNN that trains in seconds on a CPU.

[Becker & Risse 2024]: https://arxiv.org/abs/2411.19640
[Becker et al. 2026]: https://arxiv.org/abs/2607.11541
[Zagoruyko & Komodakis 2016]: https://arxiv.org/abs/1605.07146
[He et al. 2016]: https://arxiv.org/abs/1512.03385
"""

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

MODELS = ['wrn16_4', 'resnet18', 'cnn']


class WideBlock(nn.Module):
    """Pre-activation residual block of a wide ResNet ([Zagoruyko & Komodakis 2016]):
    BN-ReLU-conv3x3 twice, plus a shortcut."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        o = F.relu(self.bn1(x))
        y = self.conv2(F.relu(self.bn2(self.conv1(o))))
        return y + (self.shortcut(o) if self.shortcut is not None else x)


def wrn(in_channels, depth=16, k=4):
    """(stem, stages, final) of WRN-depth-k: 3 stages of (depth - 4) / 6 blocks."""
    blocks = (depth - 4) // 6
    stem = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
    stages, cin = [], 16
    for width, stride in ((16 * k, 1), (32 * k, 2), (64 * k, 2)):
        first = WideBlock(cin, width, stride)
        stages.append(
            nn.Sequential(first, *[WideBlock(width, width, 1) for _ in range(blocks - 1)])
        )
        cin = width
    final = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True))  # pre-activation nets end so
    return stem, stages, final


def resnet18(in_channels):
    net = torchvision.models.resnet18()
    # CIFAR stem: a 3x3 convolution that keeps 32x32, and no max-pool
    net.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
    stem = nn.Sequential(net.conv1, net.bn1, net.relu)
    return stem, [net.layer1, net.layer2, net.layer3, net.layer4], nn.Identity()


def cnn(in_channels, widths=(16, 32, 64)):
    """Three stages of two conv-BN-ReLU layers, max-pool between them: thin, fast on 2 cores."""

    def conv(cin, cout):
        return [
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        ]

    stages, cin = [], in_channels
    for i, width in enumerate(widths):
        pool = [nn.MaxPool2d(2)] if i > 0 else []
        stages.append(nn.Sequential(*pool, *conv(cin, width), *conv(width, width)))
        cin = width
    return nn.Identity(), stages, nn.Identity()


BACKBONES = {'wrn16_4': wrn, 'resnet18': resnet18, 'cnn': cnn}


def own_class_head(logits, y, K):
    """Per-class heads ([Becker & Risse 2024]): (..., B, C·K) logits of every class's head ->
    (..., B, K), each sample's scored by the head of its own class $y_i$. A view and one gather:
    no loop over classes."""
    per_class = logits.unflatten(-1, (-1, K))  # (..., B, C, K)
    return per_class[..., torch.arange(len(y), device=y.device), y, :]  # (..., B, K)


class RandomLabelHead(nn.Module):
    """h: K random-label logits per sample, from the head of the sample's class ([Becker & Risse
    2024]) or a shared one ([Becker et al. 2026])."""

    def __init__(self, dim, num_classes, random_labels, layout):
        super().__init__()
        assert layout in ('per-class', 'shared'), f'unknown head layout {layout}'
        self.K, self.per_class = random_labels, layout == 'per-class'
        self.linear = nn.Linear(dim, num_classes * self.K if self.per_class else self.K)

    def forward(self, z, y, frozen=False):
        """z: (B, D) features, y: (B,) class labels. frozen=True: the head's own parameters get no
        gradient, z still does (for the output regularizer)."""
        w, b = self.linear.weight, self.linear.bias
        if frozen:
            w, b = w.detach(), b.detach()
        out = F.linear(z, w, b)  # (B, C*K) or (B, K)
        return own_class_head(out, y, self.K) if self.per_class else out


@dataclass
class Outputs:
    logits: torch.Tensor  # (B, C): the task head g(z)
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
    ):
        super().__init__()
        assert arch in BACKBONES, f'unknown model {arch}; choose from {MODELS}'
        self.stem, stages, self.final = BACKBONES[arch](in_channels)
        self.stages = nn.ModuleList(stages)
        self.taps = [f'stage{i}' for i in range(1, len(stages))] * (taps == 'all') + ['penultimate']
        with torch.no_grad():  # every tap's width, from one dummy batch
            dummy = torch.zeros(2, in_channels, image_size, image_size)
            self.dims = {t: z.shape[1] for t, z in self.features(dummy).items()}
        self.dropout = nn.Dropout(dropout)  # on z, before g: the dropout regularizer of the study
        self.fc = nn.Linear(self.dims['penultimate'], num_classes)
        self.rand_heads = nn.ModuleDict(
            {
                t: RandomLabelHead(self.dims[t], num_classes, random_labels, rlp_head)
                for t in self.taps
            }
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')

    def features(self, x):
        """{tap: (B, D_tap)}: each tapped stage's output averaged over space, and z."""
        feats, h = {}, self.stem(x)
        for i, stage in enumerate(self.stages, 1):
            h = stage(h)
            if f'stage{i}' in self.taps:
                feats[f'stage{i}'] = h.mean((2, 3))  # (B, C_i, H, W) -> (B, C_i)
        feats['penultimate'] = self.final(h).mean((2, 3))  # z: (B, D)
        return feats

    def forward(self, x):
        features = self.features(x)
        return Outputs(self.fc(self.dropout(features['penultimate'])), features)
