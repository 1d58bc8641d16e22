"""make validate end to end on a tiny study: Feldman & Zhang's leave-out memorization must see
networks that fit random class labels, the positive control must light a_train - a_fresh up, the
positive control for m must see a rank difference, validation.json keeps its contract (README.md
of this folder), and the report's tables render; plus the halves, and train_half without --half
is train.py."""

import json
import os

import pytest
import torch
from conftest import markdown_tables_are_whole, run_train, without_timings

import data
from extensions.report.markdown import EQUALITY_WORDS
from extensions.validation import capacity, feature_control, leaveout, train_half, validate
from extensions.validation import pools as pools_lib
from metrics import across_networks

# n = 256 images per network, from a pool of 512; a shared head sees 256 samples against 2D = 128
# at the penultimate tap
SMALL = ['--subset', '512', '--test-subset', '256', '--epochs', '20', '--probe']
SMALL += ['--rlp-head', 'shared']


@pytest.fixture(scope='module')
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp('validate')
    # one setting (fully random class labels, one pair) and the positive control: the least that
    # validate reports on
    runs = [('p1-n256', j, ['--label-noise', '1']) for j in (0, 1)]
    runs += [('memorize-n256', 0, ['--memorize'])]
    results = {}
    for setting, j, extra in runs:
        out = root / setting / f'half{j}'
        args = [*SMALL, *extra, '--half', str(j), '--seed', str(j), '--label-seed', str(j // 2)]
        results[out] = run_train(out, *args, main=train_half.main)
    with pytest.MonkeyPatch.context() as mp:  # a small capacity map and feature control
        mp.setattr(capacity, 'SIZES', [64, 512])
        mp.setattr(capacity, 'KS', [2])
        mp.setattr(capacity, 'TRAINED_SIZES', [256])
        mp.setattr(feature_control, 'STRENGTHS', [0.0, 0.5])
        out = validate.report(str(root))
    return root, out, results


def test_leave_out_memorization_sees_random_labels_fitted(study):
    """A network that fit its random class labels is right on them when it trained on them and
    at chance when not: F&Z memorization near the training accuracy minus 1/10. With membership
    wrong (e.g. the halves re-drawn in another order) it would read about 0."""
    root, out, results = study
    (setting,) = out['settings']
    fitted = [r['final']['train_acc'] for p, r in results.items() if 'p1-' in str(p)]
    assert min(fitted) > 0.8, fitted  # the premise: both networks fit their random labels
    assert setting['fz_memorization'] > min(fitted) - 0.1 - 0.15, setting
    assert setting['fz_memorization_noisy'] > min(fitted) - 0.1 - 0.15, setting
    assert setting['fz_models'] == 2


def test_positive_control_lights_up_in_validation(study):
    _, out, _ = study
    assert out['positive_control']['penultimate']['specific_ci'][0] > 0.1, out


def test_the_positive_control_for_m_sees_a_rank_difference(study):
    """Training features with D/2 extra dimensions that held-out ones lack: m must rise well
    beyond each network's own error (two networks: their interval is too wide to ask more)."""
    _, out, _ = study
    designs = {(f['design'], f['strength']): f for f in out['feature_control']}
    none, rank = (designs['rank', s]['taps']['penultimate'] for s in (0.0, 0.5))
    assert rank['memorization'] - none['memorization'] > max(0.03, 3 * rank['within_se']), designs
    assert designs['embedding', 0.5]['fitted'] > 0.5  # the embedding memorized relabeled samples


def test_validation_json_contract_and_tables(study):
    root, _, _ = study
    with open(os.path.join(root, 'validation.json')) as f:
        out = json.load(f)
    assert {'settings', 'positive_control', 'feature_control', 'per_class', 'spearman'} <= set(out)
    assert out['commit'] and isinstance(out['verdict'], str) and 'points' in out['verdict']
    # a verdict from bounds: where an interval holds 0 it says what would have been detected
    assert 'would have been detected' in out['verdict']
    assert not [w for w in EQUALITY_WORDS if w in out['verdict'].lower()], out['verdict']
    tap_keys = {'a_train', 'a_fresh', 'a_heldout', 'a_init', 'memorization', 'memorization_ci'}
    for s in out['settings']:
        assert {'label_noise', 'subset', 'taps', 'fz_memorization', 'fz_memorization_noisy'} <= set(
            s
        )
        assert {'fz_models', 'seeds'} <= set(s)
        assert all(tap_keys <= set(t) for t in s['taps'].values())
    assert all({'strength', 'taps'} <= set(f) for f in out['feature_control'])
    assert list(out['spearman']) == ['penultimate']
    for name in ('report.md', 'dose-response.png', 'capacity.png', 'capacity.json'):
        assert os.path.exists(os.path.join(root, name)), name
    assert markdown_tables_are_whole((root / 'report.md').read_text()) == []


def test_validate_on_a_folder_without_runs_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        validate.main([str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'make validate' in err


def test_halves_are_complementary_and_each_pair_its_own_split():
    pool = data.load('fake', '', 0, 2, fake_like='fashion-mnist', subset=1000)
    halves = [set(train_half.half_of(pool, 0, j).train_index.tolist()) for j in range(4)]
    assert halves[0] | halves[1] == set(pool.train_index.tolist()) and not halves[0] & halves[1]
    assert halves[2] | halves[3] == set(pool.train_index.tolist()) and not halves[2] & halves[3]
    assert len(halves[0]) == 500 and halves[0] != halves[2]
    half = train_half.half_of(pool, 0, 0)
    assert len(half.heldout_y) == len(pool.heldout_y) + 500  # the other half is held out
    assert not set(half.train_index.tolist()) & set(halves[1])


def test_leave_out_memorization_on_hand_worked_pairs():
    # four samples; sample 0 right only when trained on (mem 1), 1 always right, 2 never, 3 right
    # when left out (-1)
    member = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.bool)
    correct = torch.stack([torch.tensor([m[0], True, False, not m[3]]) for m in member.tolist()])
    assert leaveout.feldman_zhang(correct, member).tolist() == [1, 0, 0, -1]
    mean, error = leaveout.mean_and_error(
        [torch.tensor([1.0, 0, 0, -1]), torch.tensor([1.0, 1, 0, 0])]
    )
    assert mean == 0.25 and abs(error - 0.25) < 1e-12


def test_without_half_it_is_train_py(tmp_path):
    args = ['--epochs', '1', '--subset', '200']
    plain = run_train(tmp_path / 'train', *args)
    halves = run_train(tmp_path / 'half', *args, main=train_half.main)
    assert without_timings(halves) == without_timings(plain)


def test_spearman_exact_says_what_few_settings_can_show():
    # n = 4: 24 orders, |ρ| = 1 in 2 of them: p = 1/12, nothing significant at 5%
    assert leaveout.spearman_exact(4) == (None, pytest.approx(2 / 24))
    # n = 5: only |ρ| = 1 (p = 2/120); n = 6, 7: Zar's (1972) critical values
    assert leaveout.spearman_exact(5) == (pytest.approx(1.0), pytest.approx(2 / 120))
    assert leaveout.spearman_exact(6)[0] == pytest.approx(0.886, abs=1e-3)
    assert leaveout.spearman_exact(7)[0] == pytest.approx(0.786, abs=1e-3)
    assert 'only a perfect ordering' in validate.rank_sentence(5)
    assert 'no ρ can differ from 0' in validate.rank_sentence(4)


def test_intervals_take_the_pool_as_the_unit():
    """Two pools of two halves: each pool's value is its halves' mean, its error √(Σse²)/2; the
    interval runs over the 2 pools (t with 1 degree of freedom), not over 4 networks."""
    values, errors, pools = [0.01, 0.03, 0.05, 0.07], [0.02] * 4, [0, 0, 1, 1]
    e = pools_lib.over_pools(values, errors, pools)
    by_hand = across_networks([0.02, 0.06], [0.02 * 2**0.5 / 2] * 2)
    assert e['ci'] == pytest.approx(by_hand['ci']) and e['n'] == 2 and e['pools'] == 2
    assert e['networks'] == 4
    as_networks = across_networks(values, errors)
    assert e['ci'][1] - e['ci'][0] > as_networks['ci'][1] - as_networks['ci'][0]


def test_the_positive_control_is_judged_per_network_with_the_chance_all_light_up():
    lit = pools_lib.lit_per_network([[0.01, 0.2], [0.05, 0.3], [-0.01, 0.1]])
    assert lit == {'above': 2, 'networks': 3, 'chance_all': pytest.approx(0.025**3)}
