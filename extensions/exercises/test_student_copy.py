"""The exercises stay true (CI): every check passes on the reference (they are collected with the
rest of the suite), and on a fresh student copy every code check fails with NotImplementedError,
while the copy's own tests still run and report the blanked functions instead of crashing."""

import re
import subprocess
import sys

import pytest

from extensions.exercises import student

CODE_CHECKS = [f'extensions/exercises/ex{n}' for n in student.BLANKS]


@pytest.fixture(scope='module')
def copy(tmp_path_factory):
    target = tmp_path_factory.mktemp('student') / 'repo'
    blanked = student.make_copy(str(target))
    assert len(blanked) == sum(map(len, student.BLANKS.values()))
    return target


def pytest_in(folder, *args):
    run = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', *args]
    done = subprocess.run(run, cwd=folder, capture_output=True, text=True, timeout=600)
    return done.stdout + done.stderr


def test_every_code_check_fails_with_not_implemented_on_a_fresh_copy(copy):
    out = pytest_in(copy, *CODE_CHECKS, '-rf')
    failed = re.findall(r'^FAILED (\S+)', out, re.M)
    collected = re.search(r'(\d+) failed', out)
    assert collected and 'passed' not in out.split('\n')[-2], out[-3000:]  # not one check passes
    assert len(failed) == int(collected.group(1)) >= 5 * 3
    assert out.count('NotImplementedError') >= len(failed), out[-3000:]
    for n in student.BLANKS:  # each exercise's own check fails, naming its exercise
        assert f'exercise {n}: write' in out, n


def test_the_copys_own_tests_report_the_blanks_not_a_crash(copy):
    out = pytest_in(copy, 'tests/test_model.py', 'tests/test_regularizer.py')
    assert 'error' not in out.split('\n')[-2].lower(), out[-2000:]  # collected and run
    assert 'failed' in out and 'NotImplementedError' in out, out[-2000:]


def test_the_reference_source_carries_no_exercise_marker():
    for functions in student.BLANKS.values():
        for path, _ in functions:
            with open(path) as f:
                assert 'NotImplementedError' not in f.read(), path
