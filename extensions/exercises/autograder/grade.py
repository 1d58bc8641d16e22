"""Grade one submission as Gradescope's run_autograder does (make autograder builds the bundle).

    AUTOGRADER_ROOT=/autograder python -m extensions.exercises.autograder.grade

The submission ($AUTOGRADER_ROOT/submission) is the student copy as the student pushes it: the
core files at its top, the readings under extensions/exercises/, the runs in runs/. It is trusted
for nothing but its own work: the grader makes a fresh copy of the reference from this bundle,
blanks the exercises it grades (as `make student` does), and takes from the submission only the
files a student is meant to change (`student_files`); the checks, the Makefile, conftest.py and
pytest's and ruff's configuration are the bundle's. A run's json is a claim, so the grader reruns
every run of exercises 6 and 7 from the submitted code with the README's commands, and its own
checks (grade_exN.py, never in a student copy) compare the claim with the rerun, the rerun with the
ranges of correct code, and the answers with the student's intervals. Each check item is scored
from points.txt, and $AUTOGRADER_ROOT/results/results.json is written in Gradescope's format.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

import plumbing
from extensions.exercises import measurements, student

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 900  # seconds for one exercise's checks or one rerun: a student's loop that never ends
RUN_FILES = ('results.json', 'probe.json')
# A measurement exercise's items count only when the grader's reruns confirm the submitted runs:
# readings and answers that agree with runs the submitted code does not make are worth nothing.
VERIFIED = ('grade', 'test_your_runs_agree_with_the_graders_reruns')
UNVERIFIED = "not counted: your runs are not confirmed by the grader's reruns of your code"


def graded():
    """The exercises this bundle grades (make autograder EX=...): its own record, not the copy's;
    all of them where there is none (the grader run from the repository itself)."""
    path = os.path.join(HERE, 'graded.json')
    return plumbing.read_json(path)['exercises'] if os.path.exists(path) else [*student.EXERCISES]


def points():
    """points.txt as {(exercise, 'check' or 'grade', item): (points, visibility)}."""
    table = {}
    with open(os.path.join(HERE, 'points.txt')) as f:
        for line in f:
            line = line.split('#', 1)[0].split()
            if line:
                exercise, by, item, value, visibility = line
                table[int(exercise), by, item] = (float(value), visibility)
    return table


def student_files(exercises):
    """What a submission may change: the files holding the functions of the code exercises and
    the readings of the measurement exercises (the runs come beside them, run_names)."""
    found = {path for n in exercises for path, _ in student.BLANKS.get(n, [])}
    return sorted(found | {f'extensions/exercises/ex{n}/readings.txt' for n in exercises if n > 5})


def run_names(exercises):
    return [name for n in exercises for name in measurements.RUNS.get(n, {})]


def top(submission):
    """The folder of the submission that holds the copy: itself, or the one folder inside it
    (a zip of the copy's folder)."""
    if os.path.exists(os.path.join(submission, 'train.py')):
        return submission
    inside = [os.path.join(submission, d) for d in os.listdir(submission)]
    folders = [d for d in inside if os.path.exists(os.path.join(d, 'train.py'))]
    return folders[0] if len(folders) == 1 else submission


def make_work_copy(work, exercises, submission):
    """The reference, blanked where this bundle grades, with the submission's own files on top (a
    file it lacks stays blank, a readings file an empty template); returns what it took."""
    blanked = {n: student.BLANKS[n] for n in exercises if n in student.BLANKS}
    for path in student.files(student.ROOT):
        os.makedirs(os.path.dirname(os.path.join(work, path)) or work, exist_ok=True)
        shutil.copy2(os.path.join(student.ROOT, path), os.path.join(work, path))
    for n, functions in blanked.items():
        for path, qualname in functions:
            with open(os.path.join(work, path)) as f:
                source = student.blank(f.read(), qualname, n)
            with open(os.path.join(work, path), 'w') as f:
                f.write(source)
    taken = []
    wanted = student_files(exercises) + [
        f'runs/{name}/{file}' for name in run_names(exercises) for file in RUN_FILES
    ]
    for path in wanted:
        source = os.path.join(submission, path)
        if os.path.isfile(source) and not os.path.islink(source):
            os.makedirs(os.path.dirname(os.path.join(work, path)), exist_ok=True)
            shutil.copyfile(source, os.path.join(work, path))
            taken.append(path)
    return taken


def rerun(work, exercises, folder):
    """Train every submitted run of the measurement exercises again from the submitted code, as
    the README says, into folder/<name>; a run that fails leaves its output in folder/<name>.log."""
    os.makedirs(folder, exist_ok=True)
    for n in exercises:
        for name, args in measurements.RUNS.get(n, {}).items():
            if not os.path.exists(os.path.join(work, 'runs', name, 'results.json')):
                continue  # not submitted: nothing to compare a rerun with
            command = [sys.executable, 'train.py', *measurements.COMMON, *args]
            command += ['--out', os.path.join(folder, name)]
            with open(os.path.join(folder, f'{name}.log'), 'w') as log:
                try:
                    subprocess.run(command, cwd=work, stdout=log, stderr=log, timeout=TIMEOUT)
                except subprocess.TimeoutExpired:
                    log.write(f'\nthe grader stopped this run after {TIMEOUT} s\n')


def check_files(exercises):
    """The checks of these exercises: each one's check_exN.py, and the grader's own for 6 and 7."""
    files = [f'extensions/exercises/ex{n}/check_ex{n}.py' for n in exercises]
    return files + [f'extensions/exercises/autograder/grade_ex{n}.py' for n in exercises if n > 5]


def run_pytest(work, files, junit, env, timeout):
    """The items of `files`: {(exercise, 'check' or 'grade', item): (passed, what the student
    reads)}, and what pytest said; None for the items if it ran past `timeout`."""
    command = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-o', 'addopts=']
    command += ['-c', os.path.join(work, 'pyproject.toml'), '--rootdir', work]
    command += ['--junitxml', junit, '--tb=short', *files]
    try:
        done = subprocess.run(
            command, cwd=work, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None, f'the checks ran past {timeout} s (a loop that does not end?)'
    outcomes = {}
    for case in ET.parse(junit).iter('testcase') if os.path.exists(junit) else ():
        module = case.get('classname', '').rsplit('.', 1)[-1]  # check_ex6 or grade_ex6
        by, n = module.split('_ex')
        failure = next((c for c in case if c.tag in ('failure', 'error', 'skipped')), None)
        message = 'passed' if failure is None else failure.get('message') or failure.text or ''
        outcomes[int(n), by, case.get('name')] = (failure is None, message.strip())
    return outcomes, done.stdout + done.stderr


def run_checks(work, exercises, folder, env):
    """Every graded item in one pytest process (one start of torch); where that runs past its
    time, each exercise in a process of its own, so that a loop that does not end costs only its
    own exercise. Returns the items and, per exercise, the last line pytest said."""
    outcomes, said = run_pytest(
        work, check_files(exercises), os.path.join(folder, 'all.xml'), env, TIMEOUT
    )
    if outcomes is not None:
        return outcomes, {n: said for n in exercises}
    outcomes, last = {}, {}
    for n in exercises:
        junit = os.path.join(folder, f'ex{n}.xml')
        found, last[n] = run_pytest(work, check_files([n]), junit, env, TIMEOUT)
        outcomes |= found or {}
    return outcomes, last


def grade(root):
    """Grade $AUTOGRADER_ROOT/submission into $AUTOGRADER_ROOT/results/results.json."""
    started, exercises, table = time.time(), graded(), points()
    submission = top(os.path.join(root, 'submission'))
    tests, log = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = os.path.join(tmp, 'work')
        taken = make_work_copy(work, exercises, submission)
        log.append(f'taken from the submission: {", ".join(taken) or "nothing"}')
        env = {k: v for k, v in os.environ.items() if not k.startswith(('PYTEST', 'EXERCISE'))}
        env |= {'GRADER_RERUNS': os.path.join(tmp, 'reruns'), 'PYTHONDONTWRITEBYTECODE': '1'}
        if any(n > 5 for n in exercises):
            rerun(work, exercises, env['GRADER_RERUNS'])
        outcomes, said = run_checks(work, exercises, tmp, env)
        for n in exercises:
            items = [(by, item) for (ex, by, item) in table if ex == n]
            verified = outcomes.get((n, *VERIFIED), (False,))[0] or n < 6
            for number, (by, item) in enumerate(items, 1):
                value, visibility = table[n, by, item]
                passed, message = outcomes.get((n, by, item), (False, ''))
                if (n, by, item) not in outcomes:  # not collected: the check got no further
                    message = 'not run: ' + (said[n].strip().splitlines() or ['no output'])[-1]
                elif passed and not verified:
                    passed, message = False, UNVERIFIED
                tests.append(
                    {
                        'name': f'exercise {n}: {item}',
                        'number': f'{n}.{number}',
                        'score': value if passed else 0.0,
                        'max_score': value,
                        'output': message[-3000:],
                        'visibility': visibility,
                    }
                )
    results = {
        'score': sum(t['score'] for t in tests),
        'execution_time': round(time.time() - started),
        'output': '\n'.join(log),
        'tests': tests,
    }
    os.makedirs(os.path.join(root, 'results'), exist_ok=True)
    with open(os.path.join(root, 'results', 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    return results


def main():
    results = grade(os.environ.get('AUTOGRADER_ROOT', '/autograder'))
    full = sum(t['max_score'] for t in results['tests'])
    print(f'score {results["score"]:g} of {full:g} in {results["execution_time"]} s')


if __name__ == '__main__':
    main()
