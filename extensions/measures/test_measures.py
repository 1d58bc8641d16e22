"""The measures study and the explanation: Kendall's τ and the granulated τ against hand-worked
examples and a pair-counting loop, effective dimensions against closed forms, the capacity curve
against Cover's count, and `make measures` end to end on a tiny grid (measures.json's contract)."""

import copy
import itertools
import json
import math

import numpy as np
import pytest
import torch
from conftest import markdown_tables_are_whole, run_train

from extensions.measures import explain, measures
from extensions.report.markdown import EQUALITY_WORDS
from metrics import fit_heads

# --- Kendall's τ -----------------------------------------------------------------------------


def test_kendall_tau_on_hand_worked_examples():
    # one discordant pair (2, 3) of six: (5 - 1) / 6
    assert measures.kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(2 / 3)
    # ties: pairs (0, 1) tied in x, (1, 2) tied in y; 4 concordant, 0 discordant; 5 pairs untied
    # in x and 5 in y: τ-b = 4 / √(5·5)
    assert measures.kendall_tau([1, 1, 2, 3], [1, 2, 2, 3]) == pytest.approx(0.8)
    assert measures.kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1)
    assert math.isnan(measures.kendall_tau([1, 1, 1], [1, 2, 3]))


def tau_b_by_counting(x, y):
    """τ-b from its definition, one pair at a time: (P - Q) / √((P + Q + T_y)(P + Q + T_x)), T_x
    the pairs tied in x only, T_y in y only."""
    P = Q = tx = ty = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if sx and sy:
            P, Q = P + (sx == sy), Q + (sx != sy)
        elif sx:
            ty += 1
        elif sy:
            tx += 1
    return (P - Q) / math.sqrt((P + Q + ty) * (P + Q + tx))


def test_kendall_tau_matches_pair_counting_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = rng.integers(0, 5, 15), rng.integers(0, 5, 15)  # many ties
        assert measures.kendall_tau(x, y) == pytest.approx(tau_b_by_counting(x, y))


def test_bootstrap_interval_holds_the_estimate_and_collapses_on_a_perfect_ranking():
    rng = np.random.default_rng(1)
    x = rng.normal(size=40)
    y = x + rng.normal(size=40)
    lo, hi = measures.bootstrap_interval(x, y, resamples=500)
    assert lo < measures.kendall_tau(x, y) < hi and hi - lo > 0.1
    assert measures.bootstrap_interval(x, 2 * x, resamples=200) == [1.0, 1.0]


def test_kendall_tau_ranks_infinity_above_every_number_tied_with_itself():
    # inv_margin_sq of networks with γ <= 0: +inf, above all, tied among themselves
    x, y = [1.0, math.inf, 2.0, math.inf], [1, 4, 2, 3]
    assert measures.kendall_tau(x, y) == pytest.approx(tau_b_by_counting([1, 9, 2, 9], y))


def test_granulated_tau_on_a_hand_worked_grid():
    # two hyperparameters a, b in {0, 1} and two seeds; the gap rises with a and with b; the
    # measure rises with a and falls with b: every pair differing in a agrees (+1), every pair
    # differing in b disagrees (-1), whatever the seed adds
    configs = [{'a': a, 'b': b, 'seed': s} for a, b, s in itertools.product((0, 1), (0, 1), (0, 1))]
    gap = np.array([c['a'] + 2 * c['b'] + 0.1 * c['seed'] for c in configs])
    measure = np.array([c['a'] - c['b'] + 0.01 * c['seed'] for c in configs])
    per, psi = measures.granulated_tau(configs, measure, gap, ('a', 'b'))
    # the exact interval over the 2 configurations (each with its 2 seeds): 2 of 2 concordant
    # has the lower bound 0.025^(1/2); Ψ: the mean of the bounds at 97.5% each (0.0125^(1/2))
    low, low_psi = 2 * 0.025**0.5 - 1, 2 * 0.0125**0.5 - 1
    assert per['a'] == {'tau': 1.0, 'ci': pytest.approx([low, 1.0]), 'configurations': 2}
    assert per['b'] == {'tau': -1.0, 'ci': pytest.approx([-1.0, -low]), 'configurations': 2}
    assert psi == {'psi': 0.0, 'ci': pytest.approx([(low_psi - 1) / 2, (1 - low_psi) / 2])}
    # a hyperparameter that never varies alone has no groups
    assert measures.granulated_tau(configs[:1], measure[:1], gap[:1], ('a',)) == ({'a': None}, None)


