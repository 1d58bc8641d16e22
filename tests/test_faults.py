"""Bad input fails fast with one line and exit code 2; a run killed at any moment resumes to the
same result."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT, TINY, interrupt_in_epoch_two, run_train, write_cifar

import data
import plumbing
import train

BAD = {  # name: extra arguments (after TINY, so they override it)
    'unknown dataset': ['--dataset', 'imagenet'],
    'unknown model': ['--model', 'vgg'],
    'unknown head layout': ['--rlp-head', 'diagonal'],
    'unknown taps': ['--taps', 'some'],
    'unknown unlearning': ['--unlearn', 'yes'],
    'unknown lam schedule': ['--lam-schedule', 'fast'],
    'unknown flag': ['--learning-rate', '0.1'],
    'K = 1': ['--random-labels', '1'],
    'K = 0': ['--random-labels', '0'],
    'negative lam': ['--lam', '-1'],
    'nan lam': ['--lam', 'nan'],
    'infinite lam': ['--lam', 'inf'],
    'zero epochs': ['--epochs', '0'],
    'epochs not a number': ['--epochs', 'ten'],
    'zero batch size': ['--batch-size', '0'],
    'negative batch size': ['--batch-size', '-5'],
    'zero subset': ['--subset', '0'],
    'subset larger than dataset': ['--subset', '60001'],
    'test subset larger than dataset': ['--test-subset', '10001'],
    'zero lr': ['--lr', '0'],
    'nan lr': ['--lr', 'nan'],
    'negative weight decay': ['--weight-decay', '-1e-4'],
    'dropout 1': ['--dropout', '1'],
    'label smoothing above 1': ['--label-smoothing', '1.5'],
    'label noise above 1': ['--label-noise', '1.5'],
    'negative label noise': ['--label-noise', '-0.1'],
}


def assert_one_line_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        train.main(argv)
    err = capsys.readouterr().err
    assert (
        e.value.code == 2
        and err.count('\n') == 1
        and 'Traceback' not in err
        and err.startswith('train.py: error: ')
    ), err
    return err


@pytest.mark.parametrize('name', BAD)
def test_bad_flag_is_one_line_and_exit_2(name, tmp_path, capsys):
    err = assert_one_line_exit_2([*TINY, '--out', str(tmp_path), *BAD[name]], capsys)
    flag = next(a for a in BAD[name] if a.startswith('--'))
    assert flag in err, err


def test_unwritable_output_dir(tmp_path, capsys):
    (tmp_path / 'file').write_text('')
    assert '--out' in assert_one_line_exit_2(
        [*TINY, '--out', str(tmp_path / 'file' / 'run')], capsys
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is visible')
def test_cuda_without_a_gpu(tmp_path, capsys):
    assert '--device cuda' in assert_one_line_exit_2(
        [*TINY, '--out', str(tmp_path), '--device', 'cuda'], capsys
    )


def test_missing_dataset_offline(tmp_path, capsys, monkeypatch, no_debian_fashion_mnist):
    monkeypatch.setattr(
        plumbing,
        'download',
        lambda make, source: (_ for _ in ()).throw(data.DataError(f'no internet; get {source}')),
    )
    for name in ('cifar10', 'cifar100', 'fashion-mnist'):
        err = assert_one_line_exit_2(
            [
                '--dataset',
                name,
                '--data-dir',
                str(tmp_path / 'empty'),
                '--out',
                str(tmp_path / name),
            ],
            capsys,
        )
        assert f'--dataset {name}' in err


def test_corrupt_dataset(tmp_path, capsys):
    write_cifar(tmp_path, 'cifar100')
    (tmp_path / 'cifar-100-python' / 'test').write_bytes(b'not a pickle')
    assert 'corrupt' in assert_one_line_exit_2(
        ['--dataset', 'cifar100', '--data-dir', str(tmp_path), '--out', str(tmp_path / 'r')], capsys
    )


def test_a_run_made_before_an_option_existed_is_that_option_off():
    """A stored config without a later option (None: off) is the same run; a value is not."""
    now = {'lr': 0.1, 'stop_at_loss': None, 'out': 'a'}
    plumbing.refuse_other_run({'lr': 0.1, 'out': 'b'}, now, 'a checkpoint')
    with pytest.raises(plumbing.Refused, match=r'--stop-at-loss None -> 0.1'):
        plumbing.refuse_other_run({'lr': 0.1, 'out': 'b'}, now | {'stop_at_loss': 0.1}, 'x')


def test_checkpoint_of_another_run_is_refused(tmp_path, capsys):
    train.main([*TINY, '--epochs', '1', '--out', str(tmp_path)])
    os.remove(tmp_path / 'results.json')
    assert 'different run' in assert_one_line_exit_2(
        [*TINY, '--epochs', '1', '--lam', '2', '--out', str(tmp_path)], capsys
    )


def test_command_line_error_has_no_traceback(tmp_path):
    p = subprocess.run(
        [sys.executable, 'train.py', '--lam', '-1', '--out', str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert (
        p.returncode == 2
        and p.stderr.count('\n') == 1
        and '--lam' in p.stderr
        and 'Traceback' not in p.stderr
    )


def final_numbers(out):
    with open(os.path.join(out, 'results.json')) as f:
        r = json.load(f)

    def strip(h):
        return {k: v for k, v in h.items() if k not in ('seconds', 'images_per_s')}

    return [strip(h) for h in r['history']], strip(r['final'])


@pytest.mark.slow
def test_sigkill_at_random_moments_resumes_to_the_same_numbers(tmp_path):
    argv = [
        sys.executable,
        'train.py',
        *TINY,
        '--subset',
        '256',
        '--epochs',
        '6',
        '--augment',
        '--dropout',
        '0.2',
        '--taps',
        'all',
        '--unlearn',
        'grl',
        '--lam-schedule',
        'dann',
    ]
    subprocess.run(
        [*argv, '--out', str(tmp_path / 'whole')], cwd=ROOT, check=True, capture_output=True
    )
    rng, killed, resumed, out = random.Random(0), 0, 0, tmp_path / 'killed'
    ckpt = out / 'checkpoint.pt'
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    for attempt in range(12):
        p = subprocess.Popen(
            [*argv, '--out', str(out)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        if attempt == 0:  # once during start-up, before any checkpoint
            time.sleep(rng.uniform(0.5, 2.0))
        elif attempt < 4:
            # then three times a random moment after a new epoch's checkpoint: mid-epoch,
            # mid-save ...
            saved = ckpt.stat().st_mtime if ckpt.exists() else 0
            while p.poll() is None and (ckpt.stat().st_mtime if ckpt.exists() else 0) == saved:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.6))
        if attempt < 4 and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            killed += 1
        resumed += 'resumed from' in p.communicate()[0]
        if (out / 'results.json').exists():
            break
    assert killed >= 3 and resumed >= 2, (killed, resumed)
    assert final_numbers(out) == final_numbers(tmp_path / 'whole')


def test_a_changed_option_on_a_finished_run_is_refused(tmp_path, capsys):
    train.main([*TINY, '--epochs', '1', '--out', str(tmp_path)])
    capsys.readouterr()
    err = assert_one_line_exit_2(
        [*TINY, '--epochs', '2', '--unlearn', 'reg', '--out', str(tmp_path)], capsys
    )
    assert '--epochs 1 -> 2' in err and '--unlearn none -> reg' in err
    train.main([*TINY, '--epochs', '1', '--out', str(tmp_path)])  # the same command: nothing to do
    assert 'nothing to do' in capsys.readouterr().out


def test_compile_with_fewer_images_than_a_batch_is_refused(tmp_path, capsys):
    args = [*TINY, '--subset', '32', '--batch-size', '64', '--compile', '--out', str(tmp_path)]
    assert '--batch-size' in assert_one_line_exit_2(args, capsys)


def test_help_shows_every_default():
    text = train.build_parser().format_help()
    for default in ('fashion-mnist', 'cnn', '(default: 30)', '(default: 512)', 'runs/default'):
        assert default in text
    assert '(default: None)' not in text  # the help says what no value means instead
    assert 'train on this many images (default: all)' in text


def test_cpu_run_records_that_no_bf16_ran(tmp_path):
    train.main([*TINY, '--epochs', '1', '--out', str(tmp_path)])
    results = json.loads((tmp_path / 'results.json').read_text())
    assert results['config']['bf16'] is True and results['env']['bf16'] is False


def make_plan(*args):
    """make -n with an existing Python: the commands make would run, without running them; -B
    (as if nothing were built) so that results already in the checkout do not hide the plan."""
    p = subprocess.run(
        ['make', '-n', '-B', *args, f'PYTHON={sys.executable}'],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return p.returncode, (p.stdout + p.stderr).replace('\\\n', ' ')  # one line per command


def test_make_overrides_change_where_runs_are_written():
    code, plan = make_plan('quick', 'EPOCHS=3', 'MODEL=resnet18', 'DATASET=cifar10')
    assert code == 0, plan
    trains = [line for line in plan.splitlines() if 'train.py' in line]
    assert len(trains) == 11  # the six regularizers, the positive control, four unlearning runs
    for line in trains:
        assert '--epochs 3' in line and '--model resnet18' in line and '--dataset cifar10' in line
        assert '--out results/quick-cifar10-resnet18-e3/' in line
    code, plan = make_plan('quick')
    assert '--out results/quick/none/seed0' in plan and '--epochs 20' in plan


def test_gpu_study_stops_on_a_cpu_with_its_cost(tmp_path):
    if torch.cuda.is_available():
        pytest.skip('a GPU is visible')
    p = subprocess.run(
        ['make', 'cifar10', f'PYTHON={sys.executable}'], cwd=ROOT, capture_output=True, text=True
    )
    assert p.returncode == 2 and 'no GPU visible' in p.stderr and 'make quick' in p.stderr
    assert 'train.py' not in p.stdout


def test_a_folder_made_by_other_code_says_so_and_how_to_redo_it(tmp_path, capsys, monkeypatch):
    """A fixed bug must not hide behind "nothing to do": results.json and probe.json carry the
    fingerprint of the code that made them, and a rerun under other code says so in one line with
    the command that redoes it; a checkpoint of other code is not resumed."""
    results = run_train(tmp_path / 'done', '--epochs', '1', '--probe')
    probe = json.loads((tmp_path / 'done' / 'probe.json').read_text())
    assert results['code'] == probe['code'] == plumbing.code_fingerprint()
    capsys.readouterr()
    monkeypatch.setattr(plumbing, 'code_fingerprint', lambda: 'edited-code')
    assert run_train(tmp_path / 'done', '--epochs', '1', '--probe') == results
    out = capsys.readouterr().out
    assert out.count('\n') == 1 and 'other code' in out and f'rm -r {tmp_path / "done"}' in out
    monkeypatch.undo()
    interrupt_in_epoch_two(monkeypatch, tmp_path / 'killed', '--epochs', '2')
    monkeypatch.setattr(plumbing, 'code_fingerprint', lambda: 'edited-code')
    err = assert_one_line_exit_2(
        [*TINY, '--epochs', '2', '--out', str(tmp_path / 'killed')], capsys
    )
    assert 'other code' in err and 'rm -r' in err
