"""Check of exercise 7, a measurement: a network trained on fully random class labels (Zhang et al.
2017), seed 0, every number within the range measured over 10 seeds (ranges.json)."""

import json
import os

import pytest

from extensions.exercises.measurements import HERE, KEYS, numbers

RANGES = json.load(open(os.path.join(HERE, 'ranges.json')))['7']['random-labels']


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return numbers(7, 'random-labels', 0, str(tmp_path_factory.mktemp('ex7')))


def test_every_number_lands_in_the_measured_range(run):
    for key in KEYS:
        lo, hi = RANGES[key]['accepted']
        assert lo <= run[key] <= hi, (key, run[key], [lo, hi])


def test_it_fits_labels_that_carry_nothing_and_generalizes_to_nothing(run):
    assert run['train_acc'] > 0.8 and run['test_acc'] < 0.2
