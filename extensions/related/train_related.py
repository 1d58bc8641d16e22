"""train.py with the related systems: python -m extensions.related.train_related [train.py options]

Every option of train.py, plus (README.md of this folder):
  --loss rll --rll-alpha α     the robust log loss instead of CE for the class (classloss.py)
  --limit --limit-beta β       LIMIT: g's gradient predicted from x alone (classloss.py)
  --tod                        turn-over dropout on z with a fixed mask per sample (tod.py)
  --unlearn confusion          f pushes the frozen random-label head toward uniform output
The run is train.py's (train.run, with the seams below: the network, the objective, batches that
carry each sample's dataset index, and turn-over dropout's numbers); its files and their
contracts are train.py's, and a --tod run adds DIR/self_influence.pt and self-influence numbers
to results.json. With none of these options it writes what train.py writes (test_related.py).

Confusion (Alvi, Zisserman & Nellåker 2018, "Turning a blind eye", the fair-AI method the seed
paper names as its inspiration): L_conf = -(1/K) Σ_k log p̂_k, the cross-entropy between the uniform
distribution and the frozen head's output, weighted by λ. It is smallest when the head cannot
tell the random labels apart (p̂ uniform, gradient 0) and, unlike gradient reversal or the output
regularizer, gives f no reward for making the head confidently wrong.
"""

import os

import torch
import torch.nn.functional as F

import data as data_lib
import plumbing
import train
from regularizer import random_label_losses

from . import classloss, tod


def build_parser():
    p = train.build_parser()
    p.prog = 'train_related'
    p.conflict_handler = 'resolve'  # --unlearn gains a choice: the option is redefined
    add = p.add_argument_group('related systems (extensions/related/README.md)').add_argument
    choices = ['none', 'grl', 'reg', 'confusion']
    add('--unlearn', default='none', choices=choices, help='unlearning term (confusion: Alvi 2018)')
    add('--loss', default='ce', choices=['ce', 'rll'], help='class loss (rll: Patel & Sastry 2021)')
    add('--rll-alpha', type=plumbing.POSITIVE, default=0.1, help='α of the robust log loss')
    add('--limit', action='store_true', help='LIMIT (Harutyunyan et al. 2020): predicted gradient')
    add('--limit-beta', type=plumbing.NONNEGATIVE, default=1.0, help="β, weight of LIMIT's β‖ĝ‖²")
    add('--tod', action='store_true', help='turn-over dropout on z (Kobayashi et al. 2020)')
    smoothing = '--label-smoothing smooths the cross-entropy target; use it with --loss ce'
    p.checks.append(lambda cfg: cfg.loss == 'rll' and cfg.label_smoothing > 0 and smoothing)
    limit = '--limit predicts the gradient of the cross-entropy; use it with --loss ce'
    p.checks.append(lambda cfg: cfg.limit and cfg.loss != 'ce' and limit)
    return p


def build_model(cfg, data, device):
    """train.py's network (the same initialization), plus LIMIT's q and the turn-over masks."""
    model = train.build_model(cfg, data, device)
    _, channels, size, _ = data.train_x.shape
    if cfg.limit:  # built after the network, whose initialization stays that of a plain run
        q = classloss.GradientPredictor(cfg.model, channels, data.num_classes, size)
        model.limit_q = q.to(device)
    if cfg.tod:  # masks over the whole training split, keyed by dataset index
        n_all = len(data.train_y) + len(data.heldout_y)
        model.tod = tod.TurnOverDropout(n_all, model.dims['penultimate'], cfg.seed).to(device)
    return model


def batches(cfg, data, device):
    """train.py's training batches with each sample's dataset index: (x, y, r, index)."""
    order = {'shuffle': True, 'augment': cfg.augment, 'drop_last': cfg.compile, 'seed': cfg.seed}
    labels = (data.train_y, data.train_r, data.train_index)
    x, bs = data.train_x, cfg.batch_size
    return data_lib.GpuLoader(x, labels, data.mean, data.std, bs, device, **order)


