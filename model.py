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

Taps of any network (for probe.py): named layers, taken with torchvision.models.feature_extraction
(a module's name means its last node; "penultimate" is the node run just before the last
nn.Linear: the classifier's input). Default taps, one rule: the stages are the model's top-level
child modules that hold layers with parameters (ResNet: layer1 ... layer4), in the order they run,
except the classifier's; a ModuleList counts as its entries, and where only one is found (a
`features` Sequential: VGG, MobileNet, ConvNeXt) its children with parameters instead. The taps
are every stage but the last (whose pooled output is about the penultimate), then the
penultimate: ResNet's layer1 layer2 layer3 penultimate, as Net taps its own backbones. Each tap
is pooled to (B, D) as Net pools its own: (B, C, H, W) maps by a global average pool (higher
ranks: over every dim after C), (B, T, D) token sequences by their mean over tokens (the
vision-transformer layout), (B, D) as is.

Two related systems live in the network (SPEC, "Related systems"): turn-over dropout on z in front
of g (`tod`, Kobayashi et al. 2020; tod.py), and LIMIT's gradient predictor q (`limit_q`,
Harutyunyan et al. 2020; classloss.py), a second network of the same architecture that reads x only.
"""

import copy
import warnings
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

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


# --- taps of any network (probe.py) ---------------------------------------------------------------


class TapError(ValueError):
    """A layer that cannot be tapped: probe.py turns it into one line and exit code 2."""


def layer_names(model):
    """The model's node names in the order they run (eval mode), as torchvision names them."""
    try:
        return get_graph_node_names(model, suppress_diff_warning=True)[1]
    except Exception as e:  # torch.fx cannot trace data-dependent Python control flow
        raise TapError(f'torch.fx cannot trace {type(model).__name__}: {e}') from None


def default_stages(model, names, classifier):
    """The stages of the module docstring's rule."""
    modules = dict(model.named_modules())

    def used_children(prefix):  # the direct children of `prefix`, in the order the graph runs them
        depth = prefix.count('.') + 1 if prefix else 0
        inside = [n for n in names if not prefix or n.startswith(prefix + '.')]
        children = dict.fromkeys('.'.join(n.split('.')[: depth + 1]) for n in inside)
        return [c for c in children if c in modules]

    def holds_layers(name):
        return any(has_parameters(c) for c in modules[name].children())

    stages = [c for c in used_children('') if c != classifier and holds_layers(c)]
    listed = [used_children(s) if isinstance(modules[s], nn.ModuleList) else [s] for s in stages]
    stages = [s for entries in listed for s in entries]
    if len(stages) == 1:
        stages = [c for c in used_children(stages[0]) if has_parameters(modules[c])]
    return stages[:-1]  # the last one pooled is about the penultimate, as in model.py


def has_parameters(module, recurse=True):
    return next(module.parameters(recurse), None) is not None


def resolve_layers(model, layers=None):
    """{tap name: node}: the named layers, or the default stages and the penultimate."""
    names = layer_names(model)
    modules = dict(model.named_modules())
    linear = [i for i, n in enumerate(names) if isinstance(modules.get(n), nn.Linear)]
    penultimate = names[linear[-1] - 1] if linear else None
    if layers is None:
        classifier = names[linear[-1]].split('.')[0] if linear else None
        layers = default_stages(model, names, classifier) + ['penultimate'] * bool(linear)
    taps = {layer: penultimate if layer == 'penultimate' else layer for layer in layers}
    for layer, node in taps.items():
        if node is None or not any(n == node or n.startswith(node + '.') for n in names):
            raise TapError(
                f'--layers {layer}: no such layer in {type(model).__name__}; see --list-layers'
            )
    if len(set(taps.values())) < len(layers):
        raise TapError(f'--layers {" ".join(layers)}: a layer named twice')
    return taps


def extractor(model, taps):
    """x -> {tap: activation} at the taps' nodes (torchvision's FX feature extraction)."""
    nodes = {node: tap for tap, node in taps.items()}
    return create_feature_extractor(model, nodes, suppress_diff_warning=True).eval()


def pool(z):
    """(B, D) features of a tap's activation, as the module docstring says."""
    if not torch.is_tensor(z) or z.dim() < 2:
        raise TapError('a tap gives no (batch, features...) tensor; name another with --layers')
    if z.dim() == 3:
        return z.mean(1)  # (B, T, D) -> (B, D): mean over tokens
    return z.mean(tuple(range(2, z.dim()))) if z.dim() > 3 else z  # (B, C, H, W) -> (B, C)


def reinitialized(model, seed=0):
    """The same architecture at a fresh initialization: a copy whose layers redraw their
    parameters with reset_parameters() under `seed` (PyTorch's default initialization, which may
    differ from the architecture's own). The caller's random number generator is left alone."""
    fresh = copy.deepcopy(model).cpu()
    kept = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name, m in fresh.named_modules():
            reset = getattr(m, 'reset_parameters', None) or getattr(m, '_reset_parameters', None)
            if reset is not None:
                reset()
            elif has_parameters(m, recurse=False):
                kept.append(name)
    if kept:
        message = f'the capacity floor keeps the trained {", ".join(kept)}; pass init_model'
        warnings.warn(message, stacklevel=3)
    return fresh.to(next(model.parameters()).device)
