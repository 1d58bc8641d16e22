"""What only the grader judges of a measurement exercise (6, 7): its reruns of the student's runs,
how far correct work may land from them and from the reference, and the answers.

Two rules, both set so that correct work fails an item with probability below ALPHA = 1/1000:
- **Ranges of correct code.** ranges.json holds n = 10 seeds of every run of the reference code
  (measurements.py; a seed also draws the random labels and the images, and correct code written
  differently draws another random stream, so it lands like another seed). A rerun's number is
  accepted within the t prediction interval of one more draw, mean ± t(1 − α/2m, n − 1)·sd·√(1 +
  1/n), where m is the number of numbers the item checks (Bonferroni), never narrower than
  ± MIN_HALF_WIDTH, and clipped to what the number can be (an accuracy lies in [0, 1]).
- **The student's runs against the grader's reruns.** The same command and seed on another
  machine (another thread count, CPU or torch version) changes the order of floating-point sums,
  and training amplifies it: measured here, one run at 1 and at 2 threads differs by up to a point
  (TEACHER.md). Such a pair is never further apart than two seeds, which differ in the rounding and
  in everything else besides, so a claim is accepted within t(1 − α/2m, n − 1)·sd·√2 of the rerun.
Both assume the seeds' numbers roughly normal; where they are not (the positive control's online
head saturates in some seeds), the interval is wider than needed, never narrower.
"""

import math
import os

import plumbing
from extensions.exercises import measurements
from extensions.exercises import readings as R

HERE = os.path.dirname(os.path.abspath(__file__))
RANGES = plumbing.read_json(os.path.join(os.path.dirname(HERE), 'ranges.json'))
ALPHA, MIN_HALF_WIDTH = 0.001, 0.02
DIFFERENCES = ('memorization', 'specific')  # in [-1, 1]; every other number is an accuracy


def seeds(exercise, name, key):
    values = RANGES[str(exercise)][name][key]['values']
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, sd, n


def accepted(exercise, name, key, m):
    """The range a correct rerun's `key` lands in, but with probability ALPHA / m."""
    mean, sd, n = seeds(exercise, name, key)
    half = plumbing.t_quantile(n - 1, 1 - ALPHA / (2 * m)) * sd * math.sqrt(1 + 1 / n)
    lo, hi = (-1.0, 1.0) if key in DIFFERENCES else (0.0, 1.0)
    half = max(half, MIN_HALF_WIDTH)
    return max(lo, mean - half), min(hi, mean + half)


def tolerance(exercise, name, key, m):
    """How far a correct run of another machine may land from the grader's rerun."""
    _, sd, n = seeds(exercise, name, key)
    return max(plumbing.t_quantile(n - 1, 1 - ALPHA / (2 * m)) * sd * math.sqrt(2), 0.005)


def rerun(name):
    """The grader's rerun of run `name`: (results.json, probe.json's penultimate tap)."""
    folder = os.path.join(os.environ['GRADER_RERUNS'], name)
    paths = [os.path.join(folder, f) for f in ('results.json', 'probe.json')]
    if not all(os.path.exists(p) for p in paths):
        log = os.path.join(os.environ['GRADER_RERUNS'], f'{name}.log')
        said = open(log).read().strip().splitlines()[-6:] if os.path.exists(log) else []
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
            gap, allowed = abs(mine[key] - theirs[key]), tolerance(exercise, name, key, m)
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
            lo, hi = accepted(exercise, name, key, len(measurements.KEYS))
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
