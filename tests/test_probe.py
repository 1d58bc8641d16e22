"""The post-hoc probe and its controls: zero on an untrained network, the positive control lights
up where its twin without --memorize does not, and the command's contract."""

import json

import pytest
import torch
from conftest import TINY, run_train, write_fashion_mnist_gz

import data
import probe
import train

# shared heads see all 512 samples against 2D = 128: fresh heads cannot shatter the labels
SHARED = ['--rlp-head', 'shared', '--taps', 'all', '--epochs', '20']
TAPS = ['stage1', 'stage2', 'penultimate']
KEYS = {'dim', 'samples_per_head', 'a_train', 'a_heldout', 'a_init', 'memorization'}
KEYS |= {'memorization_ci', 'online', 'steps'}


@pytest.fixture(scope='module')
def control_runs(tmp_path_factory):
    """The same setting trained twice: with the positive control, and without."""
    root = tmp_path_factory.mktemp('control')
    results = {}
    for name, extra in (('memorize', ['--memorize']), ('plain', [])):
        run_train(root / name, *SHARED, *extra)
        results[name] = probe.probe_run(str(root / name))
    return results


def test_positive_control_lights_up(control_runs):
    tap = control_runs['memorize']['taps']['penultimate']
    assert tap['memorization_ci'][0] > 0.1, tap  # clearly above 0
    assert tap['a_train'] > tap['a_fresh'] + 0.1  # it is these labels, not the features' spread
    assert tap['converged']


def test_same_setting_without_memorize_reads_no_memorization(control_runs):
    """The negative twin: same data, network and head capacity, stop-gradient heads."""
    for tap, t in control_runs['plain']['taps'].items():
        lo, hi = t['memorization_ci']
        assert lo <= 0 <= hi, (tap, t)


def test_probe_json_has_every_control_per_tap(control_runs, tmp_path):
    result = control_runs['plain']
    assert result['status'] == 'done' and result['n'] == 512 and list(result['taps']) == TAPS
    for t in result['taps'].values():
        assert KEYS <= set(t) and t['samples_per_head'] == 512
        assert 0.5 <= t['a_init'] <= 1 and t['online'] is not None


def test_untrained_network_reads_zero_memorization():
    """Each 95% interval misses 0 one time in 20 by design, so one interval per tap would be a
    coin flip with loaded odds: check 5 label seeds x 3 taps and the mean instead."""
    cfg = train.build_parser().parse_args(['--rlp-head', 'shared', '--taps', 'all'])
    covered, estimates = 0, []
    for seed in range(5):
        d = data.load('fake', '', seed, 2, fake_like='fashion-mnist', subset=512)
        untrained = train.build_model(cfg, d, torch.device('cpu'))
        train_set = (d.train_x, d.train_y, d.train_r)
        heldout = (d.heldout_x[:512], d.heldout_y[:512], d.heldout_r[:512])
        args = (d.mean, d.std, 2, 'shared', 512, torch.device('cpu'))
        taps = probe.probe_network(untrained, untrained, train_set, heldout, *args, online=False)
        for t in taps.values():
            lo, hi = t['memorization_ci']
            covered += lo <= 0 <= hi
            estimates.append(t['memorization'])
            # the same network and labels, fitted in a batch of draws or alone: a sample or two
            assert abs(t['a_train'] - t['a_init']) <= 2 / 512
    assert covered >= 12, covered  # of 15; below 12 has probability < 1% for a 95% interval
    assert abs(sum(estimates) / len(estimates)) < 0.015, estimates


def test_command_prints_the_table_and_writes_probe_json(control_runs, tmp_path, capsys):
    run_train(tmp_path, '--epochs', '1', '--rlp-head', 'shared')
    result = probe.main([str(tmp_path)])
    out = capsys.readouterr().out
    assert 'a_heldout' in out and 'm [95% interval]' in out and 'penultimate' in out
    assert json.loads((tmp_path / 'probe.json').read_text()) == result


def assert_one_line_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        probe.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count('\n') == 1 and err.startswith('probe.py: error: '), err
    return err


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, no_debian_fashion_mnist):
    assert 'results.json' in assert_one_line_exit_2([str(tmp_path / 'nothing')], capsys)
    run_train(tmp_path / 'run', '--epochs', '1')
    (tmp_path / 'run' / 'checkpoint.pt').unlink()
    assert 'checkpoint.pt' in assert_one_line_exit_2([str(tmp_path / 'run')], capsys)
    write_fashion_mnist_gz(tmp_path / 'gz')  # a Fashion-MNIST run whose data is gone later
    monkeypatch.setattr(data, 'FASHION_MNIST_DEBIAN', str(tmp_path / 'gz'))
    fm = [*TINY, '--dataset', 'fashion-mnist', '--subset', '20', '--test-subset', '20']
    train.main([*fm, '--data-dir', str(tmp_path / 'fm'), '--out', str(tmp_path / 'fmrun')])
    monkeypatch.setattr(data, 'FASHION_MNIST_DEBIAN', str(tmp_path / 'not-installed'))
    monkeypatch.setattr(
        data, '_download', lambda make, source: (_ for _ in ()).throw(data.DataError('offline'))
    )
    err = assert_one_line_exit_2(
        [str(tmp_path / 'fmrun'), '--data-dir', str(tmp_path / 'x')], capsys
    )
    assert '--dataset fashion-mnist' in err
    assert '--help' in assert_one_line_exit_2([str(tmp_path), '--bogus'], capsys)
