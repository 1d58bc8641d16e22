"""A student copy of the repository: make student DIR=path [EX=1,2,3]
(python -m extensions.exercises.student DIR [--exercises 1,2,3])

Copies the repository's files (git ls-files, or every file but the environment, data and results)
into DIR, but the teacher's (TEACHER_ONLY), and blanks the functions of the exercises handed out
(all of BLANKS by default): each keeps its signature and docstring, and its body becomes `raise
NotImplementedError`, found from the source with `ast`, so that the core files carry no exercise
markers and the reference repository is the solution; the functions of the other exercises keep
the reference's body. A check (make check EX=N) then fails with NotImplementedError until the
student writes the function. The copy records what it was made with in HANDED_OUT (which
exercises, which functions), for a grader to grade only those. It holds no environment: it makes
its own (make install) or uses one named by PYTHON=, so it works wherever it is moved.
"""

import argparse
import ast
import importlib
import json
import os
import shutil
import subprocess

from extensions.exercises import rules

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# exercise: the (file, function) pairs whose bodies the student writes
BLANKS = {
    1: [('data.py', 'draw_random_labels')],
    2: [('metrics.py', 'complexity'), ('metrics.py', 'wilson_interval')],
    3: [('model.py', 'own_class_head'), ('model.py', 'RandomLabelHead.forward')],
    4: [
        ('regularizer.py', 'GradReverse.backward'),
        ('regularizer.py', 'head_input'),
        ('train.py', 'lam_at'),
    ],
    5: [('regularizer.py', 'output_regularizer')],
}
EXERCISES = range(1, 8)  # 6 and 7 are measurements: nothing to blank
HANDED_OUT = (
    'extensions/exercises/handed_out.json'  # in a copy: {"exercises": [...], "blanked": [...]}
)
SKIP = ('.venv', '.venv-gpu-versions', '.git', 'data', 'results', 'runs', '__pycache__')
# what a student copy leaves out: the answer key, and the tests that hold the reference's answers
TEACHER_ONLY = [
    'extensions/exercises/TEACHER.md',
    'extensions/exercises/test_student_copy.py',
    'extensions/exercises/test_mutants.py',
    'extensions/exercises/test_handout.py',
    'extensions/exercises/conftest.py',  # the teacher's tests' fixtures
    'extensions/exercises/ranges.json',  # where correct code lands: the grader's
]
# folders a copy leaves out: the autograder (its checks hold the answers) and the README's worked
# example's runs (seed 0: the exercises ask about seed 1)
TEACHER_ONLY_FOLDERS = ('extensions/exercises/autograder/', 'example/worked/')
# a copy's git keeps the runs' numbers (a submission carries them; the grader reruns them), not
# their checkpoints
RUNS_KEPT = '\n# the runs a submission carries: their numbers, not their checkpoints\nruns/*/*\n'
RUNS_KEPT += '!runs/*/results.json\n!runs/*/probe.json\n'


def files(root):
    """The repository's files, relative to root: git's, tracked or not ignored."""
    git = ['git', 'ls-files', '--cached', '--others', '--exclude-standard']
    try:
        listed = subprocess.run(git, cwd=root, capture_output=True, text=True, check=True)
        return [f for f in listed.stdout.splitlines() if os.path.isfile(os.path.join(root, f))]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        found = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d not in SKIP]
            found += [os.path.relpath(os.path.join(folder, n), root) for n in names]
        return found


def find(tree, qualname):
    """The function node named `qualname` ('f' or 'Class.method') in a module's tree."""
    nodes = tree.body
    *outer, name = qualname.split('.')
    for part in outer:
        nodes = next(n for n in nodes if isinstance(n, ast.ClassDef) and n.name == part).body
    return next(n for n in nodes if isinstance(n, ast.FunctionDef) and n.name == name)


