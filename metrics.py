"""The memorization metric: random-label accuracy, chance-corrected complexity, intervals, and a
post-hoc probe.

Random-label accuracy a = (1/n) Σ_i [argmax_k h(z_i)_k = r_i] on the *training* set (Becker & Risse
2024, the method), in eval mode without augmentation. Chance is 1/K, so we report the
chance-corrected complexity
    ĉ = (a - 1/K) / (1 - 1/K),
0 at chance and 1 for perfect memorization. For K = 2 it is 2a - 1 = (1/n) Σ_i σ_i s_i with σ_i = ±1
the random label and s_i = ±1 the head's prediction: the empirical Rademacher correlation of the
trained head (our reading of the workshop paper, not its formula). The 95% interval is Wilson's
score interval for a binomial proportion. On held-out test samples the same heads must sit at 1/K
(the chance check).

Post-hoc probe (our addition): freeze a trained network, fit fresh heads on each tap's features of
the training set until the fit stops improving, and report the same numbers. It works on any
checkpoint, and it tells removal from hiding: after unlearning, the online head may lag the moving
features while a fresh head can still read r from them. The same probe on the run's network at
initialization (`at_init`) measures what head capacity alone reads from features that learned
nothing: the floor to compare with.

Usage: python metrics.py probe RUN_DIR  (writes RUN_DIR/probe.json)

Capacity caveat (Cover 1965): a linear head on D features fits about 2D random binary labels
whatever the network memorized, so every accuracy is reported with the samples per head and D.
"""

import json
import math
import os
import sys

import torch

from model import RandomLabelHead
from regularizer import losses


def complexity(acc, K):
    """ĉ = (a - 1/K) / (1 - 1/K); for K = 2 this is 2a - 1."""
    return (acc - 1 / K) / (1 - 1 / K)


def wilson_interval(acc, n, z=1.96):
    """95% Wilson score interval of a binomial proportion acc observed on n samples."""
    if n == 0:
        return [0.0, 1.0]
    center = (acc + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(acc * (1 - acc) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, center - half), min(1.0, center + half)]


def autocast(device, bf16=True):
    """bf16 autocast on CUDA, fp32 on CPU.

    What bf16 buys: tensor-core matmuls, half the activation bytes.
    """
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16 and device.type == 'cuda')


@torch.no_grad()
def evaluate(model, loader, cfg):
    """One full pass in eval mode: mean loss terms, class accuracy and random-label accuracy per
    tap. Sums stay on the device and are read once at the end."""
    model.eval()
    sums, n = None, 0
    for x, y, r in loader:
        with autocast(x.device, cfg.bf16):
            terms, logits, rand_logits = losses(
                model, x, y, r, cfg.unlearn, cfg.lam, cfg.unlearn_taps, cfg.label_smoothing
            )
        batch = {f'loss_{k}': v * len(y) for k, v in terms.items() if k != 'total'}
        batch['acc'] = (logits.argmax(1) == y).sum()
        batch.update(
            {
                f'rand/{t}': (head_logits.argmax(1) == r).sum()
                for t, head_logits in rand_logits.items()
            }
        )
        sums = batch if sums is None else {k: sums[k] + v for k, v in batch.items()}
        n += len(y)
    model.train()
    values = {k: v.item() / n for k, v in sums.items()}
    return {
        'loss_class': values['loss_class'],
        'loss_rnd': values['loss_rnd'],
        'loss_unlearn': values['loss_unlearn'],
        'acc': values['acc'],
        'rand_acc': {k[5:]: v for k, v in values.items() if k.startswith('rand/')},
        'n': n,
    }


@torch.no_grad()
def extract_features(model, loader):
    """Every tap's pooled features over the loader (eval mode, fp32).

    Returns them with the class and random labels.
    """
    model.eval()
    feats, ys, rs = {}, [], []
    for x, y, r in loader:
        with autocast(x.device, bf16=False):
            for tap, z in model(x).features.items():
                feats.setdefault(tap, []).append(z.float())
        ys.append(y)
        rs.append(r)
    return {t: torch.cat(v) for t, v in feats.items()}, torch.cat(ys), torch.cat(rs)


