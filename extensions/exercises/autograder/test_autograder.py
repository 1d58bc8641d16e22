"""The autograder as Gradescope runs it: the bundle built, unpacked into a temporary
$AUTOGRADER_ROOT, and run_autograder run on submissions made here: the reference, the blank copy,
the wrong versions of test_mutants.py, a copy with cheats (a conftest.py that passes every test,
an edited check, pytest addopts, a Makefile edit), runs copied from the reference into a blank copy
with their `code` rewritten, and honest runs made with another number of CPU threads."""

import ast
import importlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest

import plumbing
from extensions.exercises import measurements, student, test_mutants
from extensions.exercises.autograder import bundle, grade
from extensions.exercises.test_student_copy import reading


def unpack(zip_path, root):
    """As Gradescope does: the bundle in root/source, run_autograder executable."""
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(root / 'source')
        for info in z.infolist():
            mode = info.external_attr >> 16
            if mode:
                os.chmod(root / 'source' / info.filename, mode & 0o777)
    return root


@pytest.fixture(scope='module')
def graders(tmp_path_factory):
    """Two unpacked bundles: all seven exercises, and the code exercises 1 to 5 alone."""
    made = {}
    for name, exercises in (('all', [*student.EXERCISES]), ('code', [1, 2, 3, 4, 5])):
        out = tmp_path_factory.mktemp(f'bundle-{name}')
        made[name] = unpack(bundle.write(str(out / 'zip'), exercises), out / 'root')
    return made


