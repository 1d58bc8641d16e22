"""The exercises stay true (CI): a student copy holds no answer and fails every check as it comes,
its own tests still run, and the measurement checks (6, 7) pass on runs and readings done right and
fail on wrong ones. (test_mutants.py: the code checks fail on wrong code.)"""

import ast
import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

import plumbing
from extensions.exercises import rules, student

CHECKS = [f'extensions/exercises/ex{n}/check_ex{n}.py' for n in range(1, 8)]


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


def reference_lines():
    """Each blanked function's reference body, line by line (long enough to be its own)."""
    for functions in student.BLANKS.values():
        for path, qualname in functions:
            with open(path) as f:
                source = f.read()
            node = student.find(ast.parse(source), qualname)
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            lines = source.split('\n')[body[0].lineno - 1 : node.end_lineno]
            yield from (line.strip() for line in lines if len(line.strip()) > 24)


def test_the_copy_holds_no_answer(copy):
    for path in [*student.TEACHER_ONLY, *student.TEACHER_ONLY_FOLDERS]:
        assert not (copy / path).exists(), path
    for functions in student.BLANKS.values():
        for path, qualname in functions:
            node = student.find(ast.parse((copy / path).read_text()), qualname)
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            assert len(body) == 1 and isinstance(body[0], ast.Raise), (path, qualname)
    answers = set(reference_lines())
    for folder, _, names in os.walk(copy):
        for name in names:
            if name.endswith(('.py', '.md', '.txt', '.json')):
                text = open(os.path.join(folder, name), errors='ignore').read()
                found = [line for line in answers if line in text]
                assert not found, (os.path.join(folder, name), found[0])


def test_the_copys_checks_hold_no_formula_and_pass_the_reference_on_stored_values(tmp_path):
    """In a copy the checks' formulas (rules.REFERENCES) are blanked and their values stored on
    the points the checks draw there: checks 2, 4 and 5 pass a copy of the reference's code."""
    filled = tmp_path / 'filled'
    student.make_copy(str(filled), exercises=[])
    for exercise, functions in rules.REFERENCES.items():
        path = filled / f'extensions/exercises/ex{exercise}/check_ex{exercise}.py'
        for qualname in functions:
            node = student.find(ast.parse(path.read_text()), qualname)
            assert isinstance(node.body[-1], ast.Raise) and len(node.body) <= 2, qualname
    checks = [f'extensions/exercises/ex{n}/check_ex{n}.py' for n in rules.REFERENCES]
    out = pytest_in(filled, *checks)
    assert ' passed' in out and 'failed' not in out and 'error' not in out, out[-2000:]


def test_the_teachers_checks_draw_their_points_afresh():
    rules.draws('a test')
    first = torch.rand(3)
    rules.draws('a test')
    assert not torch.equal(first, torch.rand(3))


