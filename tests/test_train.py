"""End to end on the CPU: the online heads, unlearning, the chance check, reproducibility, resume
and divergence. (Whether a number is memorization is tested against its controls in test_probe.)"""

import math

import pytest
from conftest import interrupt_in_epoch_two, run_train, without_timings

import probe

CHANCE_3SIGMA = 3 * math.sqrt(0.25 / 512)  # the 512 held-out samples of TINY, K = 2


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('runs')
    return {
        name: run_train(root / name, '--epochs', '20', *args)
        for name, args in {
            'none': ['--taps', 'all'],
            'reg': ['--unlearn', 'reg', '--lam', '1'],
            'grl': ['--unlearn', 'grl', '--lam', '1'],
        }.items()
    }


def test_fake_data_has_learnable_classes(runs):
    assert runs['none']['final']['test_acc'] > 0.6  # chance is 0.1


def test_online_head_fits_more_random_labels_as_training_goes_on(runs):
    """The papers' number rises during training. With 51 samples per head against 2D = 128 this is
    the head's capacity at work, not memorization: test_probe tells the two apart."""
    history = runs['none']['history']
    assert history[0]['rand_acc']['penultimate'] < 0.56
    assert runs['none']['final']['rand_acc']['penultimate'] > 0.6
    assert runs['none']['final']['rand_acc_ci']['penultimate'][0] > 0.5  # excludes chance


def test_held_out_random_labels_sit_at_chance(runs):
    for name, results in runs.items():
        for tap, acc in results['final']['rand_acc_test'].items():
            assert abs(acc - 0.5) < CHANCE_3SIGMA, (name, tap, acc)


@pytest.mark.parametrize('mechanism', ['reg', 'grl'])
def test_unlearning_drives_the_online_head_below_its_fit_and_keeps_test_accuracy(runs, mechanism):
    base, unlearned = runs['none']['final'], runs[mechanism]['final']
    assert unlearned['rand_acc']['penultimate'] < base['rand_acc']['penultimate'] - 0.1
    assert unlearned['rand_acc']['penultimate'] < 0.53
    assert abs(unlearned['test_acc'] - base['test_acc']) < 0.05


def test_results_follow_the_contract(runs):
    r = runs['none']
    assert r['status'] == 'done' and set(r['env']) >= {'torch', 'torchvision', 'device'}
    assert set(r['config']) >= {
        'dataset',
        'model',
        'epochs',
        'lam',
        'unlearn',
        'taps',
        'rlp_head',
        'random_labels',
    }
    keys = {
        'epoch',
        'lr',
        'lam',
        'loss_class',
        'loss_rnd',
        'loss_unlearn',
        'train_acc',
        'test_acc',
        'rand_acc',
        'rand_acc_test',
        'complexity',
        'seconds',
        'images_per_s',
    }
    assert all(set(h) == keys for h in r['history']) and set(r['final']) >= keys | {'rand_acc_ci'}
    assert list(r['final']['rand_acc']) == ['stage1', 'stage2', 'penultimate']
    assert r['final']['head_capacity']['penultimate'] == {
        'samples_per_head': 51.2,
        'dim': 64,
        'cover_2d': 128,
    }


def test_seeded_run_is_bit_identical_twice(tmp_path):
    a = run_train(
        tmp_path / 'a',
        '--epochs',
        '2',
        '--taps',
        'all',
        '--augment',
        '--unlearn',
        'grl',
        '--dropout',
        '0.2',
    )
    b = run_train(
        tmp_path / 'b',
        '--epochs',
        '2',
        '--taps',
        'all',
        '--augment',
        '--unlearn',
        'grl',
        '--dropout',
        '0.2',
    )
    assert without_timings(a) == without_timings(b)


def test_resumed_run_equals_uninterrupted(tmp_path, monkeypatch):
    args = [
        '--epochs',
        '3',
        '--augment',
        '--dropout',
        '0.2',
        '--unlearn',
        'reg',
        '--lam-schedule',
        'dann',
    ]
    whole = run_train(tmp_path / 'whole', *args)
    interrupt_in_epoch_two(monkeypatch, tmp_path / 'resumed', *args)
    assert not (tmp_path / 'resumed' / 'results.json').exists()
    assert without_timings(run_train(tmp_path / 'resumed', *args)) == without_timings(whole)


def test_finished_run_is_not_redone(tmp_path, capsys):
    first = run_train(tmp_path, '--epochs', '1')
    capsys.readouterr()
    assert run_train(tmp_path, '--epochs', '1') == first
    assert 'nothing to do' in capsys.readouterr().out


def test_nan_loss_stops_the_run_as_diverged(tmp_path):
    results = run_train(tmp_path, '--epochs', '3', '--lr', '1e30')
    assert results['status'] == 'diverged' and results['diverged']['epoch'] == 1
    assert 'non-finite' in results['diverged']['reason'] and results['final'] is None
    assert probe.probe_run(str(tmp_path)) == {'status': 'diverged'}
