"""The runs of the measurement exercises, and the ranges their checks accept.

    python -m extensions.exercises.measurements       # 10 seeds of each run: writes ranges.json

Exercise 6 (capstone) trains a plain network, the positive control (--memorize), the output
regularizer at λ = 1 and gradient reversal at λ = 1 with the DANN ramp on the same small synthetic
task; exercise 7 trains on fully random class labels (Zhang et al. 2017). A check reads the
student's seed-0 runs and accepts each number within the range measured over seeds 0..9 (each seed
also draws its own random labels and training images) widened by MARGIN_SD of their standard
deviation on each side, and never narrower than MIN_HALF_WIDTH: machines and torch versions change
the order of floating-point sums, so a rerun lands within the seeds' spread, not to the digit.
"""

import json
import os
import statistics
import sys
import tempfile

import train

HERE = os.path.dirname(os.path.abspath(__file__))
COMMON = ['--dataset', 'fake', '--fake-like', 'fashion-mnist', '--subset', '512']
COMMON += ['--test-subset', '512']
COMMON += ['--batch-size', '64', '--lr', '0.1', '--weight-decay', '0', '--no-augment']
COMMON += ['--rlp-head', 'shared', '--device', 'cpu']
RUNS = {
    6: {
        'plain': ['--epochs', '10'],
        'memorize': ['--epochs', '10', '--memorize'],
        'reg': ['--epochs', '10', '--unlearn', 'reg', '--lam', '1'],
        'grl': ['--epochs', '10', '--unlearn', 'grl', '--lam', '1', '--lam-schedule', 'dann'],
    },
    7: {'zhang': ['--epochs', '25', '--label-noise', '1']},
}
SEEDS = range(10)
MARGIN_SD, MIN_HALF_WIDTH = 4, 0.02
KEYS = ('train_acc', 'test_acc', 'online', 'a_train', 'a_fresh', 'a_heldout', 'a_init')
KEYS += ('memorization', 'specific')


def numbers(exercise, name, seed, root):
    """Train one run of an exercise (seed also draws the labels) and read its numbers."""
    out = os.path.join(root, f'ex{exercise}-{name}-seed{seed}')
    args = [*COMMON, *RUNS[exercise][name], '--seed', str(seed), '--label-seed', str(seed)]
    results = train.run(train.parse_args([*args, '--out', out]))
    with open(os.path.join(out, 'probe.json')) as f:
        tap = json.load(f)['taps']['penultimate']
    found = {k: results['final'][k] for k in ('train_acc', 'test_acc')} | {'online': tap['online']}
    return found | {k: tap[k] for k in KEYS[3:]}


def accepted(values):
    """The range a check accepts from a list of measured values."""
    mean, sd = statistics.mean(values), statistics.stdev(values)
    half = max(MARGIN_SD * sd, MIN_HALF_WIDTH)
    return {
        'min': min(values),
        'max': max(values),
        'mean': mean,
        'sd': sd,
        'accepted': [mean - half, mean + half],
        'values': values,
    }


def main():
    ranges = {}
    with tempfile.TemporaryDirectory() as root:
        for exercise, runs in RUNS.items():
            for name in runs:
                seen = [numbers(exercise, name, seed, root) for seed in SEEDS]
                measured = {k: accepted([s[k] for s in seen]) for k in KEYS}
                ranges.setdefault(str(exercise), {})[name] = measured
                print(exercise, name, {k: round(v['mean'], 3) for k, v in measured.items()})
    ranges['how'] = f'seeds {list(SEEDS)} on {sys.platform}, torch {train.torch.__version__}'
    with open(os.path.join(HERE, 'ranges.json'), 'w') as f:
        json.dump(ranges, f, indent=1)


if __name__ == '__main__':
    main()
