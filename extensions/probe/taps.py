"""Taps of any network: named layers, found and pooled as model.py taps its own backbones.

Layers are nodes of torchvision.models.feature_extraction (a module's name means its last node;
"penultimate" is the node run just before the last nn.Linear: the classifier's input). Default
taps, one rule: the stages are the model's top-level child modules that hold layers with
parameters (ResNet: layer1 ... layer4), in the order they run, except the classifier's; a
ModuleList counts as its entries, and where only one is found (a `features` Sequential: VGG,
MobileNet, ConvNeXt) its children with parameters instead. The taps are every stage but the last
(whose pooled output is about the penultimate), then the penultimate: ResNet's layer1 layer2
layer3 penultimate, as model.Net taps its own backbones. Each tap is pooled to (B, D) as model.Net
pools its own: (B, C, H, W) maps by a global average pool (higher ranks: over every dim after C),
(B, T, D) token sequences by their mean over tokens (the vision-transformer layout), (B, D) as is.
"""

import copy
import warnings

import torch
import torch.nn as nn
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names


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