def test_granulated_tau_counts_a_tie_as_0_as_jiang_et_al_do():
    """Four groups that differ in a: the measure agrees with the gap in two, disagrees in one and
    ties in one. Jiang et al.'s ψ = (1 + 1 - 1 + 0) / 4 = 0.25; dropping the tie would give 1/3."""
    configs = [{'a': a, 'seed': s} for s in range(4) for a in (0, 1)]
    gap = np.array([a + s for s in range(4) for a in (0, 1)], float)
    measure = np.array([v for pair in ((0, 1), (0, 1), (1, 0), (5, 5)) for v in pair], float)
    per, _ = measures.granulated_tau(configs, measure, gap, ('a',))
    assert per['a']['tau'] == pytest.approx(0.25)
    assert per['a']['ci'][0] < 0.25 < per['a']['ci'][1]


def test_paired_difference_of_two_measures():
    rng = np.random.default_rng(2)
    gap = rng.normal(size=60)
    good, poor = gap + 0.3 * rng.normal(size=60), gap + 3 * rng.normal(size=60)
    d = measures.paired_difference(good, poor, gap)
    assert d['diff'] == pytest.approx(
        measures.kendall_tau(good, gap) - measures.kendall_tau(poor, gap)
    )
    assert d['ci'][0] > 0  # the better measure, shown better
    assert measures.paired_difference(good, good, gap) == {'diff': 0.0, 'ci': [0.0, 0.0]}


def test_margin_is_the_tenth_percentile_of_true_minus_best_other():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    # margins 2 and -1; the 10th percentile interpolates: -1 + 0.1 · 3
    assert measures.margin(logits, torch.tensor([0, 2])) == pytest.approx(-0.7)
    assert measures.inverse_margin(0.5, 100) == {'inv_margin_sq': 4.0, 'inv_margin_sq_n': 0.2}
    assert measures.inverse_margin(-0.7, 100) == {'inv_margin_sq': None, 'inv_margin_sq_n': None}


def test_magnitude_aware_flatness_on_a_model_whose_answer_is_known():
    """20000 weights w_i = 1, sample i right while its own weight stays positive: a perturbation
    σ|w|ε costs accuracy Φ(-1/σ), which reaches 0.1 at σ = 1/Φ⁻¹(0.9) = 0.7803: 1/σ² = 1.642. The
    bisection finds it within its resolution (8 steps in log σ over [1e-4, 1]: a factor 1.04 in σ,
    1.08 in 1/σ²)."""
    model = torch.nn.Module()
    model.w = torch.nn.Parameter(torch.ones(20_000))

    def accuracy(m):
        return (m.w > 0).float().mean().item()

    found = measures.mag_flatness(model, lambda m: [m.w], accuracy)
    assert found == pytest.approx(1.642, rel=0.09), found
    assert model.w.eq(1).all()  # the model itself is left as it was


def test_norm_measures_fold_batchnorm_into_the_convolution_it_follows():
    """A convolution and the BatchNorm after it, as the small CNN has them: the folded weight is
    W·γ/√(var + ε); distances and norms are sums over layers, √(·/n) the normalized forms."""
    import model as model_lib

    net = model_lib.Net('cnn', 1, 10, 2, 'shared', 'penultimate', 0.0, 8).eval()
    init = copy.deepcopy(net)
    conv, bn = net.stages[0][0], net.stages[0][1]
    with torch.no_grad():
        bn.weight.fill_(2.0)
        bn.running_var.fill_(3.0)
    folded = measures.folded_weights(net)
    assert torch.allclose(folded['stages.0.0'], conv.weight * 2 / math.sqrt(3 + bn.eps))
    convolutions = {'stages.0.0', 'stages.0.3'} | {
        f'stages.{i}.{j}' for i in (1, 2) for j in (1, 4)
    }
    assert set(folded) == convolutions | {'fc'}  # stages 1 and 2 open with a max-pool
    found = measures.norm_measures(net, init, n=100)
    w = folded['stages.0.0'] - measures.folded_weights(init)['stages.0.0']  # the only change
    assert found['dist_fro'] == pytest.approx(w.pow(2).sum().item(), rel=1e-5)
    spectral = torch.linalg.matrix_norm(w.flatten(1), ord=2).item()
    assert found['dist_spec_init'] == pytest.approx(spectral**2, rel=1e-5)
    assert found['dist_fro_n'] == pytest.approx(math.sqrt(found['dist_fro'] / 100))
    assert measures.norm_measures(init, init, n=100)['dist_fro'] == 0


# --- effective dimension and the capacity curve --------------------------------------------------


