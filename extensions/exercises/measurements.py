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


# what a number can be: an accuracy a proportion, a difference of two accuracies within ±1
BOUNDS = {'memorization': (-1.0, 1.0), 'specific': (-1.0, 1.0)}


def accepted(values, bounds=(0.0, 1.0)):
    """The range a check accepts from a list of measured values, clipped to what they can be."""
    mean, sd = statistics.mean(values), statistics.stdev(values)
    half = max(MARGIN_SD * sd, MIN_HALF_WIDTH)
    return {
        'min': min(values),
        'max': max(values),
        'mean': mean,
        'sd': sd,
        'accepted': [max(bounds[0], mean - half), min(bounds[1], mean + half)],
        'values': values,
    }


# TEACHER.md's table of the ranges: (exercise, run, numbers)
TABLE = [(6, 'plain', ('online', 'a_train', 'a_fresh', 'a_heldout', 'a_init'))]
TABLE += [(6, 'plain', ('memorization', 'specific', 'test_acc'))]
TABLE += [(6, 'memorize', ('online', 'a_train', 'a_fresh', 'memorization', 'specific'))]
TABLE += [(6, name, ('online', 'a_train', 'memorization', 'specific')) for name in ('reg', 'grl')]
TABLE += [(7, 'zhang', ('train_acc', 'test_acc', 'a_train', 'a_fresh', 'a_heldout', 'a_init'))]
TABLE += [(7, 'zhang', ('memorization',))]


def table(ranges):
    """The rows of TEACHER.md's table from ranges.json: in % (differences in points)."""
    names = {'memorization': 'm', 'specific': 'a_train − a_fresh'}

    def pc(x):
        return f'{100 * x:.1f}'.replace('-', '−')

    rows = ['| exercise | run | number | seed 0 | mean ± sd (10 seeds) | min – max | accepted |']
    rows += ['| --- | --- | --- | --- | --- | --- | --- |']
    for exercise, name, keys in TABLE:
        for key in keys:
            r = ranges[str(exercise)][name][key]
            lo, hi = r['accepted']
            cells = [str(exercise), name, names.get(key, key), pc(r['values'][0])]
            cells += [f'{pc(r["mean"])} ± {pc(r["sd"])}', f'{pc(r["min"])} – {pc(r["max"])}']
            rows.append('| ' + ' | '.join([*cells, f'{pc(lo)} – {pc(hi)}']) + ' |')
    return '\n'.join(rows)


def main():
    ranges = {}
    with tempfile.TemporaryDirectory() as root:
        for exercise, runs in RUNS.items():
            for name in runs:
                seen = [numbers(exercise, name, seed, root) for seed in SEEDS]
                measured = {
                    k: accepted([s[k] for s in seen], BOUNDS.get(k, (0.0, 1.0))) for k in KEYS
                }
                ranges.setdefault(str(exercise), {})[name] = measured
                print(exercise, name, {k: round(v['mean'], 3) for k, v in measured.items()})
    ranges['how'] = f'seeds {list(SEEDS)} on {sys.platform}, torch {train.torch.__version__}'
    with open(os.path.join(HERE, 'ranges.json'), 'w') as f:
        json.dump(ranges, f, indent=1)


if __name__ == '__main__':
    main()
