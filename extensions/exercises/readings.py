"""What the measurement checks (exercises 6 and 7) read: your runs and your readings file.

Your runs are the README's commands, in runs/<name>/ (EXERCISE_RUNS= another folder). Your
readings are extensions/exercises/exN/readings.txt (EXERCISE_READINGS= another file): one
`name = value` per line, as the template lists them, `#` starts a comment. A check then asks
three things of your work, and doing nothing fails all three:
  1. the runs are there, made by the README's commands and by the code as it is now (the code
     each run ran: a function its options never reach may have changed since, plumbing.same_code);
  2. your readings are your runs' numbers (accuracies in %, differences in points, one decimal);
  3. each answer is one of its choices and has a line saying why.
It does not say whether an answer is right, nor whether your runs land where correct code lands:
the grader does (autograder/, in the teacher's repository only), from its own reruns of your code.
"""

import os
import re

import plumbing
import train
from extensions.exercises.measurements import COMMON, KEYS, RUNS

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PLACE = ('out', 'device', 'data_dir', 'probe', 'compile')  # may differ from the README's command


def runs_folder():
    return os.path.join(ROOT, os.environ.get('EXERCISE_RUNS', 'runs'))


def run(exercise, name):
    """(results.json, probe.json's penultimate tap) of your run `name`, checked: it is there, it
    ran the README's command, and the code as it is now made it."""
    folder = os.path.join(runs_folder(), name)
    files = [os.path.join(folder, f) for f in ('results.json', 'probe.json')]
    for path in files:
        assert os.path.exists(path), f'{path}: missing; run the README\'s command for "{name}"'
    results, probe = (plumbing.read_json(path) for path in files)
    argv = [*COMMON, *RUNS[exercise][name], '--out', folder]
    expected = vars(train.build_parser().parse_args(argv))
    differ = [k for k in expected if k not in PLACE and results['config'].get(k) != expected[k]]
    assert not differ, f"{folder} ran with other options than the README's: --{differ[0]}"
    for made in (results, probe):  # not stale numbers of code it ran that you have fixed since
        same = plumbing.same_code(made, results['config'])  # edits to code it never ran: same
        assert same, plumbing.other_code(folder, made.get('code'))
    assert results['status'] == 'done', f'{folder}: the run {results["status"]}'
    return results, probe['taps']['penultimate']


def numbers(results, tap):
    """The numbers of a run that the ranges and the readings speak of (fractions)."""
    found = {k: results['final'][k] for k in ('train_acc', 'test_acc')} | {'online': tap['online']}
    return found | {k: tap[k] for k in KEYS[3:]}


def readings(exercise):
    """Your readings file as {name: text}; blank lines and # comments skipped."""
    default = os.path.join(HERE, f'ex{exercise}', 'readings.txt')
    path = os.environ.get('EXERCISE_READINGS', default)
    assert os.path.exists(path), f'{path}: missing; copy the template of the README'
    out = {}
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                name, _, value = line.partition('=')
                out[name.strip()] = value.strip()
    return out


def number(text, name):
    """A reading as a number: '55.7', '55.7%', '+0.3'."""
    match = re.fullmatch(r'\s*([+-−]?\d+(?:\.\d+)?)\s*%?\s*', text.replace('−', '-'))
    assert match, f'reading {name} = "{text}": write the number, e.g. 55.7'
    return float(match.group(1))


def interval(text, name):
    """A reading as an interval: '[-1.9, +1.1]'."""
    parts = re.fullmatch(r'\s*\[(.*),(.*)\]\s*', text)
    assert parts, f'reading {name} = "{text}": write the interval, e.g. [-1.9, +1.1]'
    return number(parts.group(1), name), number(parts.group(2), name)


def same(reading, value, name, decimals=1):
    """A reading equals a number of your run, as it rounds to `decimals` places."""
    slack = 0.5 * 10**-decimals + 1e-9
    assert abs(reading - value) <= slack, f'reading {name} = {reading}: your run says {value:.3f}'


def compare(given, asked, found):
    """Every reading asked for is filled in and equals your run's number. Names: '<run> <number>'
    (an accuracy in %: online, a_train, a_fresh, a_heldout, a_init, train_acc, test_acc; or
    m = a_fresh - a_heldout in points), '<run> m interval' and '<run> a_train - a_fresh interval'
    (points), '<run> lam after epoch N' (results.json's history, two decimals)."""
    for name in asked:
        text = given.get(name, '')
        assert text, f'readings: fill in "{name} = ..."'
        run, key = name.split(' ', 1)
        results, tap = found[run]
        if key.startswith('lam after epoch'):
            epoch = int(key.split()[-1])
            same(number(text, name), results['history'][epoch - 1]['lam'], name, decimals=2)
        elif key.endswith(' interval'):
            ci = tap['memorization_ci' if key == 'm interval' else 'specific_ci']
            for mine, theirs in zip(interval(text, name), ci, strict=True):
                same(mine, 100 * theirs, name)
        else:
            value = numbers(results, tap)['memorization' if key == 'm' else key]
            same(number(text, name), 100 * value, name)


def choice_with_why(given, name, choices):
    """An answer is one of the choices, with a line why (the check does not say if it is right)."""
    choice = given.get(name, '')
    assert choice in choices, f'answer {name} = "{choice}": write one of {", ".join(choices)}'
    why = given.get(f'{name} why', '')
    assert len(why.split()) >= 3, f'answer {name}: write one line why, after "{name} why ="'


def above(ci):
    """Where an interval lies against 0: 'above', 'below' or 'holds 0'."""
    return 'above' if ci[0] > 0 else 'below' if ci[1] < 0 else 'holds 0'