def test_effective_dims_of_isotropic_features_match_the_closed_form():
    # n samples of N(0, I_D): the sample covariance's E tr S² = D(n + D + 1)/n and tr S ≈ D, so the
    # participation ratio is about D·n / (n + D + 1); every direction is there: rank D
    n, D = 20000, 32
    dims = explain.effective_dims(torch.randn(n, D, generator=torch.Generator().manual_seed(0)))
    assert dims['width'] == D and dims['rank'] == D
    assert dims['pr'] == pytest.approx(D * n / (n + D + 1), rel=0.02)


def test_effective_dims_of_rank_r_features():
    n, D, r = 20000, 64, 8
    g = torch.Generator().manual_seed(1)
    mixed = torch.randn(n, r, generator=g) @ torch.randn(r, D, generator=g)  # rank r in D dims
    assert explain.effective_dims(mixed)['rank'] == r
    padded = torch.cat([torch.randn(n, r, generator=g), torch.zeros(n, D - r)], 1)  # dead units
    dims = explain.effective_dims(padded)
    assert dims['rank'] == r and dims['pr'] == pytest.approx(r * n / (n + r + 1), rel=0.02)


def cover_fraction(n, d):
    """Cover's share of the 2^n labelings of n points in general position that an affine
    classifier in d - 1 dimensions realizes: 2 Σ_{k<d} binom(n - 1, k) / 2^n."""
    return 2 * sum(math.comb(n - 1, k) for k in range(d)) / 2**n


@pytest.mark.parametrize('n, expected', [(9, 0.855), (12, 0.5), (15, 0.212)])
def test_the_fresh_head_realizes_covers_share_of_labelings(n, expected):
    # D = 5 plus the bias: d = 6; at n = 2d exactly half the labelings are separable. A labeling is
    # realized when the fitted head reads all of it (the head's weak ridge loses a few near n = 2d)
    D, draws = 5, 400
    assert cover_fraction(n, D + 1) == pytest.approx(expected, abs=1e-3)
    g = torch.Generator().manual_seed(n)
    z = torch.randn(n, D, generator=g)
    labels = torch.randint(2, (draws, n), generator=g)
    realized = (fit_heads(z, None, labels, 2, 1, 'shared').accuracy == 1).float().mean().item()
    assert realized == pytest.approx(expected, abs=0.08)  # 0.08: about 3 binomial errors at 400


def test_the_capacity_curve_depends_on_samples_per_dimension_only():
    # the same n / D = 32 at n = 2048 and n = 512 reads the same accuracy within 2 points (their
    # errors over 16 draws are about 0.3 and 0.6 points); and it falls with n / D
    curve = explain.capacity_curve(ks=[2], ratios=[8, 32], n=2048, draws=16)
    small = explain.capacity_curve(ks=[2], ratios=[32], n=512, draws=16, seed=1)
    big = {p['ratio']: p['a'] for p in curve}  # D = 256 and 64
    assert abs(big[32] - small[0]['a']) < 0.02 and small[0]['dim'] == 16
    assert big[8] > big[32] + 0.05
    assert explain.predict(curve, 2, 8) == pytest.approx(big[8])
    assert big[32] < explain.predict(curve, 2, 16) < big[8]
    assert explain.predict(curve, 10, 8) is None


def test_the_prediction_reads_a_rank_deficient_tap_at_its_rank():
    # 64 features spanning 16 directions read like 16 isotropic ones, not like 64
    curve = explain.capacity_curve(ks=[2], ratios=[16, 32, 64, 128], n=2000, draws=8)
    g = torch.Generator().manual_seed(2)
    z = torch.randn(2000, 16, generator=g) @ torch.randn(16, 64, generator=g)
    y = torch.zeros(2000, dtype=torch.long)
    predicted, dims = explain.predicted_accuracy(z, y, 2, 'shared', curve)
    assert dims['rank'] == 16 and dims['width'] == 64
    assert predicted['rank'] == pytest.approx(explain.predict(curve, 2, 2000 / 16))
    assert predicted['width'] == pytest.approx(explain.predict(curve, 2, 2000 / 64))


# --- make measures end to end ---------------------------------------------------------------------


