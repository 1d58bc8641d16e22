"""Turn-over dropout: every training sample's influence, from one training run.

Kobayashi, Yokoi, Suzuki & Inui 2020 ("Efficient Estimation of Influence of a Training Instance"):
every training sample i gets one fixed binary dropout mask m(i) in {0, 1}^D (each unit kept with
p = 1/2, kept units scaled by 1/p = 2), drawn once and keyed by the sample's dataset index, so
sample i only ever trains the sub-network m(i), and the flipped mask 1 - m(i) selects a
sub-network that never saw it. The influence of training sample i on a sample t is
    I(i, t) = L(t; 1 - m(i)) - L(t; m(i))        (L: cross-entropy on t's label),
positive when seeing i lowered t's loss. The self-influence I(i, i) is how much the network
needed to see i to fit it: Liu, Lin & Jaggi 2021 ("Understanding memorization from the perspective
of optimization via efficient influence estimation") read it as memorization, high for mislabelled
and atypical samples. The accuracy form is [correct under m(i)] - [correct under 1 - m(i)].
A forward pass without an index uses no mask (the mask's expectation is 1).

Where the mask sits (this project's choice, README.md of this folder): on z, the penultimate
feature, in front of the task head g. Kobayashi et al. put turn-over dropout after hidden layers
throughout the network. With the mask on z only, i trains g through the units of m(i) alone, but
the backbone f below z is shared by both sub-networks: what i taught f reaches the flipped
sub-network too, so this measures the part of i's influence that lives in g and in the masked
units of z.

Masks come from a CPU generator seeded by `--seed` + MASK_SEED_OFFSET over the whole training split
(N_all rows), so a sample keeps its mask whatever --subset and --half select, on any device.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

KEEP = 0.5  # p, the probability that a unit is in m(i)
MASK_SEED_OFFSET = 10_000  # masks never share a random stream with the initialization
TEST_INFLUENCE_MAX = 1000  # test samples scored against every training mask (cost N_train x this)


def classify(model, z, index=None, flip=False):
    """g's logits (B, C) from z through each sample's mask m(i) (or its flip 1 - m(i)), as the
    related trainer computes them; without an index, no mask."""
    if index is not None:
        z = model.tod(z, index, flip)
    return model.fc(model.dropout(z))


class TurnOverDropout(nn.Module):
    """z -> z * m(i) / p for the sample with dataset index i (or its flip 1 - m(i)); identity
    without an index."""

    def __init__(self, num_samples, dim, seed):
        super().__init__()
        g = torch.Generator().manual_seed(seed + MASK_SEED_OFFSET)
        masks = torch.rand(num_samples, dim, generator=g) < KEEP  # (N_all, D) bool
        # derived from the seed, so not saved in checkpoints; moves with the model to its device
        self.register_buffer('masks', masks, persistent=False)

    def forward(self, z, index=None, flip=False):
        if index is None:
            return z
        m = self.masks[index]  # (B, D): each sample's own mask
        if flip:
            m = ~m
        return z * m.to(z.dtype) / KEEP


@torch.no_grad()
def self_influence(model, loader):
    """Per training sample: loss and correctness on its (possibly noisy) label under its own mask
    m(i) and under the flipped mask 1 - m(i), eval mode; CPU tensors in the loader's order."""
    model.eval()
    rows = {k: [] for k in ('index', 'loss_in', 'loss_out', 'correct_in', 'correct_out')}
    for x, y, _r, index in loader:  # a loader of (x, y, r, dataset index)
        z = model.features(x)['penultimate'].float()  # (B, D)
        for side, flip in (('in', False), ('out', True)):
            logits = classify(model, z, index, flip=flip).float()  # (B, C)
            rows[f'loss_{side}'].append(F.cross_entropy(logits, y, reduction='none'))
            rows[f'correct_{side}'].append(logits.argmax(1) == y)
        rows['index'].append(index)
    model.train()
    out = {k: torch.cat(v).cpu() for k, v in rows.items()}
    out['self_influence'] = out['loss_out'] - out['loss_in']  # I(i, i), loss form
    return out