def autograde(grader, submission, threads=None):
    """run_autograder on `submission` (a folder): {exercise: (score, max)}, and the results."""
    root = grader
    shutil.rmtree(root / 'submission', ignore_errors=True)
    shutil.rmtree(root / 'results', ignore_errors=True)
    shutil.copytree(submission, root / 'submission')
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), PYTHON=sys.executable)
    if threads:
        env['OMP_NUM_THREADS'] = str(threads)
    done = subprocess.run(
        [str(root / 'source' / 'run_autograder')], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    results = json.loads((root / 'results' / 'results.json').read_text())
    by_exercise = {}
    for t in results['tests']:
        n = int(t['name'].split(':')[0].split()[-1])
        score, full = by_exercise.get(n, (0, 0))
        by_exercise[n] = (score + t['score'], full + t['max_score'])
    return by_exercise, results


def copy_of(tmp_path, name, exercises=()):
    """A student copy as a student pushes it: blanked where `exercises` say."""
    target = tmp_path / name
    student.make_copy(str(target), exercises=list(exercises))
    return target


# --- the format, and the table -------------------------------------------------------------------


def test_the_points_table_names_every_check_item_and_nothing_else():
    """points.txt and the checks' items, one to one: an item added or renamed is scored."""
    found = set()
    for n in student.EXERCISES:
        paths = [('check', f'extensions/exercises/ex{n}/check_ex{n}.py')]
        if n > 5:
            paths.append(('grade', f'extensions/exercises/autograder/grade_ex{n}.py'))
        for by, path in paths:
            tree = ast.parse(open(os.path.join(student.ROOT, path)).read())
            for node in tree.body:
                if isinstance(node, ast.FunctionDef) and node.name.startswith('test_'):
                    ids = [None]
                    for d in node.decorator_list:  # @pytest.mark.parametrize('x', [...])
                        if isinstance(d, ast.Call) and getattr(d.func, 'attr', '') == 'parametrize':
                            ids = ast.literal_eval(d.args[1])
                    found |= {(n, by, node.name + (f'[{i}]' if i else '')) for i in ids}
    table = grade.points()
    assert set(table) == found
    visibilities = ('visible', 'hidden', 'after_due_date', 'after_published')
    assert all(v in visibilities for _, v in table.values())
    total = sum(points for points, _ in table.values())
    teacher = open(os.path.join(student.ROOT, 'extensions/exercises/TEACHER.md')).read()
    assert f'{total:g} points in all as shipped' in teacher, total


def test_the_bundle_holds_gradescopes_files_and_the_grader(graders):
    source = graders['all'] / 'source'
    for name in ('setup.sh', 'run_autograder'):
        assert os.access(source / name, os.X_OK), name
        done = subprocess.run(['bash', '-n', str(source / name)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    graded = json.loads((source / 'extensions/exercises/autograder/graded.json').read_text())
    assert graded == {'exercises': [1, 2, 3, 4, 5, 6, 7]}
    assert (source / 'extensions/exercises/ranges.json').exists()  # the grader keeps the ranges


# --- submissions ---------------------------------------------------------------------------------


def test_a_blank_copy_with_cheats_and_copied_runs_scores_nothing(graders, tmp_path, done_right):
    """The blank copy, plus what passed the local checks before: a conftest.py that passes every
    test, an edited check, pytest addopts, a Makefile edit; and the reference's runs, copied in
    with their `code` rewritten to this copy's, and readings written from them. The grader takes
    none of it but the runs and readings, and its reruns of the blank code fail: 0 in all."""
    copy = copy_of(tmp_path, 'cheat', exercises=student.EXERCISES)
    (copy / 'conftest.py').write_text(
        'import pytest\n\n\n@pytest.hookimpl(hookwrapper=True)\n'
        'def pytest_runtest_call(item):\n    item.runtest = lambda: None\n    yield\n'
    )
    check = copy / 'extensions/exercises/ex2/check_ex2.py'
    check.write_text(check.read_text().replace('assert ', 'assert True or '))
    with open(copy / 'pyproject.toml', 'a') as f:
        f.write('\n[tool.pytest]\naddopts = "-p no:python"\n')
    with open(copy / 'Makefile', 'a') as f:
        f.write('\ncheck:\n\t@echo all passed\n')
    said = 'import json, plumbing; print(json.dumps(plumbing.identity()))'
    forged = json.loads(subprocess.check_output([sys.executable, '-c', said], cwd=copy))
    for name in measurements.RUNS[6] | measurements.RUNS[7]:
        for file in ('results.json', 'probe.json'):
            made = plumbing.read_json(done_right / name / file)
            made |= {k: forged[k] for k in ('code', 'code_parts')}  # this copy's, as it claims
            (copy / 'runs' / name).mkdir(parents=True, exist_ok=True)
            plumbing.write_json(str(copy / 'runs' / name / file), made)
    for n in (6, 7):
        shutil.copy(done_right / f'ex{n}.txt', copy / f'extensions/exercises/ex{n}/readings.txt')
    scores, results = autograde(graders['all'], copy)
    assert results['score'] == 0, [t['name'] for t in results['tests'] if t['score']]
    assert set(scores) == set(student.EXERCISES)


def test_the_reference_without_runs_scores_the_code_and_nothing_of_6_and_7(graders, tmp_path):
    """Full points for exercises 1 to 5; readings but no runs: 0 for 6 and 7."""
    copy = copy_of(tmp_path, 'reference')
    for n in (6, 7):
        template = copy / f'extensions/exercises/ex{n}/readings.txt'
        filled = [line.split('#')[0].rstrip() + ' 55.0' if '=' in line else line
                  for line in template.read_text().splitlines()]  # fmt: skip
        template.write_text('\n'.join(filled) + '\n')
    scores, _ = autograde(graders['all'], copy)
    for n in (1, 2, 3, 4, 5):
        assert scores[n][0] == scores[n][1] > 0, (n, scores[n])
    assert scores[6][0] == scores[7][0] == 0, scores


def mutant_source(source, qualname, wrong):
    """source with the function `qualname` replaced by the wrong version's own source."""
    function = getattr(wrong, '__func__', wrong)
    node = student.find(ast.parse(source), qualname)
    text = textwrap.dedent(inspect.getsource(function))
    text = text.replace(f'def {function.__name__}(', f'def {qualname.split(".")[-1]}(', 1)
    for module in ('data', 'model', 'regularizer', 'metrics', 'train'):
        text = text.replace(f'{module}.', '')  # the mutant's module names its own functions
    lines = source.split('\n')
    indented = textwrap.indent(text.rstrip(), ' ' * node.col_offset).split('\n')
    return '\n'.join(lines[: node.lineno - 1] + indented + lines[node.end_lineno :])


def rounds():
    """The wrong versions of test_mutants.py in rounds of one per exercise: the checks of 1 to 5
    read only their own exercise's functions, so one submission grades five at once."""
    per_exercise = {}
    for mutant in test_mutants.MUTANTS:
        per_exercise.setdefault(mutant[0], []).append(mutant)
    return [
        [ms[r] for ms in per_exercise.values() if r < len(ms)]
        for r in range(max(map(len, per_exercise.values())))
    ]


def qualname_of(where, attribute):
    return f'{where.__name__}.{attribute}' if inspect.isclass(where) else attribute


@pytest.mark.parametrize(
    'round_',
    [pytest.param(0, id='round0')]
    + [pytest.param(r, id=f'round{r}', marks=pytest.mark.slow) for r in range(1, len(rounds()))],
)
def test_every_wrong_version_scores_less_than_full(graders, tmp_path, round_):
    copy = copy_of(tmp_path, f'mutants{round_}')
    for _, (where, attribute), wrong in rounds()[round_]:
        function = getattr(wrong, '__func__', wrong)
        path = copy / (inspect.getmodule(where).__name__ + '.py')
        path.write_text(mutant_source(path.read_text(), qualname_of(where, attribute), function))
    scores, results = autograde(graders['code'], copy)
    for exercise, _, wrong in rounds()[round_]:
        name = getattr(wrong, '__func__', wrong).__name__
        assert scores[exercise][0] < scores[exercise][1], f'exercise {exercise}: {name} scored full'


# --- measurements: the grader's reruns against runs made elsewhere --------------------------------


def write_readings(root, exercise):
    """Readings as a student writes them from the printed numbers, and the answers the runs'
    intervals give by the README's rule (an effect is there when its interval lies above 0)."""
    check = importlib.import_module(f'extensions.exercises.ex{exercise}.check_ex{exercise}')
    taps = {
        name: plumbing.read_json(root / name / 'probe.json')['taps']['penultimate']
        for name in measurements.RUNS[exercise]
    }

    def lit(run, key):
        return taps[run][f'{key}_ci'][0] > 0

    if exercise == 6:
        m, specific = lit('memorize', 'memorization'), lit('memorize', 'specific')
        answers = {
            'q1': 'memorization' if lit('plain', 'memorization') else 'capacity',
            'q2': {(1, 1): 'both', (1, 0): 'm', (0, 1): 'specific'}.get((m, specific), 'neither'),
            'q3': 'hidden' if lit('reg', 'specific') else 'removed',
            'q4': 'hidden' if lit('grl', 'specific') else 'removed',
        }
    else:
        answers = {'q1': 'yes' if lit('zhang', 'memorization') else 'no'}
        answers['q2'] = 'the same sample, once trained on and once left out'
    lines = [f'{name} = {reading(root, name)}' for name in check.ASKED]
    lines += [f'{q} = {a}\n{q} why = read from my intervals' for q, a in answers.items()]
    (root / f'ex{exercise}.txt').write_text('\n'.join(lines) + '\n')


def train_runs(root, threads=None):
    """The runs of exercises 6 and 7 (their seed, 1), in a process of their own."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads)) if threads else None
    for runs in measurements.RUNS.values():
        for name, args in runs.items():
            command = [sys.executable, 'train.py', *measurements.COMMON, *args]
            command += ['--out', str(root / name)]
            subprocess.run(command, cwd=student.ROOT, env=env, check=True, capture_output=True)
    for exercise in (6, 7):
        write_readings(root, exercise)
    return root


def submission_with_runs(tmp_path, name, runs):
    copy = copy_of(tmp_path, name)
    shutil.copytree(runs, copy / 'runs', ignore=shutil.ignore_patterns('*.pt', '*.txt'))
    for n in (6, 7):
        shutil.copy(runs / f'ex{n}.txt', copy / f'extensions/exercises/ex{n}/readings.txt')
    return copy


@pytest.mark.slow
@pytest.mark.parametrize('threads', [None, 1], ids=['same-machine', 'other-thread-count'])
def test_honest_work_scores_full(graders, tmp_path, threads):
    """The reference's runs, made as the grader makes them, or with another number of CPU threads
    (other numbers, as another machine's): full points either way."""
    runs = train_runs(tmp_path / 'runs', threads)
    scores, results = autograde(graders['all'], submission_with_runs(tmp_path, 'honest', runs))
    lost = [(t['name'], t['output'][:300]) for t in results['tests'] if t['score'] < t['max_score']]
    assert not lost, lost