@pytest.fixture(scope='module')
def tiny_study(tmp_path_factory):
    root = tmp_path_factory.mktemp('measures')
    for subset, lr in itertools.product((256, 512), (0.02, 0.1)):
        out = root / f'n{subset}-lr{lr}' / 'seed0'
        args = ['--subset', str(subset), '--lr', str(lr), '--epochs', '2', '--rlp-head', 'shared']
        run_train(out, *args, '--taps', 'all', '--probe')
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(explain, 'CURVE_RATIOS', [2, 8, 32, 128, 512])
        mp.setattr(explain, 'CURVE_KS', [2])
        mp.setattr(measures, 'BOOTSTRAP', 100)
        mp.setattr(measures, 'SHARP_STEPS', 4)
        mp.setattr(measures, 'SHARP_SAMPLES', 128)
        measures.main([str(root)])
    return root


def test_measures_json_keeps_its_contract(tiny_study):
    with open(tiny_study / 'measures.json') as f:
        out = json.load(f)
    assert len(out['networks']) == 4 and out['commit']
    for n in out['networks']:
        assert set(measures.HYPERPARAMETERS) | {'seed'} <= set(n['config'])
        assert set(n['measures']) == set(measures.MEASURES)
        assert n['gen_gap'] == pytest.approx(n['train_acc'] - n['test_acc'])
    for name in measures.MEASURES:
        tau, values = out['tau'][name], {n['measures'][name] for n in out['networks']}
        if len(values) == 1:  # a constant measure ranks nothing
            assert tau == {'tau': None, 'ci': None}
            continue
        assert -1 <= tau['tau'] <= 1 and tau['ci'][0] <= tau['tau'] <= tau['ci'][1]
        grains = out['granulated'][name]
        assert grains['label_noise'] is None  # never varied in this grid
        for h in ('subset', 'lr'):
            lo, hi = grains[h]['ci']
            assert -1 <= lo <= grains[h]['tau'] <= hi <= 1
        assert out['psi'][name]['ci'][0] <= out['psi'][name]['psi'] <= out['psi'][name]['ci'][1]
    assert {'train_acc', 'train_loss', 'inv_margin_sq', 'dist_fro_n'} <= set(out['tau'])
    assert set(out['tau_fitted']) == set(out['tau']) and out['fitted_rule'].startswith('none')
    assert out['versus_train_acc']['train_acc'] is None
    for v in out['versus_train_acc'].values():
        if v is not None:
            assert {'diff', 'ci', 'ci_holm', 'p', 'p_holm'} <= set(v) and v['p_holm'] >= v['p']
    assert all(n['epochs'] == 2 and n['reached'] is None for n in out['networks'])
    assert set(out['learning_rate']) == {'all', '0.02', '0.1'}
    assert set(out['prediction']) == {'stage1', 'stage2', 'penultimate'}
    for tap in out['prediction'].values():
        assert {'residual_mean', 'residual_max'} <= set(tap)
    text = (tiny_study / 'report.md').read_text()
    assert markdown_tables_are_whole(text) == []
    assert text.count('**') >= 2 * len(measures.MEASURES)  # a sentence per measure


def test_the_baselines_read_a_network_and_its_initialization(tiny_study):
    from extensions.probe.probe import load_run

    _, _, model, init_model, _ = load_run(str(tiny_study / 'n256-lr0.1' / 'seed0'), 'cpu')
    assert measures.norm_measures(init_model, init_model, 256)['dist_spec_init'] == 0
    assert measures.norm_measures(model, init_model, 256)['dist_spec_init'] > 0


def test_sentences_from_intervals_that_hold_0_give_bounds_and_claim_no_equality():
    tau = {'tau': 0.12, 'ci': [-0.13, 0.37]}
    text = measures.measure_sentence('m', tau, {'diff': -0.05, 'ci': [-0.32, 0.2]})
    bounds = 'τ = +0.12, within [-0.13, +0.37]; τ − τ(train_acc) = -0.05 [-0.32, +0.20].'
    assert text == f'**m**: {bounds}'
    raw_only = {'diff': -0.3, 'ci': [-0.5, -0.1], 'ci_holm': [-0.6, 0.02]}
    adjusted = measures.measure_sentence('m', tau, raw_only)
    assert 'Holm-adjusted [-0.60, +0.02]' in adjusted and 'worse than' not in adjusted
    off = measures.measure_sentence('m', tau, raw_only | {'ci_holm': [-0.6, -0.05]})
    assert off.endswith('it ranks worse than training accuracy alone.')
    part = {'networks': 16, 'online': tau, 'a_train': tau, 'difference': {'diff': 0, 'ci': [-1, 1]}}
    text += ' ' + measures.lr_sentence({'all': part, '0.02': part, '0.1': part})
    assert 'holds 0, so these networks do not order the two' in text
    assert not [w for w in EQUALITY_WORDS if w in text.lower()], text