def fit_probe(z, y, r, num_classes, K, layout, max_steps=2000, patience=100, lr=1e-2):
    """Fit a fresh head on frozen features z (N, D) by full-batch Adam until the training
    random-label accuracy has not improved for `patience` steps. Returns the head, the feature
    scaling and the steps."""
    mean, std = z.mean(0), z.std(0) + 1e-6  # standardize: one learning rate suits every tap
    zs = (z - mean) / std
    # the same initial head every time, the caller's RNG untouched
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        head = RandomLabelHead(z.shape[1], num_classes, K, layout)
    head = head.to(z.device)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    best, best_step, step = -1.0, 0, 0
    for step in range(max_steps):
        logits = head(zs, y)
        acc = (logits.argmax(1) == r).float().mean().item()  # one sync per step: tiny problem, fine
        if acc > best:
            best, best_step = acc, step
        elif step - best_step >= patience:
            break
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(logits, r).backward()
        opt.step()
    return head, (mean, std), step + 1


def probe(model, train_loader, test_loader, num_classes, K, layout):
    """Post-hoc probe of a frozen network.

    Per tap: fresh-head random-label accuracy on train and test.
    """
    z_train, y_train, r_train = extract_features(model, train_loader)
    z_test, y_test, r_test = extract_features(model, test_loader)
    result = {k: {} for k in ('rand_acc', 'rand_acc_test', 'complexity', 'rand_acc_ci', 'steps')}
    for tap in z_train:
        head, (mean, std), steps = fit_probe(z_train[tap], y_train, r_train, num_classes, K, layout)
        with torch.no_grad():
            acc = (
                (head((z_train[tap] - mean) / std, y_train).argmax(1) == r_train)
                .float()
                .mean()
                .item()
            )
            acc_test = (
                (head((z_test[tap] - mean) / std, y_test).argmax(1) == r_test).float().mean().item()
            )
        result['rand_acc'][tap], result['rand_acc_test'][tap] = acc, acc_test
        result['complexity'][tap] = complexity(acc, K)
        result['rand_acc_ci'][tap] = wilson_interval(acc, len(r_train))
        result['steps'][tap] = steps
    return result


def probe_run(run_dir):
    """Probe the final checkpoint of a finished run and write RUN_DIR/probe.json atomically."""
    import train  # here, not at the top: train.py imports this module

    with open(os.path.join(run_dir, 'results.json')) as f:
        results = json.load(f)
    if results['status'] != 'done':
        out = {'status': results['status']}  # a diverged network has nothing left to probe
    else:
        cfg = train.build_parser().parse_args([])  # defaults for options newer than the run
        vars(cfg).update(results['config'], device='auto')  # probe wherever we are
        data, model, device = train.setup(cfg)  # seeded: the very network the run started from
        train_loader, test_loader = train.eval_loaders(data, cfg, device)
        args = (train_loader, test_loader, data.num_classes, cfg.random_labels, cfg.rlp_head)
        # capacity control: what a fresh head reads from features that learned nothing
        at_init = probe(model, *args)
        model.load_state_dict(
            torch.load(os.path.join(run_dir, 'checkpoint.pt'), map_location=device)['model']
        )
        out = {'status': 'done', **probe(model, *args), 'at_init': at_init}
    train.write_json(os.path.join(run_dir, 'probe.json'), out)
    return out


if __name__ == '__main__':
    if (
        len(sys.argv) != 3
        or sys.argv[1] != 'probe'
        or not os.path.exists(os.path.join(sys.argv[2], 'results.json'))
    ):
        print(
            "usage: python metrics.py probe RUN_DIR  (RUN_DIR holds a finished run's results.json)",
            file=sys.stderr,
        )
        sys.exit(2)
    result = probe_run(sys.argv[2])
    print(
        json.dumps(
            {k: result[k] for k in ('rand_acc', 'rand_acc_test')}
            if result['status'] == 'done'
            else result
        )
    )
