"""Intervals whose unit is the pool: the two halves of one pool (make validate) share the pool's
true value, so they are one draw of it, not two. Each pool's value is the mean of its halves (its
own error from theirs, their label draws independent: √(Σ se²) / halves); the interval is
metrics.across_networks over the pools, t with pools − 1 degrees of freedom. Treating the halves
as independent networks covers the truth only 89–92% of the time (issue 34's audit)."""

import math
import statistics

from metrics import across_networks

ONE_SIDE = 0.025  # the chance a 95% interval lies above 0 when the truth is 0


def over_pools(values, errors, pools):
    """metrics.across_networks over the pools: values and errors per network, pools the pool of
    each (its label seed); 'n' in the result is the number of pools."""
    grouped = {}
    for value, error, pool in zip(values, errors, pools, strict=True):
        grouped.setdefault(pool, []).append((value, error))
    means = [statistics.fmean(v for v, _ in g) for g in grouped.values()]
    ses = [math.sqrt(sum(e**2 for _, e in g)) / len(g) for g in grouped.values()]
    return across_networks(means, ses) | {'pools': len(grouped), 'networks': len(values)}


def lit_per_network(intervals):
    """The positive control judged per network, each by its own 95% interval: how many lie above
    0, and the chance that all of them would if none held r (independent networks: 0.025^N)."""
    above = sum(lo > 0 for lo, _ in intervals)
    return {'above': above, 'networks': len(intervals), 'chance_all': ONE_SIDE ** len(intervals)}
