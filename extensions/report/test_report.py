"""report.py on synthetic study folders: every section and figure with the controls beside every
number, intervals over seeds, sentences computed from the intervals, tables that render, diverged
and collapsed runs marked, and bad or incomplete folders refused with one line and exit code 2."""

import json
import os

import pytest
from conftest import markdown_tables_are_whole

import train
from extensions.report import markdown, report

TAPS = ['stage1', 'stage2', 'penultimate']
BASE = vars(train.build_parser().parse_args([])) | {
    'dataset': 'fake',
    'epochs': 1,
    'batch_size': 64,
    'lr': 0.1,
    'rlp_head': 'shared',
    'weight_decay': 0.0,
    'augment': False,
}


def fake_result(seed, acc, rand, diverged=False, **config):
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
        'config': {**BASE, 'seed': seed, 'label_seed': seed, **config},
        'env': {'torch': 'x', 'torchvision': 'y', 'device': 'cpu'},
        'history': [epoch],
        'data': {'n_train': 100, 'n_test': 50, 'num_classes': 10},
    }
    if diverged:
        reason = {'epoch': 1, 'reason': 'non-finite loss'}
        return {**result, 'status': 'diverged', 'diverged': reason, 'final': None}
    final = {
        **epoch,
        'gen_gap': 0.1,
        'rand_acc_ci': per_tap([rand - 0.05, rand + 0.05]),
        'head_capacity': {t: {'samples_per_head': 100, 'dim': 16, 'cover': 32} for t in TAPS},
    }
    return {**result, 'status': 'done', 'final': final}


def fake_probe(m, se=0.01, specific=0.0, trained=0.0):
    tap = {
        'dim': 16,
        'samples_per_head': 100,
        'a_train': 0.6 + m + specific,
        'a_fresh': 0.6 + m,
        'a_heldout': 0.6,
        'a_init': 0.6 + m - trained,
        'trained': trained,
        'trained_se': se,
        'trained_ci': [trained - 2 * se, trained + 2 * se],
        'memorization': m,
        'memorization_ci': [m - 2 * se, m + 2 * se],
        'memorization_se': se,
        'specific': specific,
        'specific_se': 2 * se,
        'specific_ci': [specific - 4 * se, specific + 4 * se],
        'online': 0.55,
        'steps': 50,
        'converged': True,
    }
    taps = {t: dict(tap) for t in TAPS}
    return {'status': 'done', 'n': 100, 'draws': 16, 'commit': 'abc', 'taps': taps}


def write(folder, run, seed, result, probe=None):
    os.makedirs(folder / run / f'seed{seed}')
    with open(folder / run / f'seed{seed}' / 'results.json', 'w') as f:
        json.dump(result, f)
    if probe is not None:
        with open(folder / run / f'seed{seed}' / 'probe.json', 'w') as f:
            json.dump(probe, f)


def study(folder, seeds=(0, 1)):
    for seed, acc in zip(seeds, (0.80, 0.90), strict=False):
        d = 0.005 * (2 * seed - 1)  # the networks differ a little
        write(folder, 'none', seed, fake_result(seed, acc, 0.7), fake_probe(d))
        for run, flag in (('wd', {'weight_decay': 5e-4}), ('dropout', {'dropout': 0.3})):
            write(folder, run, seed, fake_result(seed, acc, 0.7, **flag), fake_probe(0.001 + d))
        write(folder, 'all', seed, fake_result(seed, acc, 0.7, augment=True), fake_probe(d))
        memorize = fake_result(seed, acc, 0.95, memorize=True)
        write(folder, 'memorize', seed, memorize, fake_probe(d, specific=0.3 + d))
        grl = fake_result(seed, acc, 0.45, unlearn='grl')
        write(folder, 'grl-1', seed, grl, fake_probe(d, se=0.002, specific=0.08 + d))
        reg = fake_result(seed, acc, 0.5, diverged=True, unlearn='reg', lam=1000.0)
        write(folder, 'reg-1000', seed, reg, {'status': 'diverged'})
        reg = fake_result(seed, 0.1, 0.5, unlearn='reg', lam=100.0)  # collapsed
        write(folder, 'reg-100', seed, reg, fake_probe(0.0))


def test_report_has_every_study_with_controls_seeds_and_divergence(tmp_path):
    study(tmp_path)
    report.report(str(tmp_path))
    text = (tmp_path / 'report.md').read_text()
    for heading in (
        '1. Memorization during training',
        '2. Regularizers',
        '3. Where memorization lives',
        '4a. Unlearning with `--unlearn grl`',
        '4b. Unlearning with `--unlearn reg`',
        '5. Positive control',
    ):
        assert heading in text
    assert text.count('**What it shows.**') == 6  # every section ends with its sentence
    assert 'a_fresh' in text and 'a_heldout' in text and 'a_init' in text and 'm [95%]' in text
    assert '85.0 ± 7.1 (n=2)' in text  # test accuracy, mean ± std over the two seeds
    assert '**diverged** in epoch 1 (2/2 seeds)' in text and 'seeds [0, 1] (n=2' in text
    assert '**collapsed**' in text  # class accuracy at chance is not "done"
    assert 'm holds 0 for 4 of 4 settings' in text
    assert 'm lies within [' in text and '2 networks, a random-effects' in text  # bounds
    assert 'r is in the features, and a fresh head finds it' in text  # the positive control
    assert 'wrote r into the features' in text  # grl-1: online head low, a_train - a_fresh > 0
    assert markdown_tables_are_whole(text) == []
    for figure in ('training.png', 'regularizers.png', 'depth.png', 'unlearning-grl.png'):
        assert (tmp_path / figure).stat().st_size > 10_000 and f'({figure})' in text


