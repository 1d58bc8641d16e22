"""The intervals of the measures study: a bootstrap over configurations, Holm's adjustment of a
family of comparisons, and the exact (Clopper–Pearson) interval of a share.

The configuration bootstrap: the seeds of one configuration (the same hyperparameters) are near-
duplicates, so a resample draws configurations with replacement and takes every seed of each
(Davison & Hinkley 1997, §3.8, the cluster bootstrap); resampling single networks would count
two near-copies as two independent draws and give intervals too narrow.

Holm (1979): m comparisons with p-values p_(1) ≤ … ≤ p_(m); the i-th is rejected if every
p_(j), j ≤ i, lies below α / (m − j + 1). The adjusted p-value is max_{j ≤ i} min(1, (m − j + 1)
p_(j)): reject where it is below α. Its intervals here: the i-th comparison's bootstrap interval
at the level α / (m − i + 1), held at the level of the first comparison not rejected for every one
after it (so an interval lies off 0 exactly where Holm rejects).

Clopper & Pearson (1934): k successes in n trials, the 95% interval of the share p is
[B(α/2; k, n − k + 1), B(1 − α/2; k + 1, n − k)], B(q; a, b) the beta distribution's quantile;
exact, and never degenerate at 0 or 1 for n finite. The beta CDF is the regularized incomplete
beta I_x(a, b), by its continued fraction (Numerical Recipes §6.4), inverted by bisection.
"""

import math

import numpy as np

ALPHA = 0.05


# --- the configuration bootstrap ------------------------------------------------------------------


def clusters(configs):
    """Indices of the networks of each configuration, every seed of one together, in order of
    first appearance; configs None: each network its own."""
    found = {}
    for i, c in enumerate(configs):
        key = tuple(sorted((k, v) for k, v in c.items() if k != 'seed'))
        found.setdefault(key, []).append(i)
    return list(found.values())


def configuration_picks(n, configs=None, resamples=2000, seed=0):
    """Bootstrap resamples of n networks as index arrays: configurations drawn with replacement,
    each with all its seeds (configs None: networks drawn singly)."""
    units = clusters(configs) if configs is not None else [[i] for i in range(n)]
    rng = np.random.default_rng(seed)
    draws = rng.integers(len(units), size=(resamples, len(units)))
    return [np.concatenate([units[u] for u in d]) for d in draws]


def percentile_interval(values, alpha=ALPHA):
    lo, hi = np.nanpercentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return [float(lo), float(hi)]


def bootstrap_p(values):
    """Two-sided bootstrap p-value of 'the statistic is 0': twice the smaller share of resamples
    on either side of 0 (at most 1)."""
    v = np.asarray(values, float)
    v = v[~np.isnan(v)]
    return float(min(1.0, 2 * min(np.mean(v <= 0), np.mean(v >= 0))))


# --- Holm ---------------------------------------------------------------------------------------


def holm(pvalues):
    """Holm's adjusted p-values, in the order given."""
    p = np.asarray(pvalues, float)
    order = np.argsort(p, kind='stable')
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def holm_levels(pvalues, alpha=ALPHA):
    """The α at which each comparison's interval is drawn: α / (m − i + 1) for the i-th smallest
    p-value, held at the first not-rejected step's level for every one after it."""
    p = np.asarray(pvalues, float)
    order = np.argsort(p, kind='stable')
    m = len(p)
    levels = np.empty(m)
    stopped = None
    for rank, i in enumerate(order):
        level = alpha / (m - rank) if stopped is None else stopped
        if stopped is None and p[i] >= level:
            stopped = level
        levels[i] = level
    return levels.tolist()


# --- Clopper–Pearson ------------------------------------------------------------------------------


def beta_cdf(x, a, b):
    """I_x(a, b), the regularized incomplete beta function, by its continued fraction."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(log_front + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast on the other side
        return 1 - front * continued_fraction(1 - x, b, a) / b
    return front * continued_fraction(x, a, b) / a


def continued_fraction(x, a, b, tiny=1e-300):
    """The continued fraction of I_x(a, b) by the modified Lentz method."""

    def guard(v):
        return tiny if abs(v) < tiny else v

    c, d = 1.0, 1 / guard(1 - (a + b) * x / (a + 1))
    h = d
    for m in range(1, 500):
        for aa in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 / guard(1 + aa * d)
            c = guard(1 + aa / c)
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def beta_quantile(q, a, b):
    """The q-quantile of the beta distribution B(a, b), by bisection."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if beta_cdf(mid, a, b) < q else (lo, mid)
    return (lo + hi) / 2


def clopper_pearson(k, n, alpha=ALPHA):
    """The exact interval of a share from k successes in n trials (k may be fractional: a tie
    counted as half, the beta quantiles at the fractional count)."""
    lo = 0.0 if k <= 0 else beta_quantile(alpha / 2, k, n - k + 1)
    hi = 1.0 if k >= n else beta_quantile(1 - alpha / 2, k + 1, n - k)
    return [lo, hi]