def objective(model, batch, lam, cfg):
    """regularizer.losses with the related systems: the class loss (CE, RLL or LIMIT), g reading z
    through the turn-over masks (training batches carry the index; evaluation ones do not), and
    confusion as an unlearning term."""
    x, y, r = batch[:3]
    index = batch[3] if cfg.tod and len(batch) > 3 else None
    features = model.features(x)
    logits = tod.classify(model, features['penultimate'], index)
    unlearn = 'none' if cfg.unlearn == 'confusion' else cfg.unlearn  # confusion: added below
    loss_rnd, loss_unlearn, rand_logits = random_label_losses(
        model.rand_heads, features, y, r, lam, unlearn, cfg.unlearn_taps, cfg.memorize
    )
    if cfg.unlearn == 'confusion':
        for tap, z in features.items():
            if cfg.unlearn_taps == 'all' or tap == 'penultimate':
                loss_unlearn = loss_unlearn + confusion_loss(
                    model.rand_heads[tap](z, y, frozen=True)
                )
    loss_q = torch.zeros((), device=x.device)
    class_logits = logits
    if cfg.limit:  # the classifier's gradient becomes the one q predicts from x alone
        class_logits, loss_q = classloss.limit(
            logits, model.limit_q(x), y, cfg.limit_beta, cfg.label_smoothing
        )
    if cfg.loss == 'rll':
        loss_class = classloss.robust_log_loss(class_logits, y, cfg.rll_alpha)
    else:
        loss_class = F.cross_entropy(class_logits.float(), y, label_smoothing=cfg.label_smoothing)
    weighted = lam * loss_unlearn if cfg.unlearn in ('reg', 'confusion') else 0
    total = loss_class + loss_rnd + loss_q + weighted
    terms = {'class': loss_class, 'rnd': loss_rnd, 'unlearn': loss_unlearn, 'total': total}
    return terms, logits, rand_logits


def confusion_loss(logits):
    """L_conf = mean_i -(1/K) Σ_k log p̂_{i,k} (Alvi et al. 2018). logits: (B, K), from the head
    with frozen parameters; its gradient p̂ - 1/K vanishes at a uniform head."""
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # (B, K), bf16 -> fp32
    return -torch.log_softmax(logits, 1).mean(1).mean()


# --- turn-over dropout's numbers ------------------------------------------------------------------


def extras(model, data, cfg, final):
    """After every epoch (and at the end): the mean self-influence of clean and noisy samples and
    their training accuracy through their own masks (who is fitted when; Liu, Lin & Jaggi 2021).
    At the end also every sample's self-influence and the test influence of hard and easy clean
    ones, in DIR/self_influence.pt."""
    if not cfg.tod:
        return {}
    device = next(model.parameters()).device
    in_order = (data.train_y, data.train_r, data.train_index)  # the training set, in order
    loader = data_lib.GpuLoader(data.train_x, in_order, data.mean, data.std, 1024, device)
    per_sample = tod.self_influence(model, loader)
    summary = tod.summarize(per_sample, data.train_noisy)
    if not final:
        return {k: summary[k] for k in ('self_influence', 'train_acc_clean', 'train_acc_noisy')}
    x, y, r = (t[: tod.TEST_INFLUENCE_MAX] for t in (data.test_x, data.test_y, data.test_r))
    test = data_lib.GpuLoader(x, (y, r), data.mean, data.std, 1024, device)
    index = per_sample['index']
    per_sample['test_influence'] = tod.test_influence(model, index, data.train_y, test)
    # control: every sample scored with another sample's mask (seeded permutation)
    permuted = index[torch.randperm(len(index), generator=torch.Generator().manual_seed(0))]
    per_sample['test_influence_control'] = tod.test_influence(model, permuted, data.train_y, test)
    per_sample.update(noisy=data.train_noisy, y=data.train_y)
    path = os.path.join(cfg.out, 'self_influence.pt')
    torch.save(per_sample, path + '.tmp')
    os.replace(path + '.tmp', path)
    return {
        'self_influence': summary['self_influence'],
        'self_influence_acc': tod.summarize(per_sample, data.train_noisy)['self_influence_acc'],
        'test_influence': tod.hard_and_easy(per_sample, data.train_noisy),
    }


SEAMS = train.Seams(build_model=build_model, objective=objective, batches=batches, extras=extras)


def main(argv=None):
    train.main(argv, build_parser(), SEAMS)


if __name__ == '__main__':
    main()
