"""The exercises' tests share one set of the exercises' runs (seed 1, trained once a session):
test_student_copy.py and autograder/test_autograder.py. Teacher's only: no student copy holds it."""

import importlib

import pytest

import train
from extensions.exercises import measurements
from extensions.exercises.test_student_copy import KEY, reading


@pytest.fixture(scope='session')
def done_right(tmp_path_factory):
    """The exercises' runs (seed 1) and readings written from them, as a student would."""
    root = tmp_path_factory.mktemp('student-work')
    for runs in measurements.RUNS.values():
        for name, args in runs.items():
            train.run(train.parse_args([*measurements.COMMON, *args, '--out', str(root / name)]))
    for exercise in (6, 7):
        check = importlib.import_module(f'extensions.exercises.ex{exercise}.check_ex{exercise}')
        lines = [f'{name} = {reading(root, name)}' for name in check.ASKED]
        lines += [f'{q} = {a}\n{q} why = read from the intervals' for q, a in KEY[exercise].items()]
        (root / f'ex{exercise}.txt').write_text('\n'.join(lines) + '\n')
    return root
