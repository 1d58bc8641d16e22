"""The runs of the measurement exercises, and the ranges the grader accepts them in.

    python -m extensions.exercises.measurements       # 10 seeds of each run: writes ranges.json

Exercise 6 (capstone) trains a plain network, the positive control (--memorize), the output
regularizer at λ = 1 and gradient reversal at λ = 1 with the DANN ramp on the same small synthetic
task; exercise 7 trains on fully random class labels (Zhang et al. 2017). ranges.json holds every
number of every run over seeds 0..9 (each seed also draws its own random labels and training
images). The grader (autograder/judge.py; a student copy holds neither it nor ranges.json) takes
two rules from them, each set so that correct work fails an item with probability below ALPHA:
- `accepted`: where a correct rerun lands. Correct code written differently draws another random
  stream, so it lands like another seed: the t prediction interval of one more draw, mean ±
  t(1 − α/2m, n − 1)·sd·√(1 + 1/n) over the n seeds, Bonferroni over the m numbers an item checks,
  never narrower than ± MIN_HALF_WIDTH, clipped to what the number can be.
- `tolerance`: how far a correct run made on another machine lands from the grader's rerun of the
  same command. Another thread count, CPU or torch version changes the order of floating-point
  sums and training amplifies it (TEACHER.md gives what was measured); such a pair is never further
  apart than two seeds, which differ in the rounding and in everything else besides:
  t(1 − α/2m, n − 1)·sd·√2.
Both assume the seeds' numbers roughly normal; where they are not (the positive control's online
head saturates in some seeds), the range is wider than needed, never narrower.
"""

import json
import math
import os
import statistics
import sys
import tempfile

import plumbing
import train

HERE = os.path.dirname(os.path.abspath(__file__))
COMMON = ['--dataset', 'fake', '--fake-like', 'fashion-mnist', '--subset', '512']
COMMON += ['--test-subset', '512']
COMMON += ['--batch-size', '64', '--lr', '0.1', '--weight-decay', '0', '--no-augment']
COMMON += ['--rlp-head', 'shared', '--device', 'cpu']
# the exercises' seed: not the README's worked example (seed 0), whose printed numbers would answer
# the capstone; seed N is both --seed and --label-seed (initialization, order, labels, images)
SEED = 1
COMMON += ['--seed', str(SEED), '--label-seed', str(SEED)]
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
ALPHA, MIN_HALF_WIDTH = 0.001, 0.02
KEYS = ('train_acc', 'test_acc', 'online', 'a_train', 'a_fresh', 'a_heldout', 'a_init')
KEYS += ('memorization', 'specific')


def numbers(exercise, name, seed, root):
    """Train one run of an exercise (seed also draws the labels) and read its numbers."""
    out = os.path.join(root, f'ex{exercise}-{name}-seed{seed}')
    seeded = ['--seed', str(seed), '--label-seed', str(seed)]  # after COMMON's: the last counts
    args = [*COMMON, *RUNS[exercise][name], *seeded]
    results = train.run(train.parse_args([*args, '--out', out]))
    with open(os.path.join(out, 'probe.json')) as f:
        tap = json.load(f)['taps']['penultimate']
    found = {k: results['final'][k] for k in ('train_acc', 'test_acc')} | {'online': tap['online']}
    return found | {k: tap[k] for k in KEYS[3:]}


# what a number can be: an accuracy a proportion, a difference of two accuracies within ±1
BOUNDS = {'memorization': (-1.0, 1.0), 'specific': (-1.0, 1.0)}


def summary(values):
    """What ranges.json keeps of one number over the seeds."""
    mean, sd = statistics.mean(values), statistics.stdev(values)
    return {'min': min(values), 'max': max(values), 'mean': mean, 'sd': sd, 'values': values}


def accepted(r, key, m):
    """Where a correct rerun's `key` lands, all but ALPHA / m of the time (r: its summary)."""
    n = len(r['values'])
    half = plumbing.t_quantile(n - 1, 1 - ALPHA / (2 * m)) * r['sd'] * math.sqrt(1 + 1 / n)
    lo, hi = BOUNDS.get(key, (0.0, 1.0))
    half = max(half, MIN_HALF_WIDTH)
    return max(lo, r['mean'] - half), min(hi, r['mean'] + half)


def tolerance(r, m):
    """How far a correct run of another machine lands from a rerun, but ALPHA / m of the time."""
    n = len(r['values'])
    return max(plumbing.t_quantile(n - 1, 1 - ALPHA / (2 * m)) * r['sd'] * math.sqrt(2), 0.005)


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

    rows = [f'| exercise | run | number | seed {SEED} | mean ± sd (10 seeds) | min – max |']
    rows[0] += ' accepted | tolerance |'
    rows += ['| --- | --- | --- | --- | --- | --- | --- | --- |']
    for exercise, name, keys in TABLE:
        r = ranges[str(exercise)][name]
        for key in keys:
            lo, hi = accepted(r[key], key, len(KEYS))
            within = tolerance(r[key], len(RUNS[exercise]) * len(KEYS))
            cells = [str(exercise), name, names.get(key, key), pc(r[key]['values'][SEED])]
            cells += [f'{pc(r[key]["mean"])} ± {pc(r[key]["sd"])}']
            cells += [f'{pc(r[key]["min"])} – {pc(r[key]["max"])}', f'{pc(lo)} – {pc(hi)}']
            rows.append('| ' + ' | '.join([*cells, f'± {pc(within)}']) + ' |')
    return '\n'.join(rows)


def main():
    ranges = {}
    with tempfile.TemporaryDirectory() as root:
        for exercise, runs in RUNS.items():
            for name in runs:
                seen = [numbers(exercise, name, seed, root) for seed in SEEDS]
                measured = {k: summary([s[k] for s in seen]) for k in KEYS}
                ranges.setdefault(str(exercise), {})[name] = measured
                print(exercise, name, {k: round(v['mean'], 3) for k, v in measured.items()})
    ranges['how'] = f'seeds {list(SEEDS)} on {sys.platform}, torch {train.torch.__version__}'
    with open(os.path.join(HERE, 'ranges.json'), 'w') as f:
        json.dump(ranges, f, indent=1)


if __name__ == '__main__':
    main()
