"""The layout's promises: the core imports none of the extensions, and every table in the README
and in the committed example reports renders as one table."""

import ast
import glob
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


DOCUMENTS = ['README.md'] + sorted(glob.glob('example/**/*.md', root_dir=ROOT, recursive=True))
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
