"""End to end on the CPU: the online heads, unlearning, the chance check, the controls written at
the end of a run, the independence of f from r in metric mode, reproducibility, resume and
divergence."""

import dataclasses
import math
import os

import pytest
import torch
from conftest import TINY, interrupt_in_epoch_two, read_probe, run_train, without_timings

import train

CHANCE_3SIGMA = 3 * math.sqrt(0.25 / 512)  # the 512 held-out samples of TINY, K = 2


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('runs')
    return {
        name: run_train(root / name, '--epochs', '14', *args)
        for name, args in {
            'none': ['--taps', 'all'],
            'reg': ['--unlearn', 'reg', '--lam', '1'],
            'grl': ['--unlearn', 'grl', '--lam', '1'],
        }.items()
    }


def test_fake_data_has_learnable_classes(runs):
    assert runs['none']['final']['test_acc'] > 0.6  # chance is 0.1


def test_online_head_fits_more_random_labels_as_training_goes_on(runs):
    """The papers' number rises during training, to well above chance. With 51 samples per head
    against 2D = 128 this is the head's capacity at work, not memorization: test_controls tells
    the two apart."""
    first = runs['none']['history'][0]['rand_acc']['penultimate']
    assert first < 0.56
    assert runs['none']['final']['rand_acc']['penultimate'] > first + 0.05
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
    # Cover's count 2D(K - 1): the same formula (metrics.capacity) as probe.json's
    assert r['final']['head_capacity']['penultimate'] == {
        'samples_per_head': 51.2,
        'dim': 64,
        'cover': 128,
    }
    assert r['commit'] and len(r['code']) == 12  # which code made it (plumbing.identity)


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
    results = run_train(tmp_path, '--epochs', '3', '--lr', '1e30', '--probe')
    assert results['status'] == 'diverged' and results['diverged']['epoch'] == 1
    assert 'non-finite' in results['diverged']['reason'] and results['final'] is None
    assert not (tmp_path / 'probe.json').exists()  # nothing to measure


def body_state(out):
    """The checkpoint's weights and BatchNorm buffers of f and g: everything but the heads."""
    state = torch.load(os.path.join(out, 'checkpoint.pt'), weights_only=False)['model']
    return {k: v for k, v in state.items() if not k.startswith('rand_heads.')}


def test_in_metric_mode_the_network_never_sees_the_random_labels(tmp_path):
    """Two runs that differ only in r (same images, class labels, seeds) end with bit-identical
    f and g, BatchNorm buffers included, under augmentation and dropout, with heads at every tap:
    the property every metric-mode statement rests on. --memorize breaks it (the control)."""
    args = [*TINY, '--epochs', '2', '--taps', 'all', '--augment', '--dropout', '0.2']
    cfg = train.parse_args([*args, '--out', str(tmp_path / 'a')])
    d = train.load_data(cfg)
    other_r = dataclasses.replace(d, train_r=1 - d.train_r)  # every random label flipped
    train.run(cfg, d)
    train.run(train.parse_args([*args, '--out', str(tmp_path / 'b')]), other_r)
    a, b = body_state(tmp_path / 'a'), body_state(tmp_path / 'b')
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for name, r in (('c', d), ('d', other_r)):  # the positive control: f does see r
        train.run(train.parse_args([*args, '--memorize', '--out', str(tmp_path / name)]), r)
    c, e = body_state(tmp_path / 'c'), body_state(tmp_path / 'd')
    assert not all(torch.equal(c[k], e[k]) for k in c)


def test_a_run_ends_with_its_controls_and_the_same_command_remeasures_them(tmp_path, capsys):
    results = run_train(
        tmp_path, '--epochs', '2', '--rlp-head', 'shared', '--taps', 'all', '--probe'
    )
    probe = read_probe(tmp_path)
    assert probe['status'] == 'done' and probe['n'] == 512 and probe['commit']
    assert list(probe['taps']) == ['stage1', 'stage2', 'penultimate']
    keys = {'dim', 'samples_per_head', 'a_train', 'a_fresh', 'a_heldout', 'a_init', 'memorization'}
    keys |= {'memorization_ci', 'draws', 'online', 'steps', 'specific', 'specific_ci'}
    assert all(keys <= t.keys() for t in probe['taps'].values())
    assert 'controls, penultimate' in capsys.readouterr().out
    os.remove(tmp_path / 'probe.json')  # e.g. make, after the estimator changed
    assert (
        run_train(tmp_path, '--epochs', '2', '--rlp-head', 'shared', '--taps', 'all', '--probe')
        == results
    )
    out = capsys.readouterr().out
    assert 'epoch' not in out and read_probe(tmp_path) | {'commit': 0} == probe | {'commit': 0}


def test_the_controls_read_held_out_images_from_the_held_out_set():
    """m compares training features with held-out ones: held-out images that are all alike give
    features that hold no labels, so m must be large. Were the held-out side drawn from training
    images, m would read 0 here and this test would fail."""
    cfg = train.parse_args([*TINY, '--rlp-head', 'shared', '--subset', '300', '--out', '/tmp'])
    d = train.load_data(cfg)
    alike = dataclasses.replace(d, heldout_x=torch.full_like(d.heldout_x, 128))
    model = train.build_model(cfg, d, torch.device('cpu'))
    taps = train.measure(model, model, alike, 2, 'shared', 0, torch.device('cpu'))['taps']
    assert taps['penultimate']['memorization_ci'][0] > 0.05, taps['penultimate']


def test_stop_at_loss_ends_at_the_first_epoch_that_meets_it_and_records_it(tmp_path):
    full = run_train(tmp_path / 'full', '--epochs', '4', '--no-probe')
    losses = [h['loss_class'] for h in full['history']]
    at = losses[1]  # met first at epoch 2 (or earlier if epoch 1 was already as low)
    first = next(e for e, loss in enumerate(losses, 1) if loss <= at)
    stopped = run_train(
        tmp_path / 'stopped', '--epochs', '4', '--no-probe', '--stop-at-loss', str(at)
    )
    assert without_timings(stopped)[0] == without_timings(full)[0][:first]  # the same steps
    assert [h['epoch'] for h in stopped['history']] == list(range(1, first + 1))
    assert stopped['final']['stop'] == {'at_loss': at, 'epochs': first, 'reached': True}
    assert stopped['final']['epoch'] == first
    never = run_train(tmp_path / 'never', '--epochs', '4', '--no-probe', '--stop-at-loss', '1e-9')
    assert never['final']['stop'] == {'at_loss': 1e-9, 'epochs': 4, 'reached': False}
    assert without_timings(never)[0] == without_timings(full)[0]  # the option changes no step
    assert 'stop' not in full['final'] and full['final']['epoch'] == 4
