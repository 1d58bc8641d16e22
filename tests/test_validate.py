"""make validate end to end on a tiny study: Feldman & Zhang's leave-out memorization must see
networks that fit random class labels, the positive control must light m up, and validation.json
keeps the contract of SPEC.md."""

import json
import os

import pytest
from conftest import run_train

import validate

# n = 512 images per network, from a pool of 1024; shared heads at every tap see 512 samples
# against 2D = 128 at the penultimate tap (fewer, and any head shatters its labels: m = 0 always)
SMALL = ['--subset', '1024', '--test-subset', '256', '--epochs', '25']
SMALL += ['--rlp-head', 'shared', '--taps', 'all']


@pytest.fixture(scope='module')
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp('validate')
    # one setting (fully random class labels) and the positive control: the least that
    # validate.py reports on, in under a minute
    runs = [('p1-n512', j, ['--label-noise', '1']) for j in (0, 1)]
    runs += [('memorize-n512', 0, ['--memorize'])]
    results = {}
    for setting, j, extra in runs:
        out = root / setting / f'half{j}'
        results[out] = run_train(out, *SMALL, *extra, '--half', str(j), '--seed', str(j))
        validate.probe_lib.probe_run(str(out))
    mp = pytest.MonkeyPatch()  # a small capacity map: this test is about the pipeline
    mp.setattr(validate, 'CAPACITY_SIZES', [64, 512])
    mp.setattr(validate, 'CAPACITY_K', [2])
    mp.setattr(validate, 'TRAINED_SIZES', [64, 512])
    try:
        out = validate.report(str(root))
    finally:
        mp.undo()
    return root, out, results


def test_leave_out_memorization_sees_random_labels_fitted(study):
    """A network that fit its random class labels is right on them when it trained on them and
    at chance when not: F&Z memorization near the training accuracy minus 1/10. With membership
    wrong (e.g. the halves re-drawn in another order) it would read about 0."""
    root, out, results = study
    (setting,) = out['settings']
    fitted = [r['final']['train_acc'] for p, r in results.items() if 'p1-' in str(p)]
    assert min(fitted) > 0.8, fitted  # the premise: both networks fit their random labels
    # P[correct | trained on] ~ the fit, P[correct | left out] ~ 1/10
    assert setting['fz_memorization'] > min(fitted) - 0.1 - 0.15, setting
    assert setting['fz_memorization_noisy'] > min(fitted) - 0.1 - 0.15, setting
    assert setting['fz_models'] == 2


def test_positive_control_lights_up_in_validation(study):
    _, out, _ = study
    assert out['positive_control']['penultimate']['memorization_ci'][0] > 0.1, out


def test_stop_gradient_network_reads_no_memorization_although_it_memorized(study):
    """The finding of make validate, in small: F&Z sees the random class labels memorized,
    m at the penultimate tap holds 0 (a 95% interval: it may miss 1 time in 20 by design)."""
    _, out, _ = study
    (setting,) = out['settings']
    lo, hi = setting['taps']['penultimate']['memorization_ci']
    assert lo <= 0 <= hi, setting


def test_validation_json_contract(study):
    root, _, _ = study
    with open(os.path.join(root, 'validation.json')) as f:
        out = json.load(f)
    assert {'settings', 'positive_control', 'spearman', 'verdict'} <= set(out)
    tap_keys = {'a_train', 'a_heldout', 'a_init', 'memorization', 'memorization_ci'}
    for s in out['settings']:
        assert {
            'label_noise',
            'subset',
            'taps',
            'fz_memorization',
            'fz_memorization_noisy',
        } <= s.keys()
        assert s['subset'] == 512 and 'fz_models' in s
        assert all(tap_keys <= set(t) for t in s['taps'].values())
    assert list(out['spearman']) == ['stage1', 'stage2', 'penultimate']
    assert isinstance(out['verdict'], str) and out['verdict']
    for name in ('report.md', 'dose-response.png', 'capacity.png', 'capacity.json'):
        assert os.path.exists(os.path.join(root, name)), name


def test_validate_on_a_folder_without_runs_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        validate.main([str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'make validate' in err