def test_the_copys_git_keeps_the_runs_numbers_not_their_checkpoints(copy, tmp_path):
    """A submission pushed with git carries results.json and probe.json (the grader reruns them)."""
    repo = tmp_path / 'pushed'
    shutil.copytree(copy, repo)
    subprocess.run(['git', 'init', '-q'], cwd=repo, check=True)
    kept, left = 'runs/plain/results.json', 'runs/plain/checkpoint.pt'
    for path in (kept, 'runs/plain/probe.json', left):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text('{}')
    ignored = subprocess.run(
        ['git', 'check-ignore', kept, 'runs/plain/probe.json', left],
        cwd=repo, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert ignored == [left], ignored


def test_every_check_fails_on_a_fresh_copy_naming_what_to_do(copy):
    out = pytest_in(copy, *CHECKS, '-rfp')
    failed = re.findall(r'^FAILED extensions/exercises/ex(\d)/', out, re.M)
    assert set(failed) == {str(n) for n in range(1, 8)}, out[-3000:]  # every check fails
    passed = re.findall(r'^PASSED \S+::(\S+)', out, re.M)  # only the rules on imports and loops
    assert all('your_own' in name for name in passed), passed
    for n in student.BLANKS:  # each code check fails, naming its exercise
        assert f'exercise {n}: write' in out, n
    assert "runs/plain/results.json: missing; run the README's command" in out  # 6: do the runs


def test_make_check_runs_in_the_copy_with_an_environment_named_by_python(copy):
    """The copy holds no environment (no link to this one); PYTHON= names one, nothing installs.
    (test_handout.py: a moved copy makes its own in the one line make student prints.)"""
    assert not os.path.lexists(copy / '.venv')
    done = subprocess.run(
        ['make', 'check', 'EX=2', f'PYTHON={sys.executable}'],
        cwd=copy,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and 'exercise 2: write' in done.stdout, done.stdout[-2000:]
    assert 'pip install' not in done.stdout + done.stderr  # no second environment


def test_the_copys_own_tests_report_the_blanks_not_a_crash(copy):
    out = pytest_in(copy, 'tests/test_model.py', 'tests/test_regularizer.py')
    assert 'error' not in out.split('\n')[-2].lower(), out[-2000:]  # collected and run
    assert 'failed' in out and 'NotImplementedError' in out, out[-2000:]


def test_the_reference_source_carries_no_exercise_marker():
    for functions in student.BLANKS.values():
        for path, _ in functions:
            with open(path) as f:
                assert 'NotImplementedError' not in f.read(), path


def test_every_template_asks_what_its_check_reads(monkeypatch):
    monkeypatch.delenv('EXERCISE_READINGS', raising=False)
    for n in (6, 7):
        check = importlib.import_module(f'extensions.exercises.ex{n}.check_ex{n}')
        template = os.path.join(os.path.dirname(check.__file__), 'readings.txt')
        names = [k for k in check.R.readings(n) if not k.startswith('q')]
        assert names == check.ASKED and not any(check.R.readings(n).values()), template


# --- the measurement checks on runs and readings done right, and wrong ----------------------------

# what the reference's runs (the exercises' seed, 1) show, read by hand from their intervals
# (TEACHER.md's answer key)
KEY = {
    6: {'q1': 'capacity', 'q2': 'specific', 'q3': 'removed', 'q4': 'hidden'},
    7: {'q1': 'no', 'q2': 'the same sample, trained on and left out'},
}


def reading(root, name):
    """A reading as a student writes it from the printed numbers."""
    run, key = name.split(' ', 1)
    results = plumbing.read_json(root / run / 'results.json')
    tap = plumbing.read_json(root / run / 'probe.json')['taps']['penultimate']
    if key.startswith('lam'):
        return f'{results["history"][int(key.split()[-1]) - 1]["lam"]:.2f}'
    if key.endswith('interval'):
        return plumbing.points(tap, 'memorization' if key == 'm interval' else 'specific').split(
            ' ', 1
        )[1]
    value = results['final'][key] if key in ('train_acc', 'test_acc') else tap[key]
    return f'{100 * value:.1f}%'


def check_failures(exercise, root, readings, monkeypatch):
    monkeypatch.setenv('EXERCISE_RUNS', str(root))
    monkeypatch.setenv('EXERCISE_READINGS', str(readings))
    check = importlib.import_module(f'extensions.exercises.ex{exercise}.check_ex{exercise}')
    failed = {}
    for name, test in inspect.getmembers(check, inspect.isfunction):
        if name.startswith('test_'):
            try:
                test()
            except AssertionError as e:
                failed[name] = str(e)
    return failed


@pytest.mark.parametrize('exercise', [6, 7])
def test_the_measurement_check_passes_on_work_done_right(exercise, done_right, monkeypatch):
    assert check_failures(exercise, done_right, done_right / f'ex{exercise}.txt', monkeypatch) == {}


@pytest.mark.parametrize('exercise', [6, 7])
def test_the_measurement_check_fails_on_wrong_work(exercise, done_right, monkeypatch, tmp_path):
    right = (done_right / f'ex{exercise}.txt').read_text()
    first = right.split('\n')[0]  # e.g. "plain online = 55.7%"
    name, value = first.split(' = ')
    wrong = {
        'a number not read from the run': right.replace(
            first, f'{name} = {float(value[:-1]) + 0.3:.1f}'
        ),
        'an answer that is none of the choices': right.replace(
            f'q1 = {KEY[exercise]["q1"]}', 'q1 = perhaps'
        ),
        'an answer without why': re.sub(r'q1 why = .*', 'q1 why =', right),
        'a reading left out': right.replace(first + '\n', ''),
    }
    for what, text in wrong.items():
        (tmp_path / 'readings.txt').write_text(text)
        assert check_failures(exercise, done_right, tmp_path / 'readings.txt', monkeypatch), what
    assert check_failures(
        exercise, tmp_path, done_right / f'ex{exercise}.txt', monkeypatch
    )  # no runs
    monkeypatch.setattr(plumbing, 'code_fingerprint', lambda: 'edited-code')  # runs of other code
    failed = check_failures(exercise, done_right, done_right / f'ex{exercise}.txt', monkeypatch)
    assert any('other code' in message for message in failed.values()), failed
