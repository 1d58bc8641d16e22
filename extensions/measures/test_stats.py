"""The measures study's intervals: Holm on a hand-worked case, Clopper–Pearson and the beta CDF
against scipy's values (scipy 1.17.1 in a separate environment: scipy.stats.beta.ppf and .cdf),
and the configuration bootstrap on a study whose duplicates are known."""

import itertools

import numpy as np
import pytest

from extensions.measures import measures, stats

SCIPY_CP = [  # (k, n, beta.ppf(0.025, k, n - k + 1), beta.ppf(0.975, k + 1, n - k))
    (16, 16, 0.7940927857921772, 1.0),
    (8, 8, 0.6305833524471807, 1.0),
    (0, 8, 0.0, 0.3694166475528192),
    (5, 8, 0.2448632163665516, 0.9147665858627465),
    (6.5, 8, 0.4083764894266625, 0.9861617662096792),
    (3, 10, 0.06673951117773447, 0.6524528500599973),
    (7.25, 8, 0.5087596019910745, 0.9991935933572634),
]
SCIPY_BETA_CDF = [(0.3, 2.5, 4.0, 0.3521975859067672), (0.9, 0.5, 8.0, 0.9999999979425369)]
SCIPY_BETA_CDF += [(0.05, 8, 1, 3.906250000000002e-11)]


def test_holm_on_a_hand_worked_case():
    """p = 0.01, 0.04, 0.03, 0.005 (m = 4). Sorted: 0.005·4 = 0.02; 0.01·3 = 0.03; 0.03·2 = 0.06;
    max(0.06, 0.04·1) = 0.06. At α = 0.05 Holm rejects the first two; the third fails its level
    0.05/2, so it and the fourth keep that level."""
    p = [0.01, 0.04, 0.03, 0.005]
    assert stats.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm_levels(p) == pytest.approx([0.05 / 3, 0.025, 0.025, 0.0125])
    assert stats.holm([0.5]) == [0.5] and stats.holm([0.6, 0.6]) == [1.0, 1.0]


@pytest.mark.parametrize('k, n, lo, hi', SCIPY_CP)
def test_clopper_pearson_matches_scipy(k, n, lo, hi):
    assert stats.clopper_pearson(k, n) == pytest.approx([lo, hi], abs=1e-9)


@pytest.mark.parametrize('x, a, b, expected', SCIPY_BETA_CDF)
def test_beta_cdf_matches_scipy(x, a, b, expected):
    assert stats.beta_cdf(x, a, b) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_psi_of_every_group_concordant_is_not_degenerate_at_1():
    """8 configurations × 2 seeds, every group concordant: ψ = +1, and its exact lower bound is
    that of 8 successes in 8, 2·0.025^(1/8) − 1 = +0.26 (a configuration's seeds count once)."""
    configs = [{'a': a, 'b': b, 'seed': s} for b in range(8) for s in (0, 1) for a in (0, 1)]
    gap = np.array([c['a'] + 3 * c['b'] + 0.1 * c['seed'] for c in configs])
    per, psi = measures.granulated_tau(configs, gap, gap, ('a',))
    assert per['a']['tau'] == 1.0 and per['a']['configurations'] == 8
    assert per['a']['ci'] == pytest.approx([2 * 0.6305833524471807 - 1, 1.0])
    assert psi['ci'][1] == 1.0 and psi['ci'][0] == pytest.approx(per['a']['ci'][0])


def test_configuration_picks_take_every_seed_of_a_configuration_together():
    configs = [{'a': a, 'seed': s} for a in range(5) for s in (0, 1)]
    for pick in stats.configuration_picks(10, configs, resamples=50, seed=3):
        counts = np.bincount(pick, minlength=10)
        assert (counts[0::2] == counts[1::2]).all() and counts.sum() == 10


def test_the_configuration_bootstrap_of_duplicated_seeds_is_the_bootstrap_without_them():
    """Every configuration's two seeds are exact copies: τ-b is unchanged by the copies (their
    pairs tie in both), so resampling configurations must give exactly the interval of resampling
    the 8 distinct networks; resampling networks singly treats the copies as independent and
    gives a narrower interval."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=8), rng.normal(size=8)
    x, y = x + y, y
    configs = [{'a': a, 'seed': s} for a in range(8) for s in (0, 1)]
    x2, y2 = np.repeat(x, 2), np.repeat(y, 2)
    assert measures.kendall_tau(x2, y2) == pytest.approx(measures.kendall_tau(x, y))
    by_configuration = measures.bootstrap_interval(x2, y2, configs, resamples=2000, seed=1)
    distinct = measures.bootstrap_interval(x, y, None, resamples=2000, seed=1)
    assert by_configuration == pytest.approx(distinct)
    single = measures.bootstrap_interval(x2, y2, None, resamples=2000, seed=1)
    assert single[1] - single[0] < by_configuration[1] - by_configuration[0]


def test_the_comparisons_with_training_accuracy_carry_holms_adjustment():
    rng = np.random.default_rng(4)
    configs = [
        dict(zip(('a', 'b', 'seed'), v, strict=True))
        for v in itertools.product(range(4), range(2), (0, 1))
    ]
    gap = rng.normal(size=16)
    names = list(measures.MEASURES)
    networks = []
    for i, c in enumerate(configs):
        values = {k: gap[i] + (0.2 + j) * rng.normal() for j, k in enumerate(names)}
        networks.append({'config': c, 'gen_gap': gap[i], 'measures': values})
    found = measures.versus_train_acc(networks)
    assert found['train_acc'] is None
    family = [v for v in found.values() if v]
    assert len(family) == len(names) - 1
    for v in family:
        assert v['p_holm'] >= v['p']
        lo, hi = v['ci_holm']
        assert lo <= v['ci'][0] and v['ci'][1] <= hi  # never narrower than the raw interval
