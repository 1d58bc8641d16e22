"""make docs: the site is built from the reading list, and headless Chromium opens every page.

The builder's pieces run in any environment; the site needs the docs requirements (.venv-docs, or
$DOCS_PYTHON) and the browser test needs Chromium (Debian's package). Locally either may be
missing and those tests skip; in CI (CI=true, where .ci/run installs both) they fail instead.
"""

import ast
import html
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

from extensions.docs import build

READING_LIST = ['data.py', 'model.py', 'regularizer.py', 'metrics.py', 'train.py']
IN_CI = os.environ.get('CI') == 'true'
# the flags of a headless run that talks to nothing; a name lookup fails, so nothing can leave
CHROMIUM_FLAGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--host-resolver-rules=MAP * ~NOTFOUND',
    '--window-size=1280,1600',
    '--virtual-time-budget=10000',
]
# Every paper a note cites, and where its link must point.
PAPERS = {
    'Becker & Risse 2024': 'https://arxiv.org/abs/2411.19640',
    'Becker et al. 2026': 'https://arxiv.org/abs/2607.11541',
    'Ganin & Lempitsky 2015': 'https://arxiv.org/abs/1409.7495',
    'Zhang et al. 2017': 'https://arxiv.org/abs/1611.03530',
    'Cover 1965': 'https://doi.org/10.1109/PGEC.1965.264137',
    'Zagoruyko & Komodakis 2016': 'https://arxiv.org/abs/1605.07146',
    'He et al. 2016': 'https://arxiv.org/abs/1512.03385',
    'Loshchilov & Hutter 2017': 'https://arxiv.org/abs/1608.03983',
    'Jiang et al. 2020': 'https://arxiv.org/abs/1912.02178',
    'Wilson 1927': 'https://www.jstor.org/stable/2276774',
}


def unavailable(what):
    """Missing tools fail the test in CI and skip it elsewhere."""
    if IN_CI:
        pytest.fail(f'{what} is missing in CI (.ci/run installs it)')
    pytest.skip(f'{what} is not installed here')


def docs_python():
    """A Python with the docs requirements: $DOCS_PYTHON, .venv-docs, or this one."""
    candidates = [os.environ.get('DOCS_PYTHON'), os.path.join(ROOT, '.venv-docs', 'bin', 'python')]
    for python in [c for c in candidates if c] + [sys.executable]:
        imports = 'import markdown_it, mdit_py_plugins, latex2mathml, pygments'
        if shutil.which(python) and subprocess.run([python, '-c', imports]).returncode == 0:
            return python
    unavailable('the docs requirements (extensions/docs/requirements.txt)')