@torch.no_grad()
def test_influence(model, index, y, test_loader, chunk=1 << 16):
    """I(i, t) averaged over the test samples t of i's class: (N,) for training samples with
    dataset indices `index` and labels y; NaN where the class has no test sample.

    Positive: seeing i lowered the test loss of its class. Only z changes with the mask, so the
    test features are computed once and every training mask is applied to them.
    """
    model.eval()
    z_test, test_y = [], []
    for x, y_t, _r in test_loader:
        z_test.append(model.features(x)['penultimate'].float())
        test_y.append(y_t)
    z_test, test_y = torch.cat(z_test), torch.cat(test_y)  # (T, D), (T,)
    index, y = index.to(z_test.device), y.to(z_test.device)
    result = torch.full((len(index),), float('nan'))
    for c in y.unique().tolist():
        rows = (y == c).nonzero()[:, 0]  # training samples of class c
        z_c = z_test[test_y == c]  # (T_c, D)
        if len(z_c) == 0:
            continue
        per_chunk = max(1, chunk // len(z_c))
        for start in range(0, len(rows), per_chunk):
            block = rows[start : start + per_chunk]  # (b,)
            idx = index[block].repeat_interleave(len(z_c))  # (b * T_c,)
            z = z_c.repeat(len(block), 1)  # (b * T_c, D): every test sample under every mask
            target = torch.full((len(z),), c, device=z.device)
            losses = [
                F.cross_entropy(classify(model, z, idx, flip=f).float(), target, reduction='none')
                for f in (False, True)
            ]
            influence = (losses[1] - losses[0]).view(len(block), len(z_c))  # (b, T_c)
            result[block.cpu()] = influence.mean(1).cpu()
    model.train()
    return result


def mean_or_none(values):
    return values.float().mean().item() if len(values) else None


def standard_error(values):
    return (values.float().std() / len(values) ** 0.5).item() if len(values) > 1 else None


def summarize(per_sample, noisy):
    """Means over clean and noisy samples (None where there are none), for results.json."""
    influence = per_sample['self_influence']
    accuracy = per_sample['correct_in'].float() - per_sample['correct_out'].float()
    return {
        'self_influence': {
            'clean': mean_or_none(influence[~noisy]),
            'noisy': mean_or_none(influence[noisy]),
        },
        'self_influence_acc': {
            'clean': mean_or_none(accuracy[~noisy]),
            'noisy': mean_or_none(accuracy[noisy]),
        },
        'train_acc_clean': mean_or_none(per_sample['correct_in'][~noisy]),
        'train_acc_noisy': mean_or_none(per_sample['correct_in'][noisy]),
    }


def hard_and_easy(per_sample, noisy, quantile=0.25):
    """Test influence of hard and easy correctly labelled samples (Liu, Lin & Jaggi 2021 find that
    hard, correctly labelled samples influence test samples more), with a control.

    Difficulty of clean sample i: (L(m(i)) + L(1 - m(i))) / 2, its loss averaged over its two
    sub-networks; hard and easy are the top and bottom `quantile` of the clean samples. Ranking by
    self-influence instead would pick the samples whose mask happens to select the better half of
    z, and that mask would then also look good on the test set. Control: the same groups scored
    with permuted masks (per_sample['test_influence_control']): any difference left there is not
    the samples' own influence.
    """
    clean = ~noisy & ~per_sample['test_influence'].isnan()
    difficulty = (per_sample['loss_in'] + per_sample['loss_out'])[clean] / 2
    if len(difficulty) < 8:
        return None
    order = difficulty.argsort()
    k = max(1, int(quantile * len(order)))
    out = {'n_per_group': k, 'quantile': quantile}
    for key, name in (('test_influence', ''), ('test_influence_control', 'control_')):
        on_test = per_sample[key][clean]
        for group, rows in (('hard', order[-k:]), ('easy', order[:k])):
            values = on_test[rows]
            values = values[~values.isnan()]
            out[f'{name}{group}'] = mean_or_none(values)
            out[f'{name}{group}_se'] = standard_error(values)
    return out
