"""report.py on a synthetic study folder: every section and figure, mean ± std over seeds,
diverged runs shown."""

import json
import os

import report

TAPS = ['stage1', 'stage2', 'penultimate']


def fake_result(seed, acc, rand, diverged=False):
    def per_tap(v):
        return {t: v for t in TAPS}

    epoch = {
        'epoch': 1,
        'lr': 0.1,
        'lam': 0.0,
        'loss_class': 1.0,
        'loss_rnd': 0.7,
        'loss_unlearn': 0.0,
        'train_acc': acc,
        'test_acc': acc,
        'rand_acc': per_tap(rand),
        'rand_acc_test': per_tap(0.5),
        'complexity': per_tap(2 * rand - 1),
        'seconds': 1.0,
        'images_per_s': 100.0,
    }
    result = {
        'config': {
            'seed': seed,
            'dataset': 'fake',
            'fake_like': 'cifar10',
            'model': 'cnn',
            'epochs': 1,
            'random_labels': 2,
            'rlp_head': 'per-class',
        },
        'env': {'torch': 'x', 'torchvision': 'y', 'device': 'cpu'},
        'history': [epoch],
        'data': {'n_train': 100, 'n_test': 50, 'num_classes': 10},
    }
    if diverged:
        return {
            **result,
            'status': 'diverged',
            'diverged': {'epoch': 1, 'reason': 'non-finite loss'},
            'final': None,
        }
    final = {
        **epoch,
        'gen_gap': 0.1,
        'rand_acc_ci': per_tap([rand - 0.05, rand + 0.05]),
        'head_capacity': {t: {'samples_per_head': 10, 'dim': 16, 'cover_2d': 32} for t in TAPS},
    }
    return {**result, 'status': 'done', 'final': final}


def write(folder, run, seed, result, probe=None):
    os.makedirs(folder / run / f'seed{seed}')
    with open(folder / run / f'seed{seed}' / 'results.json', 'w') as f:
        json.dump(result, f)
    if probe is not None:
        with open(folder / run / f'seed{seed}' / 'probe.json', 'w') as f:
            json.dump(probe, f)


def test_report_has_every_study_with_seeds_and_divergence(tmp_path):
    probe = {
        'status': 'done',
        'rand_acc': {t: 0.6 for t in TAPS},
        'rand_acc_test': {t: 0.5 for t in TAPS},
        'at_init': {'rand_acc': {t: 0.55 for t in TAPS}},
    }
    for seed, acc in ((0, 0.80), (1, 0.90)):
        write(tmp_path, 'none', seed, fake_result(seed, acc, 0.7), probe)
        for run in ('wd', 'dropout', 'augment', 'smoothing', 'all'):
            write(tmp_path, run, seed, fake_result(seed, acc, 0.7))
        write(tmp_path, 'grl-1', seed, fake_result(seed, acc, 0.45), probe)
        write(
            tmp_path,
            'reg-1000',
            seed,
            fake_result(seed, acc, 0.5, diverged=True),
            {'status': 'diverged'},
        )
    report.report(str(tmp_path))
    text = (tmp_path / 'report.md').read_text()
    for heading in (
        '1. Memorization during training',
        '2. Regularizers',
        '3. Where memorization lives',
        '4a. Unlearning with `--unlearn grl`',
        '4b. Unlearning with `--unlearn reg`',
    ):
        assert heading in text
    assert '85.0% ± 7.1 (n=2)' in text  # test accuracy, mean ± std over the two seeds
    assert '**diverged** in epoch 1 (2/2 seeds)' in text and 'seeds [0, 1] (n=2)' in text
    for figure in (
        'training.png',
        'regularizers.png',
        'depth.png',
        'unlearning-grl.png',
        'unlearning-reg.png',
    ):
        assert (tmp_path / figure).stat().st_size > 10_000 and f'({figure})' in text