def test_sentences_from_intervals_that_hold_0_claim_no_equality(tmp_path):
    """Every interval of this study holds 0 (no run trained on r, no unlearning lit up): each
    section's sentence gives bounds and what would have been detected, never that two numbers are
    equal or an effect absent (markdown.EQUALITY_WORDS)."""
    for seed in (0, 1):
        d = 0.004 * (2 * seed - 1)
        for run, flag in (
            ('none', {}),
            ('wd', {'weight_decay': 5e-4}),
            ('grl-1', {'unlearn': 'grl'}),
        ):
            write(
                tmp_path, run, seed, fake_result(seed, 0.8, 0.6, **flag), fake_probe(d, 0.02, d, d)
            )
        memorize = fake_result(seed, 0.8, 0.6, memorize=True)
        write(tmp_path, 'memorize', seed, memorize, fake_probe(d, 0.02, d, d))
    report.report(str(tmp_path))
    sentences = [p for p in (tmp_path / 'report.md').read_text().split('\n\n') if 'What it' in p]
    assert len(sentences) == 5 and all('would have been detected' in p for p in sentences)
    for paragraph in sentences:
        found = [w for w in markdown.EQUALITY_WORDS if w in paragraph.lower()]
        assert not found, (found, paragraph)
    estimate = {'mean': 0.001, 'ci': [-0.01, 0.012], 'se': 0.005, 'n': 4}
    assert markdown.bounded('m', estimate).startswith('m lies within [-1.0, +1.2] points; an ')


def test_seeds_option_keeps_only_those_seeds(tmp_path):
    study(tmp_path)
    report.report(str(tmp_path), seeds=[1])
    assert 'seeds [1] (n=1' in (tmp_path / 'report.md').read_text()


def assert_one_line_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        report.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count('\n') == 1 and err.startswith('report: error: '), err
    return err


def test_bad_folders_are_one_line_and_exit_2(tmp_path, capsys):
    assert 'not a folder' in assert_one_line_exit_2([str(tmp_path / 'missing')], capsys)
    (tmp_path / 'empty').mkdir()
    assert 'no finished runs' in assert_one_line_exit_2([str(tmp_path / 'empty')], capsys)
    study(tmp_path / 'study')
    run_folder = tmp_path / 'study' / 'none' / 'seed0'
    assert 'one run' in assert_one_line_exit_2([str(run_folder)], capsys)
    wd = fake_result(0, 0.8, 0.7, weight_decay=5e-4)
    write(tmp_path / 'no-none', 'wd', 0, wd, fake_probe(0.0))
    assert '"none"' in assert_one_line_exit_2([str(tmp_path / 'no-none')], capsys)
    write(tmp_path / 'bad-none', 'none', 0, fake_result(0, 0.8, 0.7, diverged=True))
    assert 'diverged' in assert_one_line_exit_2([str(tmp_path / 'bad-none')], capsys)


def test_a_folder_mixing_configurations_is_refused_naming_the_option(tmp_path, capsys):
    write(tmp_path, 'none', 0, fake_result(0, 0.8, 0.7), fake_probe(0.0))
    reg = fake_result(0, 0.8, 0.7, unlearn='reg', epochs=12)
    write(tmp_path, 'reg-1', 0, reg, fake_probe(0.0))
    err = assert_one_line_exit_2([str(tmp_path)], capsys)
    assert '--epochs' in err and '1 vs 12' in err


def test_incomplete_runs_are_refused_not_filled_in(tmp_path, capsys):
    """A run written by an older train.py (an option missing from its config) and a finished
    run without its controls make the report stop with one line, naming the run."""
    study(tmp_path / 'old')
    path = tmp_path / 'old' / 'wd' / 'seed1' / 'results.json'
    result = json.loads(path.read_text())
    del result['config']['probe']
    path.write_text(json.dumps(result))
    assert '--probe' in assert_one_line_exit_2([str(tmp_path / 'old')], capsys)
    study(tmp_path / 'unprobed')
    os.remove(tmp_path / 'unprobed' / 'dropout' / 'seed0' / 'probe.json')
    err = assert_one_line_exit_2([str(tmp_path / 'unprobed')], capsys)
    assert 'dropout' in err and 'probe.json' in err


def test_a_table_with_a_blank_line_inside_is_caught():
    """The check the reports' tests use: it must fail on what validate.py once wrote."""
    good = markdown.table(['a', 'b'], [[1, 2], [3, 4]])
    assert markdown_tables_are_whole(good) == []
    assert markdown_tables_are_whole(good.replace('\n', '\n\n')) != []
    assert markdown_tables_are_whole('| a | b |\n| 1 | 2 |') != []  # no delimiter row
