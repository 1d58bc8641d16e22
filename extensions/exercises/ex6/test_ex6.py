"""Check of exercise 6, a measurement: a plain network, the positive control (--memorize) and the
output regularizer at λ = 1, seed 0, each number within the range measured over 10 seeds
(measurements.py, ranges.json); and what the capstone's questions turn on, as intervals."""

import json
import os

import pytest

from extensions.exercises.measurements import HERE, KEYS, RUNS, numbers

RANGES = json.load(open(os.path.join(HERE, 'ranges.json')))['6']


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('ex6'))
    return {name: numbers(6, name, 0, root) for name in RUNS[6]}


@pytest.mark.parametrize('name', RUNS[6])
def test_every_number_lands_in_the_measured_range(runs, name):
    for key in KEYS:
        lo, hi = RANGES[name][key]['accepted']
        assert lo <= runs[name][key] <= hi, (name, key, runs[name][key], [lo, hi])


def test_the_readings_the_questions_ask_for(runs):
    """Plain: the head reads these labels no better than any labels. --memorize: far better, r is
    in f. reg: the online head is pushed down while a fresh head reads these labels better than
    any (10 seeds: online 51.0 ± 2.6%, a_train - a_fresh +7.2 ± 2.9 points)."""
    assert runs['plain']['specific_ci'][0] <= 0
    assert runs['memorize']['specific_ci'][0] > 0.1
    assert runs['reg']['online'] < runs['plain']['online'] and runs['reg']['specific'] > 0
