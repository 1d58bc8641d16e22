"""The layout's promises: the core imports none of the extensions, and every table in the README
and in the committed example reports renders as one table."""

import ast
import glob
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, markdown_tables_are_whole

CORE = ['data', 'model', 'regularizer', 'metrics', 'train', 'plumbing']


def test_importing_the_core_loads_no_extension():
    loaded = 'sorted(m for m in sys.modules if m.startswith("extensions"))'
    code = f'import sys; import {", ".join(CORE)}; print({loaded})'
    p = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip() == '[]', p.stdout + p.stderr


@pytest.mark.parametrize('name', CORE)
def test_a_core_module_names_no_extension_in_its_imports(name):
    tree = ast.parse(open(os.path.join(ROOT, f'{name}.py')).read())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or '' for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in imported if m.split('.')[0] == 'extensions'], imported


DOCUMENTS = ['README.md', 'RESULTS.md'] + sorted(
    glob.glob('example/**/*.md', root_dir=ROOT, recursive=True)
)
DOCUMENTS += sorted(glob.glob('extensions/**/*.md', root_dir=ROOT, recursive=True))


@pytest.mark.parametrize('path', DOCUMENTS)
def test_every_table_renders_as_one_table(path):
    with open(os.path.join(ROOT, path)) as f:
        assert markdown_tables_are_whole(f.read()) == []


def relative_links(text):
    """The targets of a Markdown text's relative links, anchors and titles stripped."""
    targets = re.findall(r'\]\(([^)\s]+)\)', text)
    return [t.split('#')[0] for t in targets if not re.match(r'[a-z]+:', t) and t.split('#')[0]]


@pytest.mark.parametrize('path', DOCUMENTS)
def test_every_link_points_to_a_file_that_exists(path):
    folder = os.path.dirname(os.path.join(ROOT, path))
    with open(os.path.join(ROOT, path)) as f:
        missing = [
            t for t in relative_links(f.read()) if not os.path.exists(os.path.join(folder, t))
        ]
    assert not missing, missing


def test_the_extensions_readme_lists_every_folder():
    with open(os.path.join(ROOT, 'extensions', 'README.md')) as f:
        text = f.read()
    folders = [e.name for e in os.scandir(os.path.join(ROOT, 'extensions')) if e.is_dir()]
    folders = [f for f in folders if f != '__pycache__']
    assert folders and all(f'[`{f}/`]({f}/README.md)' in text for f in folders), folders


def intervals(text):
    """Every interval a text quotes, '[-0.7, +0.9]', with its minus signs written one way."""
    text = text.replace('−', '-')
    return set(re.findall(r'\[[+-]?\d+\.\d+, [+-]?\d+\.\d+\]', text))


def test_the_readme_and_the_results_quote_only_intervals_the_committed_reports_hold():
    """README.md and RESULTS.md say what the committed reports say: every interval they quote is in
    a report of example/ (make example, make example-measures) or in the worked example's output
    (make example-worked)."""
    reports = ''
    for pattern in ('example/**/*.md', 'example/**/*.txt'):
        for path in glob.glob(pattern, root_dir=ROOT, recursive=True):
            with open(os.path.join(ROOT, path)) as f:
                reports += f.read()
    held = intervals(reports)
    for path in ('README.md', 'RESULTS.md'):
        with open(os.path.join(ROOT, path)) as f:
            quoted = intervals(f.read())
        assert not quoted - held, (path, sorted(quoted - held))


def test_the_readme_gives_the_reading_lists_length_as_it_is():
    files = ['data', 'model', 'regularizer', 'metrics', 'train']
    lines = sum(len(open(os.path.join(ROOT, f'{name}.py')).readlines()) for name in files)
    with open(os.path.join(ROOT, 'README.md')) as f:
        assert f'({lines:,} lines;' in ' '.join(f.read().split()), lines


def signed_numbers(text):
    """Every signed decimal a text quotes, '+9.1', '−0.31', with its minus signs written one way."""
    return set(re.findall(r'(?<![\w.])[+-]\d+\.\d+', text.replace('−', '-')))


def json_numbers(value):
    """The numbers of a committed json as a report would print them: signed, to 1 or 2 decimals,
    as they are and in points (×100)."""
    if isinstance(value, dict):
        return set().union(*map(json_numbers, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(json_numbers, value)) if value else set()
    if isinstance(value, float):
        return {f'{x:+.{d}f}' for x in (value, 100 * value) for d in (1, 2)}
    return set()


def test_the_readme_and_the_results_quote_only_signed_values_the_committed_reports_hold():
    """Every signed value README.md and RESULTS.md quote (a per-network value, a difference, a
    τ) is in a committed report of example/ or in one of its json files."""
    held = set()
    for pattern in ('example/**/*.md', 'example/**/*.txt'):
        for path in glob.glob(pattern, root_dir=ROOT, recursive=True):
            with open(os.path.join(ROOT, path)) as f:
                held |= signed_numbers(f.read())
    for path in glob.glob('example/**/*.json', root_dir=ROOT, recursive=True):
        with open(os.path.join(ROOT, path)) as f:
            held |= json_numbers(json.load(f))
    for path in ('README.md', 'RESULTS.md'):
        with open(os.path.join(ROOT, path)) as f:
            quoted = signed_numbers(f.read())
        assert not quoted - held, (path, sorted(quoted - held))
