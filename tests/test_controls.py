"""The controls of train.py's runs, end to end: the positive control lights up a_train - a_fresh
where its twin without --memorize holds 0 (f never saw r), and an untrained network, which treats
training and held-out samples alike by construction, reads m at 0. No test here asserts what a
trained network's m is: that is the finding, not a property of the estimator."""

import pytest
import torch
from conftest import read_probe, run_train

import data
import train

# a shared head sees all 256 samples against 2D = 128 at the penultimate tap: it cannot shatter
# every labelling, and the network can memorize them quickly
SHARED = ['--rlp-head', 'shared', '--taps', 'all', '--epochs', '14', '--subset', '256', '--probe']


@pytest.fixture(scope='module')
def control_runs(tmp_path_factory):
    """The same setting trained twice: with the positive control, and without."""
    root = tmp_path_factory.mktemp('control')
    for name, extra in (('memorize', ['--memorize']), ('plain', [])):
        run_train(root / name, *SHARED, *extra)
    return {name: read_probe(root / name) for name in ('memorize', 'plain')}


def test_positive_control_lights_up_a_train_minus_a_fresh(control_runs):
    tap = control_runs['memorize']['taps']['penultimate']
    assert tap['specific_ci'][0] > 0.1, tap  # a fresh head reads these labels far above any
    assert tap['converged'] and tap['a_train'] > 0.9


def test_its_twin_holds_a_train_minus_a_fresh_at_zero(control_runs):
    """Same data, network and head capacity, stop-gradient heads: f never saw r, so a_train is
    one draw among the fresh ones. A 95% interval misses 1 time in 20: 3 taps, at most one miss."""
    missed = [t for t, v in control_runs['plain']['taps'].items() if v['specific_ci'][0] > 0]
    assert len(missed) <= 1, missed


def test_an_untrained_network_reads_m_at_zero():
    """Five label seeds x three taps of the untrained network, training samples against held-out
    ones: their features come from the same function, so m's 95% interval must hold 0 in at
    least 12 of 15 (below 12 has probability < 1%), and the mean must be near 0."""
    covered, estimates = 0, []
    for seed in range(5):
        cfg = train.build_parser().parse_args(['--rlp-head', 'shared', '--taps', 'all'])
        d = data.load('fake', '', seed, 2, fake_like='fashion-mnist', subset=512)
        d.heldout_x, d.heldout_y, d.heldout_r = (
            d.heldout_x[:2000],
            d.heldout_y[:2000],
            d.heldout_r[:2000],
        )
        untrained = train.build_model(cfg, d, torch.device('cpu'))
        found = train.measure(untrained, untrained, d, 2, 'shared', seed, torch.device('cpu'))
        for t in found['taps'].values():
            covered += t['memorization_ci'][0] <= 0 <= t['memorization_ci'][1]
            estimates.append(t['memorization'])
    assert covered >= 12, covered
    assert abs(sum(estimates) / len(estimates)) < 0.01, estimates
