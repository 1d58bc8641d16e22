"""What only the grader judges of a measurement exercise (6, 7): its reruns of the student's runs,
the student's runs against them and the reruns against the ranges of correct code (the rules are
measurements.accepted and measurements.tolerance, set so that correct work fails an item with
probability below 1/1000), and the answers against the student's own intervals."""

import os

import plumbing
from extensions.exercises import measurements
from extensions.exercises import readings as R

HERE = os.path.dirname(os.path.abspath(__file__))
RANGES = plumbing.read_json(os.path.join(os.path.dirname(HERE), 'ranges.json'))


def rerun(name):
    """The grader's rerun of run `name`: (results.json, probe.json's penultimate tap)."""
    folder = os.path.join(os.environ['GRADER_RERUNS'], name)
    paths = [os.path.join(folder, f) for f in ('results.json', 'probe.json')]
    if not all(os.path.exists(p) for p in paths):
        log = os.path.join(os.environ['GRADER_RERUNS'], f'{name}.log')
        said = []
        if os.path.exists(log):
            with open(log) as f:
                said = f.read().strip().splitlines()[-6:]
        raise AssertionError(
            f'the grader could not rerun "{name}" from your code:\n' + '\n'.join(said)
        )
    results, probe = (plumbing.read_json(p) for p in paths)
    assert results['status'] == 'done', f'the grader\'s rerun of "{name}" {results["status"]}'
    return results, probe['taps']['penultimate']


def reran_all(exercise):
    """Every run the student submitted, rerun: a run not submitted earns nothing here."""
    for name in measurements.RUNS[exercise]:
        R.run(exercise, name)
        rerun(name)


def agree(exercise):
    """Every number of the student's runs within the tolerance of the grader's rerun."""
    names = measurements.RUNS[exercise]
    m = len(names) * len(measurements.KEYS)
    for name in names:
        mine = R.numbers(*R.run(exercise, name))
        theirs = R.numbers(*rerun(name))
        for key in measurements.KEYS:
            gap = abs(mine[key] - theirs[key])
            allowed = measurements.tolerance(RANGES[str(exercise)][name][key], m)
            assert gap <= allowed, (
                f"{name} {key}: your run says {100 * mine[key]:.2f}, the grader's rerun of your "
                f'code {100 * theirs[key]:.2f}; two machines differ by at most '
                f'{100 * allowed:.2f} points here. Was the run made by the code you submitted?'
            )


def in_ranges(exercise):
    """Every number of every rerun within the range of correct code."""
    for name in measurements.RUNS[exercise]:
        R.run(exercise, name)  # a run not submitted earns nothing here
        found = R.numbers(*rerun(name))
        for key in measurements.KEYS:
            r = RANGES[str(exercise)][name][key]
            lo, hi = measurements.accepted(r, key, len(measurements.KEYS))
            assert lo <= found[key] <= hi, (
                f"{name} {key} = {100 * found[key]:.1f} in the grader's rerun of your code: "
                f'correct code lands within {100 * lo:.1f} to {100 * hi:.1f} all but once in a '
                'thousand. Unusual: check the functions this run uses, and that your runs are '
                "the README's commands."
            )


def answer(given, name, choices, expected):
    """The answer is the one the student's own intervals give."""
    choice = given.get(name, '')
    assert choice in choices, f'answer {name} = "{choice}": not one of {", ".join(choices)}'
    assert choice == expected, (
        f"answer {name} = {choice}: by the README's rule your intervals say {expected}"
    )
