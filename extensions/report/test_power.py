"""The noncentral t and the power rule against scipy's values, computed in a separate environment
(scipy 1.17.1, `python3 -m venv /tmp/scipy-env && /tmp/scipy-env/bin/pip install scipy`):
    scipy.stats.nct.cdf(t, df, delta);
    the delta at which 1 - nct.cdf(c, df, delta) + nct.cdf(-c, df, delta) = 0.8, c =
    t.ppf(0.975, df), by scipy.optimize.brentq (xtol 1e-12)."""

import math

import pytest

from extensions.report import markdown, power

SCIPY_CDF = [  # (t, df, delta, nct.cdf)
    (1.5, 3, 1.0, 0.6257559040564338),
    (-2.0, 1, 0.5, 0.07457768951883127),
    (2.0, 30, 2.5, 0.3083344536475149),
    (4.303, 2, 5.0, 0.280871533596404),
    (0.0, 5, -1.0, 0.8413447460685429),
    (12.71, 1, 16.0, 0.20948856659774426),
]
SCIPY_DELTA = {  # df: the noncentrality with 80% power, two-sided 5%
    1: 16.334008869920968,
    2: 5.653489266197128,
    3: 4.2558986865156,
    4: 3.7610595538250204,
    7: 3.269759840387532,
    10: 3.1099681015776337,
    15: 2.9978625780542187,
    30: 2.8953583001531955,
    100: 2.828847210345826,
}
SCIPY_OLD_RULE_POWER = {2: 0.7385184576226262, 3: 0.7594579693531425}  # at δ = t_df + z_0.8


@pytest.mark.parametrize('t, df, delta, expected', SCIPY_CDF)
def test_noncentral_t_cdf_matches_scipy(t, df, delta, expected):
    assert power.noncentral_t_cdf(t, df, delta) == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize('df', SCIPY_DELTA)
def test_the_detectable_effect_has_80_percent_power_as_scipy_computes_it(df):
    assert power.detectable_delta(df) == pytest.approx(SCIPY_DELTA[df], rel=1e-7)
    assert power.detectable(0.01, df) == pytest.approx(0.01 * SCIPY_DELTA[df], rel=1e-7)


def test_the_old_rule_falls_short_of_80_percent_at_few_degrees_of_freedom():
    for df, expected in SCIPY_OLD_RULE_POWER.items():
        old = power.t_quantile(df) + 0.8416212335729143
        assert power.power(old, df) == pytest.approx(expected, abs=1e-8) and expected < 0.77


def test_infinite_degrees_of_freedom_is_the_normal():
    # z_0.975 + z_0.8, less a hair for the far tail's Φ(-4.76) ≈ 1e-6 of power
    z_rule = 1.959963984540054 + 0.8416212335729143
    assert z_rule - 1e-5 < power.detectable_delta(math.inf) < z_rule


def test_the_sentence_uses_the_intervals_own_degrees_of_freedom():
    # over 3 networks (df 2) the same error detects 5.65 of it, not (4.30 + 0.84)
    e = {'ci': [-0.05, 0.05], 'se': 0.01, 'n': 3}
    assert markdown.smallest(e) == pytest.approx(100 * 0.01 * SCIPY_DELTA[2], rel=1e-6)
    assert markdown.smallest(e | {'df': 30}) == pytest.approx(SCIPY_DELTA[30], rel=1e-6)


def test_implied_df_reads_back_a_t_intervals_degrees_of_freedom():
    for df in (2, 7, 30):
        half = power.t_quantile(df) * 0.02
        assert power.implied_df([0.1 - half, 0.1 + half], 0.02) == pytest.approx(df, rel=1e-6)
    assert power.implied_df([-1.959963984540054, 1.959963984540054], 1.0) == math.inf