def run_build(out, root=ROOT):
    python = docs_python()
    cmd = [python, '-m', 'extensions.docs.build', '--out', str(out), '--root', str(root)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('docs')
    p = run_build(out)
    assert p.returncode == 0, p.stdout + p.stderr
    return out


def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def source(name):
    return read(os.path.join(ROOT, name))


def qualnames(name):
    """{qualname: 'def' or 'class'} of every function and class of a file, methods and inner
    functions as Class.method."""
    names = {}

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names[prefix + child.name] = 'class' if isinstance(child, ast.ClassDef) else 'def'
                walk(child, prefix + child.name + '.')
            else:
                walk(child, prefix)

    walk(ast.parse(source(name)), '')
    return names


def math_spans(text):
    """The `$...$` spans a text holds."""
    return re.findall(r'\$[^$]+\$', text)


# --- the builder's pieces (no requirement) --------------------------------------------------------

EXAMPLE = '''"""The module: $a = b$.

[Cover 1965]: https://doi.org/10.1109/PGEC.1965.264137
"""

import os

X = 1  # an inline comment stays with its code


def first(a):
    """What first does ([Cover 1965])."""
    return a


# A comment block is the note of the lines below it,
# until the next note.
Y = first(X)


# A comment right above a definition
# joins its docstring.
def second():
    """Second's docstring."""
    return 2


class Thing:
    """A thing."""

    def bare(self):
        return 1

    def told(self):
        """A method with a docstring has its own row."""

        def inner():
            return 2

        return inner()


# --- a heading -------------------------------------------------------------------
'''


def test_a_docstring_or_a_comment_block_is_the_note_beside_the_lines_it_explains():
    blocks, anchors = build.split(EXAMPLE)
    lines = EXAMPLE.splitlines()
    rows = [(b.note, [lines[n - 1].strip() for n in b.lines], b.heading) for b in blocks]
    assert rows == [
        (
            'The module: $a = b$.\n\n[Cover 1965]: https://doi.org/10.1109/PGEC.1965.264137',
            ['import os', '', 'X = 1  # an inline comment stays with its code'],
            False,
        ),
        ('What first does ([Cover 1965]).', ['def first(a):', 'return a'], False),
        (
            'A comment block is the note of the lines below it,\nuntil the next note.',
            ['Y = first(X)'],
            False,
        ),
        (
            "A comment right above a definition\njoins its docstring.\n\nSecond's docstring.",
            ['def second():', 'return 2'],
            False,
        ),
        ('A thing.', ['class Thing:', '', 'def bare(self):', 'return 1'], False),
        (
            'A method with a docstring has its own row.',
            ['def told(self):', '', 'def inner():', 'return 2', '', 'return inner()'],
            False,
        ),
        ('## a heading', [], True),
    ]
    names = {'first', 'second', 'Thing', 'Thing.bare', 'Thing.told', 'Thing.told.inner'}
    assert set(anchors.values()) == names


def test_the_reading_list_is_the_readmes_in_its_order():
    assert build.reading_list(source('README.md')) == READING_LIST


# --- the site (the docs requirements) -------------------------------------------------------------


def test_an_index_and_a_page_per_file_in_order_each_with_previous_and_next(site):
    pages = ['index.html'] + [n[:-3] + '.html' for n in READING_LIST]
    assert sorted(p for p in os.listdir(site) if p.endswith('.html')) == sorted(pages)
    for i, page in enumerate(pages):
        text = read(site / page)
        prev = re.findall(r'<a rel="prev" href="([^"]+)"', text)
        nxt = re.findall(r'<a rel="next" href="([^"]+)"', text)
        assert set(prev) == ({pages[i - 1]} if i > 0 else set()), page
        assert set(nxt) == ({pages[i + 1]} if i + 1 < len(pages) else set()), page


def test_every_equation_of_a_file_is_mathml_on_its_page(site):
    for name in READING_LIST:
        expected = len(math_spans(source(name)))
        assert expected > 0, f'{name} states no equation in $...$'
        assert read(site / (name[:-3] + '.html')).count('<math') == expected, name


def test_every_cited_paper_is_linked_where_it_is_cited(site):
    for name in READING_LIST:
        page = re.sub(r'\s+', ' ', read(site / (name[:-3] + '.html')))
        cited = {p for p in PAPERS if re.search(re.escape(p).replace(r'\ ', r'\s+'), source(name))}
        for paper in cited:
            assert f'<a href="{PAPERS[paper]}">{html.escape(paper)}</a>' in page, (name, paper)


def test_the_index_carries_the_method_and_links_each_function_of_the_table(site):
    index = read(site / 'index.html')
    assert 'The method, in notation' in index and index.count('<math') >= 2
    table = build.readme_section(source('README.md'), 'From the papers to the code')
    refs = re.findall(r'`(\w+)\.py:([\w.]+)`', table)
    assert len(refs) >= 20
    for stem, name in refs:
        assert f'href="{stem}.html#{name}"' in index, (stem, name)
        assert f'id="{name}"' in read(site / f'{stem}.html'), (stem, name)


def test_every_concept_row_of_the_readme_table_links_its_paper():
    table = build.readme_section(source('README.md'), 'From the papers to the code')
    rows = [r for r in table.splitlines() if r.startswith('| ') and '---' not in r][1:]
    assert len(rows) >= 10
    for row in rows:
        paper = row.split(' | ')[0].removeprefix('| ')
        assert paper == 'ours' or re.search(r'\]\(https://', paper), row


def test_a_readme_naming_a_function_that_is_not_there_stops_the_build(tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    for name in READING_LIST:
        shutil.copy(os.path.join(ROOT, name), root / name)
    readme = source('README.md').replace('`metrics.py:complexity`', '`metrics.py:no_such`', 1)
    (root / 'README.md').write_text(readme, encoding='utf-8')
    p = run_build(tmp_path / 'site', root)
    assert p.returncode == 2 and 'metrics.py:no_such' in p.stderr, p.stdout + p.stderr
    (root / 'README.md').write_text(source('README.md'), encoding='utf-8')
    (root / 'model.py').write_text(source('model.py').replace('$z = f(x)$', r'$\nosuch z$'))
    p = run_build(tmp_path / 'site', root)
    assert p.returncode == 2 and 'latex2mathml' in p.stderr, p.stdout + p.stderr


# --- in a browser ---------------------------------------------------------------------------------

# Injected at test time (the pages themselves run no JavaScript): what the page shows, measured.
MEASURE = """<script id="measure">
window.addEventListener('load', () => {
  const text = (sel) => [...document.querySelectorAll(sel)].map((e) => e.innerText).join('\\n');
  function firstLine(el) {  // the top of the first line of text in el
    const text = (n) => n.textContent.trim() ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_SKIP;
    const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT, {acceptNode: text});
    const node = walk.nextNode();
    if (!node) return null;
    const range = document.createRange();
    range.selectNodeContents(node);
    return range.getClientRects()[0].top;
  }
  const rows = [...document.querySelectorAll('table.blocks tr')].filter(
    (r) => r.querySelector('td.note') && r.querySelector('td.code pre'));
  const out = {
    ids: [...document.querySelectorAll('[id]')].map((e) => e.id),
    maths: [...document.querySelectorAll('math')].map((m) => m.getBoundingClientRect().height),
    notes: text('td.note') + '\\n' + text('main'),
    code: text('td.code'),
    rows: rows.map((r) => {
      const note = r.querySelector('td.note'), code = r.querySelector('td.code pre');
      return {id: r.id, note: firstLine(note), code: firstLine(code),
        line: parseFloat(getComputedStyle(code).lineHeight),
        noteRight: note.getBoundingClientRect().right, codeLeft: code.getBoundingClientRect().left};
    }),
    resources: performance.getEntriesByType('resource').map((e) => e.name),
    loaded: [...document.querySelectorAll('[src], link[href], object, embed, iframe')].map(
      (e) => e.src || e.href || e.data || 'embedded'),
    scripts: document.querySelectorAll('script:not(#measure)').length,
    styles: [...document.querySelectorAll('style')].map((e) => e.textContent),
  };
  const pre = document.createElement('pre');
  pre.id = 'measured';
  pre.hidden = true;
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium():
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        if path := shutil.which(name):
            return path
    unavailable('Chromium (apt-get install chromium)')


def open_page(browser, site, page, shots, profile):
    """Open a page (with the measuring script) headless: its measurements and a screenshot."""
    measured = site / f'measured-{page}'
    measured.write_text(read(site / page).replace('</body>', MEASURE + '\n</body>'), 'utf-8')
    shot = shots / page.replace('.html', '.png')
    cmd = [browser, *CHROMIUM_FLAGS, f'--user-data-dir={profile}', f'--screenshot={shot}']
    p = subprocess.run(
        [*cmd, '--dump-dom', measured.as_uri()], capture_output=True, text=True, timeout=120
    )
    found = re.search(r'<pre id="measured" hidden="">(.*?)</pre>', p.stdout, re.S)
    assert found, p.stdout[-2000:] + p.stderr[-2000:]
    return json.loads(html.unescape(found.group(1))), shot


def not_blank(png):
    """A screenshot shows something: many pixels differ from the page's background."""
    from PIL import Image

    with Image.open(png) as image:
        gray = image.convert('L')
        background = max(gray.getcolors(256))[1]
        ink = sum(count for count, value in gray.getcolors(256) if abs(value - background) > 40)
        return ink / (gray.width * gray.height)


def test_every_page_in_a_browser(site, tmp_path):
    browser = chromium()
    shots = tmp_path / 'screenshots'
    shots.mkdir()
    pages = ['index.html'] + [n[:-3] + '.html' for n in READING_LIST]
    for i, page in enumerate(pages):
        m, shot = open_page(browser, site, page, shots, tmp_path / f'profile{i}')
        # nothing is fetched from elsewhere, and nothing would be: no script, no outside link
        assert all(r.startswith('file:') for r in m['resources']), (page, m['resources'])
        assert all(u.startswith('file:') for u in m['loaded']), (page, m['loaded'])
        assert m['scripts'] == 0, page
        for css in m['styles'] + [read(site / 'style.css')]:
            assert not re.search(r'url\(|@import', css), page
        # mathematics is MathML with a size, never $...$ left as text
        assert '$' not in m['notes'], (page, m['notes'][m['notes'].find('$') - 80 :][:160])
        assert all(h > 0 for h in m['maths']), page
        # the screenshot shows the page
        assert shot.exists() and not_blank(shot) > 0.01, (page, shot)
        if page == 'index.html':
            assert len(m['maths']) >= 2
            continue
        name = page.replace('.html', '.py')
        assert len(m['maths']) == len(math_spans(source(name))) > 0, page
        # every function and class is there, with its place
        for qualname, keyword in qualnames(name).items():
            assert qualname in m['ids'], (page, qualname)
            assert f'{keyword} {qualname.split(".")[-1]}' in m['code'], (page, qualname)
        # each note sits left of its code, its first line level with the code's (±1 line)
        rows = [r for r in m['rows'] if r['note'] is not None]
        assert len(rows) >= 5, page
        for row in rows:
            assert row['noteRight'] <= row['codeLeft'], (page, row)
            assert abs(row['note'] - row['code']) <= row['line'], (page, row)
    print(f'screenshots: {shots}')
