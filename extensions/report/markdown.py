"""Markdown and figures for the reports of the extensions: paragraphs, tables, figures, and
sentences built from intervals."""

import math
import os

import matplotlib

matplotlib.use('Agg')  # headless: no display needed
import matplotlib.pyplot as plt  # noqa: E402

from metrics import interval_words  # noqa: E402

from .power import detectable  # noqa: E402


def prose(text):
    """A paragraph written across several source lines, as one line of Markdown."""
    return ' '.join(text.split())


def table(header, rows):
    """A Markdown table: a header row, its delimiter row, and one row per list of cells, each on
    its own line with no blank line between them (a blank line would end the table)."""
    lines = [header, ['---'] * len(header), *rows]
    return '\n'.join('| ' + ' | '.join(str(c) for c in cells) + ' |' for cells in lines)


def save(fig, folder, name):
    """Write a figure atomically; returns its Markdown."""
    path = os.path.join(folder, name)
    fig.tight_layout()
    fig.savefig(path + '.tmp.png', dpi=120)
    os.replace(path + '.tmp.png', path)
    plt.close(fig)
    return f'![{name}]({name})'


def bounded(what, e, unit='points', scale=100):
    """A sentence from an estimate's 95% interval alone (e: metrics.across_networks's dict, or
    any with 'ci', 'se' and 'n'): '<what> lies within [lo, hi] points, above 0' (or below), or,
    where the interval holds 0, the smallest effect it would have detected. An interval that
    holds 0 bounds an effect; it never shows two numbers equal."""
    lo, hi = (scale * v for v in e['ci'])
    text = f'{what} lies within [{lo:+.1f}, {hi:+.1f}] {unit}'
    where = interval_words(*e['ci'])
    if where != 'holds 0':
        return f'{text}, {where}'
    return f'{text}; an effect of {smallest(e, scale):.1f} would have been detected (80% power)'


def smallest(e, scale=100):
    """The smallest true effect an estimate detects (5% two-sided, with 80% power), from the
    noncentral t at the interval's own degrees of freedom (power.py): e['df'] where given, else
    n - 1 (an interval over n networks or pools; n = 1: the normal)."""
    df = e.get('df') or (e['n'] - 1 if e.get('n', 1) > 1 else math.inf)
    return scale * detectable(e['se'], df)


# words that claim two numbers equal, or an effect absent: no sentence built from an interval
# that holds 0 may use them (the tests of report, validate, probe, measures and the noise report
# feed their sentence writers such intervals)
EQUALITY_WORDS = ('equal', 'same', 'as much', 'no more', 'identical', 'match', 'reads what')
EQUALITY_WORDS += ('read what', 'indistinguishable', 'no difference', 'cannot be told')
EQUALITY_WORDS += ('did not hold', 'does not see', 'no effect', 'not significant')
