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
EXERCISES = os.path.dirname(HERE)
TIMEOUT = 900  # seconds for one exercise's checks or one rerun: a student's loop that never ends


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
    """What a submission may change: the files holding the functions of the code exercises, the
    script of exercise 1, the readings of the measurement exercises."""
    found = {path for n in exercises for path, _ in student.BLANKS.get(n, [])}
    found |= {'extensions/exercises/ex1/redraw.py'} if 1 in exercises else set()
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
    """The reference, blanked where this bundle grades, with the submission's own files on top;
    returns the files taken from the submission."""
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
    for n in exercises:  # an unfilled template unless the student filled it
        template = os.path.join(EXERCISES, f'ex{n}', 'readings.txt')
        if n > 5:
            shutil.copy2(template, os.path.join(work, 'extensions', 'exercises', f'ex{n}'))
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


RUN_FILES = ('results.json', 'probe.json')
# A measurement exercise's items count only when the grader's reruns confirm the submitted runs:
# readings and answers that agree with runs the submitted code does not make are worth nothing.
VERIFIED = ('grade', 'test_your_runs_agree_with_the_graders_reruns')
UNVERIFIED = "not counted: your runs are not confirmed by the grader's reruns of your code"


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


def run_checks(work, n, junit, env):
    """Exercise n's items: {(by, item): (passed, what the student reads)}."""
    files = [f'extensions/exercises/ex{n}/check_ex{n}.py']
    if n > 5:
        files.append(f'extensions/exercises/autograder/grade_ex{n}.py')
    command = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-o', 'addopts=']
    command += ['-c', os.path.join(work, 'pyproject.toml'), '--rootdir', work]
    command += ['--junitxml', junit, '--tb=short', *files]
    try:
        done = subprocess.run(
            command, cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT
        )
        said = done.stdout + done.stderr
    except subprocess.TimeoutExpired:
        said = f'the check of exercise {n} ran past {TIMEOUT} s (a loop that does not end?)'
    if not os.path.exists(junit):
        return {}, said
    outcomes = {}
    for case in ET.parse(junit).iter('testcase'):
        by = 'grade' if case.get('classname', '').endswith(f'grade_ex{n}') else 'check'
        failure = next((c for c in case if c.tag in ('failure', 'error', 'skipped')), None)
        message = 'passed' if failure is None else failure.get('message') or failure.text or ''
        outcomes[by, case.get('name')] = (failure is None, message.strip())
    return outcomes, said


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
        for n in exercises:
            outcomes, said = run_checks(work, n, os.path.join(tmp, f'ex{n}.xml'), env)
            items = [(by, item) for (ex, by, item) in table if ex == n]
            verified = outcomes.get(VERIFIED, (False,))[0] or n < 6
            for number, (by, item) in enumerate(items, 1):
                value, visibility = table[n, by, item]
                passed, message = outcomes.get((by, item), (False, ''))
                if (by, item) not in outcomes:  # not collected: the check did not get that far
                    message = 'not run: ' + (said.strip().splitlines() or ['no output'])[-1]
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
