"""Everything to measure on a GPU, in one call: python -m extensions.gpu.gpu_check [--tiny]

For a lent GPU machine (Python 3.12, torch 2.11, no internet; Fashion-MNIST's four .gz files carried
into data/FashionMNIST/raw or /usr/share/datasets/fashion-mnist), within about 8 minutes:
  1. the test suite's CUDA-only tests;
  2. the benchmark (extensions/bench): images/s of WRN-16-4 and ResNet-18 with and without the heads
     and the `reg` term, eager and compiled, bf16, against a conventional DataLoader;
  3. two epochs of the cifar10 study's baseline run on CIFAR-shaped synthetic data: the time of an
     epoch, and the study's time projected from it (16 runs of 30 epochs, each with its controls);
  4. a short Fashion-MNIST WRN-16-4 run with per-class heads at every tap, and its controls.
Writes DIR/gpu_check.json and DIR/gpu_check.md (one table). --tiny: the same steps at CPU sizes
(the small CNN, synthetic data, a few steps), to try the script before a GPU is lent.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import torch

from extensions.bench import bench
from extensions.report.markdown import table

STUDY_RUNS, STUDY_EPOCHS = 16, 30  # make cifar10: 6 regularizers, the control, 9 unlearning runs


def sh(argv, log):
    """Run a command, its output appended to log; returns (exit code, seconds)."""
    t0 = time.perf_counter()
    with open(log, 'a') as f:
        code = subprocess.call(argv, stdout=f, stderr=subprocess.STDOUT)
    return code, time.perf_counter() - t0


def train(out, log, *args):
    argv = [sys.executable, 'train.py', '--out', out, *args]
    code, seconds = sh(argv, log)
    results = json.load(open(os.path.join(out, 'results.json'))) if code == 0 else None
    probe_path = os.path.join(out, 'probe.json')
    probe = json.load(open(probe_path)) if os.path.exists(probe_path) else None
    return {'code': code, 'seconds': seconds, 'results': results, 'probe': probe}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--tiny', action='store_true', help='CPU sizes, to try the script')
    p.add_argument('--out', default=os.environ.get('OUT', 'results/gpu-check'))
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    log = os.path.join(args.out, 'gpu_check.log')
    cuda = torch.cuda.is_available()
    out = {'torch': torch.__version__, 'device': torch.cuda.get_device_name() if cuda else 'cpu'}
    out['tiny'] = args.tiny

    tests = [sys.executable, '-m', 'pytest', '-q', '-k', 'cuda', 'tests', 'extensions']
    code, seconds = sh(tests, log)
    out['cuda_tests'] = {'code': code, 'seconds': seconds}

    out['bench'] = {}
    steps = ['--steps', '3', '--batch-size', '32', '--workers', '1'] if args.tiny else []
    for model in ['cnn'] if args.tiny else ['wrn16_4', 'resnet18']:
        compiled = [] if args.tiny else ['--compile']
        out['bench'][model] = bench.main(['--model', model, *steps, *compiled])

    tiny = ['--subset', '512', '--test-subset', '256', '--model', 'cnn']
    size = tiny if args.tiny else ['--model', 'wrn16_4']
    baseline = ['--dataset', 'fake', '--fake-like', 'cifar10', '--epochs', '2', '--taps', 'all']
    baseline += ['--weight-decay', '0', '--no-augment', *size]  # the study's `none` run
    study = train(os.path.join(args.out, 'cifar10-none'), log, *baseline)
    if study['results']:
        epoch = min(h['seconds'] for h in study['results']['history'])
        rest = study['seconds'] - sum(h['seconds'] for h in study['results']['history'])
        out['cifar10_projection'] = {
            'epoch_seconds': epoch,
            'other_seconds_per_run': rest,  # start-up, evaluation, the controls
            'study_minutes': STUDY_RUNS * (STUDY_EPOCHS * epoch + rest) / 60,
        }
    out['cifar10_run'] = {k: study[k] for k in ('code', 'seconds')}

    fm = [
        '--dataset',
        'fashion-mnist',
        '--epochs',
        '1' if args.tiny else '3',
        '--rlp-head',
        'per-class',
    ]
    fm += ['--taps', 'all', *size]
    run = train(os.path.join(args.out, 'fashion-mnist-wrn'), log, *fm)
    out['fashion_mnist'] = {k: run[k] for k in ('code', 'seconds')}
    if run['probe']:
        t = run['probe']['taps']['penultimate']
        keys = ('a_train', 'a_fresh', 'a_heldout', 'a_init', 'memorization', 'memorization_ci')
        out['fashion_mnist'] |= {k: t[k] for k in keys}
        out['fashion_mnist']['test_acc'] = run['results']['final']['test_acc']

    with open(os.path.join(args.out, 'gpu_check.json'), 'w') as f:
        json.dump(out, f, indent=1)
    rows = [
        [model, name, f'{v:,.0f}'] for model, r in out['bench'].items() for name, v in r.items()
    ]
    text = [
        f'# GPU check: {out["device"]}, torch {out["torch"]}',
        table(['model', 'row', 'images/s'], rows),
    ]
    if 'cifar10_projection' in out:
        c = out['cifar10_projection']
        text.append(
            f'One epoch of the cifar10 baseline: {c["epoch_seconds"]:.1f} s; the study, '
            f'projected: {c["study_minutes"]:.1f} minutes.'
        )
    with open(os.path.join(args.out, 'gpu_check.md'), 'w') as f:
        f.write('\n\n'.join(text) + '\n')
    print(json.dumps(out, indent=1))
    return out


if __name__ == '__main__':
    main()
