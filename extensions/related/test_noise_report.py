"""noise_report.py on a synthetic study folder: the table, the figure, table 2, and a claim
sentence per system that follows the numbers (held where they say so, not where they do not)."""

import json
import os

import torch
from conftest import markdown_tables_are_whole

from extensions.related import noise_report
from extensions.report.markdown import EQUALITY_WORDS

EPOCHS = 4


def write_run(folder, name, test, clean, noisy, train=None, m=0.0, diverged=False, tod=False):
    run_dir = os.path.join(folder, name, 'seed0')
    os.makedirs(run_dir)
    epoch = {'epoch': 1, 'seconds': 1.0, 'test_acc': test}
    history = []
    for e in range(1, EPOCHS + 1):
        h = {**epoch, 'epoch': e}
        if tod:  # clean samples fitted first; noisy ones later, both with growing self-influence
            h['self_influence'] = {'clean': 0.05 * e, 'noisy': 0.2 * e}
            h['train_acc_clean'] = min(1.0, 0.5 * e)
            h['train_acc_noisy'] = 0.06 * e**2
        history.append(h)
    result = {
        'config': {'seed': 0, 'dataset': 'fake', 'model': 'cnn', 'epochs': EPOCHS},
        'env': {'torch': 'x', 'device': 'cpu'},
        'history': history,
        'data': {'n_train': 1000, 'n_test': 1000, 'num_classes': 10, 'noisy_labels': 400},
    }
    result['config'].update(label_noise=0.4, random_labels=2)
    if diverged:
        result.update(status='diverged', diverged={'epoch': 2, 'reason': 'nan'}, final=None)
    else:
        final = {
            'test_acc': test,
            'train_acc': train if train is not None else (clean + noisy) / 2,
            'train_acc_clean': clean,
            'train_acc_noisy': noisy,
            'rand_acc': {'penultimate': 0.5},
            'self_influence': {'clean': 0.1, 'noisy': 0.9} if tod else None,
        }
        if tod:
            final['self_influence_acc'] = {'clean': 0.05, 'noisy': 0.6}
            final['test_influence'] = {
                'hard': 0.02,
                'hard_se': 0.001,
                'easy': 0.001,
                'easy_se': 0.001,
                'control_hard': 0.0,
                'control_hard_se': 0.001,
                'control_easy': 0.0,
                'control_easy_se': 0.001,
                'n_per_group': 150,
            }
            noisy_flags = torch.arange(1000) < 400
            influence = torch.where(noisy_flags, 0.9, 0.1) + 0.01 * torch.randn(1000)
            per_sample = {
                'self_influence': influence,
                'noisy': noisy_flags,
                'correct_in': torch.ones(1000, dtype=torch.bool),
                'correct_out': ~noisy_flags,
            }
            torch.save(per_sample, os.path.join(run_dir, 'self_influence.pt'))
        result.update(status='done', final=final)
        tap = {'a_train': 0.55 + m, 'a_fresh': 0.55 + m, 'a_heldout': 0.55, 'a_init': 0.55}
        tap |= {'memorization': m, 'memorization_se': 0.01, 'memorization_ci': [m - 0.02, m + 0.02]}
        tap |= {'specific': 0.0, 'specific_se': 0.01, 'specific_ci': [-0.02, 0.02]}
        probe = {'status': 'done', 'n': 1000, 'taps': {'penultimate': tap}}
        with open(os.path.join(run_dir, 'probe.json'), 'w') as f:
            json.dump(probe, f)
    with open(os.path.join(run_dir, 'results.json'), 'w') as f:
        json.dump(result, f)


def test_report_has_every_part_and_claims_follow_the_numbers(tmp_path):
    folder = str(tmp_path)
    write_run(folder, 'ce', test=0.60, clean=1.0, noisy=0.95, m=0.05)
    write_run(folder, 'rll-0.1', test=0.80, clean=0.85, noisy=0.05, m=0.0)
    write_run(folder, 'limit-1', test=0.61, clean=0.9, noisy=0.3, m=0.01)  # within the noise
    write_run(folder, 'reg-10', test=0.5, clean=0.9, noisy=0.9, diverged=True)
    write_run(folder, 'confusion-1', test=0.6, clean=1.0, noisy=0.9, m=0.04)
    write_run(folder, 'tod', test=0.6, clean=1.0, noisy=0.9, m=0.05, tod=True)
    write_run(folder, 'p0-ce', test=0.85, clean=1.0, noisy=0.0, train=1.0)
    write_run(folder, 'p0-rll-0.1', test=0.84, clean=0.9, noisy=0.0, train=0.9)
    write_run(folder, 'p1-ce', test=0.1, clean=0.0, noisy=0.0, train=0.97)
    write_run(folder, 'p1-rll-0.1', test=0.1, clean=0.0, noisy=0.0, train=0.11)
    noise_report.noise_report(folder)
    report = (tmp_path / 'report.md').read_text()
    assert (tmp_path / 'noise.png').stat().st_size > 10_000
    for row in (
        '| cross-entropy | 60.0%',
        '| robust log loss, α = 0.1 | 80.0%',
        '+5.0 [+3.0, +7.0]',  # one seed: its own interval
    ):
        assert row in report, row
    assert '**diverged** in epoch 2' in report and '+0.100 / +0.900' in report
    sections = report.split('\n## ')
    claim = {s.split('\n')[0]: s for s in sections}
    rll, limit = (
        claim['Robust log loss (Patel & Sastry 2021)'],
        claim['LIMIT (Harutyunyan et al. 2020)'],
    )
    assert 'cross-entropy fits 97.0%' in rll and ': held (criterion' in rll
    assert 'held, it still learns' in rll and 'held for robust log loss, α = 0.1' in rll
    assert 'was not borne out' in limit and '+1.0 points' in limit
    tod = [s for s in sections if s.startswith('Turn-over dropout')][0]
    assert 'higher self-influence held' in tod and 'fitted earlier, both from the start held' in tod
    assert 'influence test samples more held' in tod
    assert markdown_tables_are_whole(report) == []


def test_claims_whose_intervals_hold_0_claim_no_equality(tmp_path):
    folder = str(tmp_path)  # every m and a_train - a_fresh holds 0; nobody beats cross-entropy
    write_run(folder, 'ce', test=0.60, clean=1.0, noisy=0.95)
    write_run(folder, 'rll-0.1', test=0.60, clean=0.85, noisy=0.5)
    write_run(folder, 'limit-1', test=0.61, clean=0.9, noisy=0.3)
    write_run(folder, 'confusion-1', test=0.6, clean=1.0, noisy=0.9)
    write_run(folder, 'p0-ce', test=0.85, clean=1.0, noisy=0.0, train=1.0)
    write_run(folder, 'p0-rll-0.1', test=0.849, clean=0.9, noisy=0.0, train=0.9)
    noise_report.noise_report(folder)
    report = (tmp_path / 'report.md').read_text()
    claims = [p for p in report.split('\n\n') if '**Claim' in p]
    assert len(claims) >= 4 and 'its m lies within [-2.0, +2.0] points; an effect of' in report
    for claim in claims:
        assert not [w for w in EQUALITY_WORDS if w in claim.lower()], claim