def blank(source, qualname, exercise, message=None):
    """source with the body of `qualname` (after its docstring) replaced by a raise, laid out as
    ruff format lays it out (one line, or the message on a line of its own past 100 columns)."""
    node = find(ast.parse(source), qualname)
    body = node.body[1:] if ast.get_docstring(node) is not None else node.body
    lines = source.split('\n')
    first, last = body[0].lineno - 1, node.end_lineno  # 0-based start, 1-based end
    indent = ' ' * body[0].col_offset
    message = (
        repr(message)
        if message
        else (
            f"'exercise {exercise}: write {qualname} (extensions/exercises/ex{exercise}/README.md)'"
        )
    )
    raise_ = [f'{indent}raise NotImplementedError({message})']
    if len(raise_[0]) > 100:
        raise_ = [f'{indent}raise NotImplementedError(', f'{indent}    {message}', f'{indent})']
    return '\n'.join(lines[:first] + raise_ + lines[last:])


def make_copy(target, exercises=EXERCISES):
    """Copy the repository to target and blank the functions of `exercises`; returns what it
    blanked."""
    if os.path.exists(target) and os.listdir(target):
        raise SystemExit(f'student: error: {target} exists and is not empty; give a new folder')
    for f in files(ROOT):
        if f in TEACHER_ONLY or f.startswith(TEACHER_ONLY_FOLDERS):
            continue
        os.makedirs(os.path.dirname(os.path.join(target, f)) or target, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), os.path.join(target, f))
    with open(os.path.join(target, '.gitignore')) as fh:
        ignored = fh.read().replace('runs/\n', '')
    with open(os.path.join(target, '.gitignore'), 'w') as fh:
        fh.write(ignored + RUNS_KEPT)
    blanked = []
    for exercise in sorted(exercises):
        for path, qualname in BLANKS.get(exercise, []):
            full = os.path.join(target, path)
            with open(full) as fh:
                source = blank(fh.read(), qualname, exercise)
            with open(full, 'w') as fh:
                fh.write(source)
            blanked.append(f'{path}:{qualname}')
    store_references(target)
    with open(os.path.join(target, HANDED_OUT), 'w') as fh:
        json.dump({'exercises': sorted(exercises), 'blanked': blanked}, fh, indent=1)
        fh.write('\n')
    return blanked


def store_references(target):
    """The checks' reference values, stored in the copy on the points its checks draw, and the
    formulas that made them blanked in its checks (rules.py says why)."""
    stored = os.path.join(target, os.path.relpath(rules.STORED, ROOT))
    for exercise, functions in rules.REFERENCES.items():
        check = importlib.import_module(f'extensions.exercises.ex{exercise}.check_ex{exercise}')
        rules.record(check, stored)
        path = os.path.join(
            target, 'extensions', 'exercises', f'ex{exercise}', f'check_ex{exercise}.py'
        )
        for qualname in functions:
            with open(path) as fh:
                source = blank(fh.read(), qualname, exercise, "the reference is the teacher's")
            with open(path, 'w') as fh:
                fh.write(source)


def exercise_list(text):
    """'1,2,3' -> [1, 2, 3], each an exercise."""
    try:
        chosen = sorted({int(part) for part in text.split(',') if part.strip()})
    except ValueError:
        chosen = []
    if not chosen or not set(chosen) <= set(EXERCISES):
        raise argparse.ArgumentTypeError(f'exercises from 1 to 7, e.g. 1,2,3 (got {text})')
    return chosen


def setup_line(target):
    """The one line that gives a copy its environment: a .venv of its own, that reuses this
    repository's packages where it has them (no download; it survives moving the copy)."""
    venv = os.path.join(ROOT, '.venv')
    if os.path.exists(os.path.join(venv, 'installed')):  # make's mark of a whole install
        return f'cd {target} && make reuse-venv FROM={venv}'
    return f'cd {target} && make install'


def main(argv=None):
    parser = argparse.ArgumentParser(prog='student', description=__doc__.split('\n')[0])
    parser.add_argument('dir', help='a new folder for the copy')
    parser.add_argument('--exercises', type=exercise_list, default=list(EXERCISES))
    args = parser.parse_args(argv)
    blanked = make_copy(args.dir, args.exercises)
    handed = ', '.join(map(str, args.exercises))
    print(f'wrote a student copy to {args.dir}: exercises {handed}; blanked: {", ".join(blanked)}')
    print(f'set up, once: {setup_line(args.dir)}')
    print('(make install builds the copy its own .venv, about 80 s and 5.5 GB: on another machine)')
    print(f'then: cd {args.dir} && make check EX={args.exercises[0]}')


if __name__ == '__main__':
    main()
