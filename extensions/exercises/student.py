"""A student copy of the repository: make student DIR=path (python -m extensions.exercises.student)

Copies the repository's files (git ls-files, or every file but the environment, data and results)
into DIR, but the teacher's (TEACHER_ONLY), and blanks the functions of BLANKS: each keeps its
signature and docstring, and its body becomes `raise NotImplementedError`, found from the source
with `ast`, so that the core files carry no exercise markers and the reference repository is the
solution. A check (make check EX=N) then fails with NotImplementedError until the student writes
the function. The copy's .venv is a link to this repository's: one environment for both.
"""

import ast
import os
import shutil
import subprocess
import sys

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
SKIP = ('.venv', '.venv-gpu-versions', '.git', 'data', 'results', 'runs', '__pycache__')
# what a student copy leaves out: the answer key, and the tests that hold the reference's answers
TEACHER_ONLY = [
    'extensions/exercises/TEACHER.md',
    'extensions/exercises/test_student_copy.py',
    'extensions/exercises/test_mutants.py',
]


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


def blank(source, qualname, exercise):
    """source with the body of `qualname` (after its docstring) replaced by a raise."""
    node = find(ast.parse(source), qualname)
    body = node.body[1:] if ast.get_docstring(node) is not None else node.body
    lines = source.split('\n')
    first, last = body[0].lineno - 1, node.end_lineno  # 0-based start, 1-based end
    indent = ' ' * body[0].col_offset
    where = f'extensions/exercises/ex{exercise}/README.md'
    raise_ = f"{indent}raise NotImplementedError('exercise {exercise}: write {qualname} ({where})')"
    return '\n'.join(lines[:first] + [raise_] + lines[last:])


def make_copy(target, exercises=BLANKS):
    """Copy the repository to target and blank the exercises' functions; returns what it blanked."""
    if os.path.exists(target) and os.listdir(target):
        raise SystemExit(f'student: error: {target} exists and is not empty; give a new folder')
    for f in files(ROOT):
        if f in TEACHER_ONLY:
            continue
        os.makedirs(os.path.dirname(os.path.join(target, f)) or target, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), os.path.join(target, f))
    if os.path.exists(os.path.join(ROOT, '.venv', 'installed')):  # make's mark of a whole install
        os.symlink(os.path.join(ROOT, '.venv'), os.path.join(target, '.venv'))
    blanked = []
    for exercise, functions in exercises.items():
        for path, qualname in functions:
            full = os.path.join(target, path)
            with open(full) as fh:
                source = blank(fh.read(), qualname, exercise)
            with open(full, 'w') as fh:
                fh.write(source)
            blanked.append(f'{path}:{qualname}')
    return blanked


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit('student: error: give one new folder (make student DIR=path)')
    blanked = make_copy(argv[0])
    print(f'wrote a student copy to {argv[0]}; blanked: {", ".join(blanked)}')
    print(f'start with: cd {argv[0]} && make check EX=1')


if __name__ == '__main__':
    main()
