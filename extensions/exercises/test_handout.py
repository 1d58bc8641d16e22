"""A copy as a student gets it (CI): part of the exercises handed out (EX=1,2), moved to another
folder and set up in the one line `make student` prints, lint-clean, quiet about git outside a
repository; and a student who follows exercises 4, 5 and 6 in order never has a run refused.
(test_student_copy.py: the copy holds no answer and every check fails on it as it comes.)"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import plumbing
import regularizer
import train
from extensions.exercises import measurements, student

ROOT = student.ROOT
HANDED_OUT = student.HANDED_OUT


def shell(command, cwd, **env):
    """Run a shell command line (a student's), without this test's PYTHON unless given."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHON'} | env
    return subprocess.run(
        command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def blocks(readme):
    """The ```sh blocks of an exercise's README, dedented."""
    with open(os.path.join(ROOT, 'extensions', 'exercises', readme)) as f:
        found = re.findall(r'^( *)```sh\n(.*?)^\1```', f.read(), re.M | re.S)
    return [re.sub(rf'^{indent}', '', body, flags=re.M) for indent, body in found]


def function_source(path, qualname):
    with open(path) as f:
        source = f.read()
    return ast.get_source_segment(source, student.find(ast.parse(source), qualname))


def test_ex_1_2_blanks_only_those_two_and_records_them(tmp_path):
    made = shell(f'make student DIR={tmp_path / "copy"} EX=1,2', ROOT, PYTHON=sys.executable)
    assert made.returncode == 0, made.stdout + made.stderr
    copy = tmp_path / 'copy'
    blanked = []
    for exercise, functions in student.BLANKS.items():
        for path, qualname in functions:
            node = student.find(ast.parse((copy / path).read_text()), qualname)
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            is_blank = len(body) == 1 and isinstance(body[0], ast.Raise)
            assert is_blank == (exercise in (1, 2)), (exercise, path, qualname)
            if exercise in (1, 2):
                blanked.append(f'{path}:{qualname}')
            else:  # the reference's own body
                ours = function_source(os.path.join(ROOT, path), qualname)
                assert function_source(copy / path, qualname) == ours, (path, qualname)
    handed_out = json.loads((copy / HANDED_OUT).read_text())
    assert handed_out == {'exercises': [1, 2], 'blanked': blanked}, handed_out


def test_a_moved_copy_sets_up_in_the_one_line_it_prints_and_passes_check_1(tmp_path):
    """Made with EX=2 (exercise 1 keeps the reference's code), moved, its original gone: the set-up
    line gives it a .venv of its own (no link, no download), and `make check EX=1` passes.
    (test_student_copy.py: every check fails on a blank, naming the function to write.)"""
    if not os.path.exists(os.path.join(ROOT, '.venv', 'installed')):
        pytest.skip('the reference has no .venv of its own: the set-up line is make install')
    first, moved = tmp_path / 'first', tmp_path / 'elsewhere' / 'rlp-student'
    made = shell(f'make student DIR={first} EX=2', ROOT, PYTHON=sys.executable)
    assert made.returncode == 0, made.stdout + made.stderr
    lines = [line for line in made.stdout.split('\n') if line.startswith('set up, once: ')]
    assert len(lines) == 1, made.stdout
    setup = lines[0].removeprefix('set up, once: ')
    assert setup.startswith(f'cd {first} && '), setup
    os.makedirs(moved.parent)
    shutil.move(first, moved)
    assert not first.exists()
    done = shell(setup.replace(f'cd {first} ', f'cd {moved} '), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (moved / '.venv' / 'installed').exists() and not (moved / '.venv').is_symlink()
    checked = shell('make check EX=1', moved)
    out = checked.stdout + checked.stderr
    assert checked.returncode == 0 and 'passed' in out, out[-2000:]
    assert 'pip install' not in out and 'File exists' not in out, out[-2000:]


def test_the_copy_passes_make_lint(tmp_path):
    student.make_copy(str(tmp_path / 'copy'))
    done = shell(f'make lint PYTHON={sys.executable}', tmp_path / 'copy')
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def plumbing_of(monkeypatch):
    """plumbing as it sees another folder's code (its git, its core files)."""

    def at(folder):
        monkeypatch.setattr(plumbing, 'HERE', str(folder))
        plumbing.code_parts.cache_clear()
        return plumbing

    yield at
    monkeypatch.undo()
    plumbing.code_parts.cache_clear()


def test_a_copy_says_nothing_of_git(tmp_path, plumbing_of, capfd):
    """Even inside another repository (a student's home under git): the copy is not a checkout of
    its own, so its runs record the commit 'none', and git prints nothing (the slow test below
    runs training in a copy and reads its stderr)."""
    subprocess.run(['git', 'init', '-q', str(tmp_path)], check=True)
    student.make_copy(str(tmp_path / 'copy'), [7])
    capfd.readouterr()
    assert plumbing_of(tmp_path / 'copy').commit() == 'none'
    assert capfd.readouterr() == ('', '')


# --- exercises 4, 5 and 6 in order: writing 5 leaves 4's runs valid ------------------------------


def exercise_configs():
    """{name: options} of exercise 6's runs (the README's commands)."""
    return {
        name: vars(train.build_parser().parse_args([*measurements.COMMON, *args]))
        for name, args in measurements.RUNS[6].items()
    }


def test_writing_exercise_5_leaves_the_runs_of_exercise_4_valid(tmp_path, plumbing_of):
    """The code's identity as exercise 4's runs record it (exercise 5 blank), then exercise 5
    written: plain, memorize and grl, which never call the output regularizer, are the same code;
    reg is not, and neither is any run once the file changes outside the function."""
    copy = tmp_path / 'copy'
    student.make_copy(str(copy), [5])
    made = plumbing_of(copy).identity()
    configs = exercise_configs()
    shutil.copy(os.path.join(ROOT, 'regularizer.py'), copy / 'regularizer.py')  # exercise 5
    now = plumbing_of(copy)
    assert now.code_fingerprint() != made['code']
    for name, config in configs.items():
        same, said = now.same_code(made, config), now.finished('runs/x', {**made, 'config': config})
        assert same == (name != 'reg'), (name, said)
        assert ('nothing to do' in said) == same and ('other code' in said) != same, said
    with open(copy / 'regularizer.py', 'a') as f:
        f.write('\nEDITED = True  # outside the function: every run ran this file\n')
    now = plumbing_of(copy)
    assert not any(now.same_code(made, config) for config in configs.values())


def test_a_run_calls_the_output_regularizer_only_under_unlearn_reg(tmp_path, monkeypatch):
    """What plumbing.REACHED_ONLY_WHEN claims, on exercise 6's runs (shortened): with the output
    regularizer raising, every run but reg finishes."""
    assert plumbing.REACHED_ONLY_WHEN == {'regularizer.py:output_regularizer': ('unlearn', 'reg')}

    def never(logits, r):
        raise AssertionError('the output regularizer ran')

    monkeypatch.setattr(regularizer, 'output_regularizer', never)
    tiny = ['--subset', '64', '--test-subset', '64', '--epochs', '1', '--no-probe']
    for name, args in measurements.RUNS[6].items():
        cfg = train.parse_args([*measurements.COMMON, *args, *tiny, '--out', str(tmp_path / name)])
        reached = plumbing.reaches(vars(cfg), 'regularizer.py:output_regularizer')
        assert reached == (name == 'reg'), name
        if reached:
            with pytest.raises(AssertionError, match='the output regularizer ran'):
                train.run(cfg)
        else:
            assert train.run(cfg)['status'] == 'done', name


def readings(runs, asked):
    """Readings written from the runs, as a student writes them from the printed numbers; the
    answers by the README's rule from the runs' intervals."""
    lines = []
    for name in asked:
        run, key = name.split(' ', 1)
        results = plumbing.read_json(runs / run / 'results.json')
        tap = plumbing.read_json(runs / run / 'probe.json')['taps']['penultimate']
        if key.startswith('lam'):
            value = f'{results["history"][int(key.split()[-1]) - 1]["lam"]:.2f}'
        elif key.endswith('interval'):
            value = plumbing.points(tap, 'memorization' if key == 'm interval' else 'specific')
            value = value.split(' ', 1)[1]
        else:
            value = f'{100 * tap[key]:.1f}%'
        lines.append(f'{name} = {value}')

    def lit(run, key):
        ci = plumbing.read_json(runs / run / 'probe.json')['taps']['penultimate'][f'{key}_ci']
        return ci[0] > 0

    q2 = [k for k, key in (('m', 'memorization'), ('specific', 'specific')) if lit('memorize', key)]
    answers = {
        'q1': 'memorization' if lit('plain', 'memorization') else 'capacity',
        'q2': {0: 'neither', 2: 'both'}.get(len(q2)) or q2[0],
        'q3': 'hidden' if lit('reg', 'specific') else 'removed',
        'q4': 'hidden' if lit('grl', 'specific') else 'removed',
    }
    lines += [f'{q} = {a}\n{q} why = read from my intervals' for q, a in answers.items()]
    return '\n'.join(lines) + '\n'


@pytest.mark.slow
def test_a_student_who_follows_exercises_4_5_and_6_in_order_never_has_a_run_refused(tmp_path):
    """In a copy handed out with exercise 5 blank (1 to 4 written): exercise 4's block in zsh,
    then exercise 5 written and its block in bash, then exercise 6's block in zsh: every run
    there is finished and nothing is other code, and check 6 passes (4 runs, about a minute)."""
    if shutil.which('zsh') is None and not os.environ.get('REQUIRE_SHELLS'):
        pytest.skip('zsh is not installed')
    from extensions.exercises.ex6 import check_ex6

    copy = tmp_path / 'copy'
    student.make_copy(str(copy), [5])
    venv = shell(f'make reuse-venv FROM={sys.prefix}', copy)
    assert venv.returncode == 0, venv.stdout + venv.stderr
    ex = {n: blocks(f'ex{n}/README.md')[0] for n in (4, 5, 6)}
    (tmp_path / 'ex4.sh').write_text(ex[4])
    four = shell(f'zsh {tmp_path / "ex4.sh"}', copy)
    assert four.returncode == 0, four.stdout + four.stderr
    shutil.copy(os.path.join(ROOT, 'regularizer.py'), copy / 'regularizer.py')  # exercise 5
    (tmp_path / 'ex5.sh').write_text(ex[5])
    five = shell(f'bash {tmp_path / "ex5.sh"}', copy)
    assert five.returncode == 0, five.stdout + five.stderr
    (tmp_path / 'ex6.sh').write_text(ex[6])
    for done in (four, five):  # the runs say nothing of git, and record no commit
        assert not re.search(r'error|fatal|HEAD', done.stderr, re.I), done.stderr
    assert plumbing.read_json(copy / 'runs' / 'reg' / 'results.json')['commit'] == 'none'
    six = shell(f'zsh {tmp_path / "ex6.sh"}', copy)
    assert six.returncode == 0 and 'other code' not in six.stdout, six.stdout
    assert six.stdout.count('finished, nothing to do') == 4, six.stdout
    (copy / 'extensions/exercises/ex6/readings.txt').write_text(
        readings(copy / 'runs', check_ex6.ASKED)
    )
    checked = shell('make check EX=6', copy)
    assert checked.returncode == 0, checked.stdout[-3000:]
