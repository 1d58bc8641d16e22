"""The positive control for m: training features that differ from held-out ones in a known way.

In metric mode f never sees r, so m = a_fresh - a_heldout can only carry a difference between the
geometry of training and held-out features. To know which differences m can see, this control
takes the penultimate features of trained networks and changes the *training* side only, by a
known amount (the strength), without any random label:
  rank       k = strength · D extra feature dimensions (Gaussian) that only training samples have:
             more room for any labels, as memorization could make;
  embedding  a per-sample vector e_i added to z_i and learned through the network's frozen class
             head g, so that g(z_i + strength · e_i) fits class labels of which EMBED_NOISE were
             replaced at random: memorization of noisy labels through a path only training samples
             have (the design of Feldman & Zhang's memorized samples, made explicit).
m is measured exactly as train.py measures it (metrics.controls), on n training and n held-out
samples per network, and combined over the networks.
"""

import statistics

import torch
import torch.nn.functional as F

from metrics import controls, tap_features

from .pools import over_pools

STRENGTHS = [0.0, 0.25, 0.5, 1.0]
EMBED_NOISE = 0.25  # the share of training labels the embedding is made to memorize
N = 1000  # samples a side
TAP = 'penultimate'


def penultimate(model, data, n, generator, device):
    """(z, y) of n training and of n held-out samples, each side a seeded random n."""
    sides = []
    for x, y in ((data.train_x, data.train_y), (data.heldout_x, data.heldout_y)):
        keep = torch.randperm(len(y), generator=generator)[:n]
        z = tap_features(model, x[keep], data.mean, data.std, device)[TAP]
        sides.append((z, y[keep].to(device)))
    return sides


def learn_embedding(z, y, fc, num_classes, generator, steps=300):
    """e (n, D), learned with g frozen so that g(z + e) fits the relabeled labels, with the mask
    of samples whose label changed, and the labels. Full-batch gradient descent keeps e in the span
    of g's weights, where a class head puts what it memorizes."""
    relabel = (torch.rand(len(y), generator=generator) < EMBED_NOISE).to(z.device)
    new = torch.randint(num_classes, y.shape, generator=generator).to(z.device)
    y_noisy = torch.where(relabel, new, y)
    e = torch.zeros_like(z, requires_grad=True)
    opt = torch.optim.SGD([e], lr=10.0, momentum=0.9)
    weight, bias = fc.weight.detach(), fc.bias.detach()
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(F.linear(z + e, weight, bias), y_noisy).backward()
        opt.step()
    return e.detach(), y_noisy != y, y_noisy


def one_network(model, data, seed, device):
    """{(design, strength): (controls at the penultimate tap, relabeled share fitted or None)}."""
    g = torch.Generator().manual_seed(seed)
    n = min(len(data.train_y), len(data.heldout_y), N)
    (z, y), (z_held, y_held) = penultimate(model, data, n, g, device)
    e, changed, y_noisy = learn_embedding(z, y, model.fc, data.num_classes, g)
    out = {}
    for s in STRENGTHS:
        k = round(s * z.shape[1])
        extra = z.std() * torch.randn(n, k, generator=g).to(device)
        variants = {
            'rank': (torch.cat([z, extra], 1), torch.cat([z_held, torch.zeros_like(extra)], 1)),
            'embedding': (z + s * e, z_held),
        }
        for design, (train_z, held_z) in variants.items():
            r = torch.randint(2, (n,), generator=g).to(device)  # no network ever saw these
            train, held = (train_z, y, r), (held_z, y_held, r)
            found = controls(train, held, train, 2, data.num_classes, 'shared', seed=seed)
            fitted = None
            if design == 'embedding':
                with torch.no_grad():
                    guess = model.fc(train_z).argmax(1)
                fitted = (guess == y_noisy)[changed].float().mean().item()
            out[design, s] = found, fitted
    return out


def feature_control(networks, device, pools):
    """networks: [(model, data)], pools: the pool of each. Returns [{design, strength, fitted,
    taps: {penultimate: ...}}], m combined over the pools (pools.over_pools)."""
    points = {}
    for i, (model, data) in enumerate(networks):
        for key, value in one_network(model, data, 100 + i, device).items():
            points.setdefault(key, []).append(value)
    out = []
    for (design, s), rows in points.items():
        found = [f for f, _ in rows]
        m = over_pools(
            [f['memorization'] for f in found], [f['memorization_se'] for f in found], pools
        )
        tap = {k: statistics.mean(f[k] for f in found) for k in ('a_train', 'a_fresh', 'a_heldout')}
        tap |= {'a_init': None, 'memorization': m['mean'], 'memorization_ci': m['ci']}
        fitted = [f for _, f in rows if f is not None]
        entry = {'design': design, 'strength': s, 'taps': {TAP: tap | {'memorization_est': m}}}
        out.append(entry | {'fitted': statistics.mean(fitted) if fitted else None})
    return out
