"""Markdown and figures for the reports of the extensions: paragraphs, tables, figures."""

import os

import matplotlib

matplotlib.use('Agg')  # headless: no display needed
import matplotlib.pyplot as plt  # noqa: E402


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
