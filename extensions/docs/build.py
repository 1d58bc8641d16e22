"""`make docs`: the reading list as pages of notes beside the code they explain, from the source.

One page per file of the README's reading list, in its order, with previous/next links, and an
index with the README's method in notation and its paper-to-code table, each `file.py:name` linked
to that name's place on its page. A page is the file as it is, cut into blocks: a module's, class's
or function's docstring, or a run of whole-line `#` comments, is a note, and the lines it explains
sit to its right, in the same table row (the design of pycco and of the annotated implementations
at nn.labml.ai). A `# --- title ---` comment is a heading. Notes are Markdown (markdown-it-py);
`$...$` in them is LaTeX, and a line that holds only `$...$` is a displayed equation, both turned
into MathML here (latex2mathml), so a page needs no JavaScript and no network; `[Name year]` links
to the reference that the module docstring defines as `[Name year]: url`. Code is highlighted by
Pygments. Each page loads one local style sheet and nothing else.

    python -m extensions.docs.build --out docs      (make docs; DOCS=dir elsewhere)

It reads the files as text and imports none of them, so it runs without torch.
"""

import argparse
import ast
import html
import io
import os
import re
import time
import tokenize
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TITLE = 'Random-label prediction heads'
HEADING = re.compile(r'^-{3}\s*(.*?)\s*-*$')  # a `# --- title ---` comment line
DISPLAY = re.compile(r'^[ \t]{2,}\$([^$\n]+)\$([.,;:]?)[ \t]*$', re.M)  # an indented $...$ line
REFERENCE = re.compile(r'^\[([^\]\n]+)\]:[ \t]+(\S+)[ \t]*$', re.M)  # [Name year]: url
CITATION_LEFT = re.compile(r'\[[A-Z][^\]\n]*\d{4}\]')  # a [Name year] that found no reference
CODE_REFERENCE = re.compile(r'<code>(\w+)\.py(?::([\w.]+))?</code>')


class BuildError(Exception):
    """The source or the README says something the site cannot show (a reference to no function,
    a citation with no link, mathematics left as text)."""


@dataclass
class Block:
    """One row of a page: a note (Markdown) and the source lines it explains."""

    note: str = ''
    lines: list = field(default_factory=list)  # line numbers of the code column, 1-based
    heading: bool = False  # a `# --- title ---` row
    merge: bool = False  # the next definition's docstring joins this note (a comment above it)


def reading_list(readme):
    """The README's reading list, in its order: the `name.py` files of 'Read in this order:'."""
    match = re.search(r'Read in this order:(.*?)\(', readme, re.S)
    names = re.findall(r'`(\w+\.py)`', match.group(1)) if match else []
    if not names:
        raise BuildError("README.md has no 'Read in this order:' line naming the files")
    return names


def docstring_lines(node):
    """(first, last) line of a node's docstring, or None."""
    body = getattr(node, 'body', None)
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        if isinstance(first.value.value, str):
            return first.lineno, first.end_lineno
    return None


def definitions(tree):
    """[(qualname, node, shown)] of every function and class, in source order; shown: it starts a
    block of its own (it is the module's or a class's; a function's own functions do not)."""
    out = []

    def walk(node, prefix, shown):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = prefix + child.name
                out.append((name, child, shown))
                walk(child, name + '.', isinstance(child, ast.ClassDef))
            elif not isinstance(child, ast.expr):
                walk(child, prefix, shown)

    walk(tree, '', True)
    return sorted(out, key=lambda d: d[1].lineno)


def comment_lines(source):
    """{line: text} of the lines that hold only a comment, '#' and one space stripped."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and not tok.line[: tok.start[1]].strip():
            out[tok.start[0]] = tok.string[1:].removeprefix(' ')
    return out


def split(source):
    """The blocks of a file (notes beside code) and the anchors {line: qualname} of its
    functions and classes. A module-level or class-level definition starts a block, with its
    docstring as the note; a run of comment lines starts one with the comments as the note."""
    tree = ast.parse(source)
    text = source.splitlines()
    hidden, starts, anchors = set(), {}, {}
    doc = docstring_lines(tree)
    if doc:
        hidden.update(range(doc[0], doc[1] + 1))
        starts[doc[0]] = ('module', ast.get_docstring(tree))
    for name, node, shown in definitions(tree):
        anchors[node.lineno] = name
        if shown and ('.' not in name or docstring_lines(node)):  # a bare method joins its class
            first = min([d.lineno for d in node.decorator_list] + [node.lineno])
            note = ast.get_docstring(node) or ''
            doc = docstring_lines(node)
            if doc:
                hidden.update(range(doc[0], doc[1] + 1))
            starts[first] = ('definition', note)
    comments = comment_lines(source)
    for line, comment in comments.items():
        hidden.add(line)
        if line - 1 not in comments:  # the first line of a run
            run = [comment]
            while line + len(run) in comments:
                run.append(comments[line + len(run)])
            starts.setdefault(line, ('comment', '\n'.join(run)))

    blocks = [Block()]
    for line in range(1, len(text) + 1):
        kind, note = starts.get(line, (None, None))
        current = blocks[-1]
        if (
            kind == 'definition'
            and current.merge
            and not any(text[n - 1].strip() for n in current.lines)
        ):
            current.note = '\n\n'.join(t for t in (current.note, note) if t)
            current.merge = False
        elif kind == 'comment' and HEADING.match(note):
            blocks.append(Block(note='## ' + HEADING.match(note).group(1), heading=True))
            blocks.append(Block())
        elif kind is not None:
            blocks.append(Block(note=note, merge=kind == 'comment'))
        if line not in hidden:
            blocks[-1].lines.append(line)
    for block in blocks:  # no blank lines at a block's ends
        while block.lines and not text[block.lines[0] - 1].strip():
            block.lines.pop(0)
        while block.lines and not text[block.lines[-1] - 1].strip():
            block.lines.pop()
    blocks = [b for b in blocks if b.note.strip() or b.lines]
    return blocks, anchors


# --- rendering ---------------------------------------------------------------------------------


def markdown():
    """CommonMark with tables, and `$...$` / `$$...$$` turned into MathML by latex2mathml."""
    from latex2mathml.converter import convert
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    def mathml(latex, options):
        display = 'block' if options['display_mode'] else 'inline'
        out = convert(latex.strip(), display=display)
        if '\\' in out:  # latex2mathml passes a command it does not know through as text
            raise BuildError(f'LaTeX that latex2mathml cannot convert: {latex!r}')
        return out

    md = MarkdownIt('commonmark').enable('table')
    dollarmath_plugin(md, allow_space=False, allow_digits=False, renderer=mathml)
    return md


def render_markdown(md, text):
    """Markdown -> HTML; a `$` left outside code and MathML is mathematics that did not convert."""
    out = md.render(text)
    visible = re.sub(r'<math.*?</math>|<code>.*?</code>', '', out, flags=re.S)
    if '$' in visible:
        raise BuildError(f'mathematics left as text: {text[:80]!r}')
    return out


def render_note(md, text, references=''):
    """A note's HTML: a line holding only `$...$` becomes a displayed equation; the module's
    references are appended, so `[Name year]` links anywhere in the file."""
    text = DISPLAY.sub(lambda m: f'\n$$\n{m.group(1)}{m.group(2)}\n$$\n', text)
    out = render_markdown(md, text + '\n\n' + references)
    visible = re.sub(r'<math.*?</math>|<code>.*?</code>', '', out, flags=re.S)
    if left := CITATION_LEFT.findall(visible):
        raise BuildError(f'citations without a reference definition: {left}')
    return out


def render_code(source, lines, anchors):
    """The block's lines, highlighted, each function's and class's line carrying its anchor."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    all_lines = source.splitlines()
    text = '\n'.join(all_lines[n - 1] for n in lines) + '\n'
    lexer = PythonLexer(stripnl=False, ensurenl=True)
    out = highlight(text, lexer, HtmlFormatter(nowrap=True)).split('\n')
    for i, n in enumerate(lines):
        if n in anchors:
            out[i] = f'<span class="anchor" id="{anchors[n]}"></span>' + out[i]
    return '<pre>' + '\n'.join(out[: len(lines)]) + '</pre>'


def nav(pages, i):
    """Index, previous and next page links."""
    links = ['<a href="index.html">index</a>']
    if i > 0:
        links.append(f'<a rel="prev" href="{pages[i - 1][0]}">← {pages[i - 1][1]}</a>')
    links.append(f'<b>{pages[i][1]}</b>' if i > 0 else '')
    if i + 1 < len(pages):
        links.append(f'<a rel="next" href="{pages[i + 1][0]}">{pages[i + 1][1]} →</a>')
    return '<nav>' + ' · '.join(link for link in links if link) + '</nav>'


def document(title, body):
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<title>{html.escape(title)}</title>\n<link rel="stylesheet" href="style.css">\n'
        f'</head>\n<body>\n{body}\n</body>\n</html>\n'
    )


def file_page(md, name, source, pages, i):
    """One reading-list file's page: a table of note | code rows."""
    blocks, anchors = split(source)
    module_doc = ast.get_docstring(ast.parse(source)) or ''
    references = '\n'.join(m.group(0) for m in REFERENCE.finditer(module_doc))
    rows = []
    for k, block in enumerate(blocks):
        note = render_note(md, block.note, references)
        if block.heading:
            rows.append(f'<tr class="heading" id="block-{k}"><td colspan="2">{note}</td></tr>')
            continue
        code = render_code(source, block.lines, anchors) if block.lines else ''
        rows.append(
            f'<tr id="block-{k}"><td class="note">{note}</td><td class="code">{code}</td></tr>'
        )
    lines = len(source.splitlines())
    head = f'{nav(pages, i)}\n<h1>{name}</h1>\n<p class="meta">the file as it is: {lines} lines</p>'
    body = f'{head}\n<table class="blocks">\n' + '\n'.join(rows) + f'\n</table>\n{nav(pages, i)}'
    return document(f'{name} · {TITLE}', body), set(anchors.values())


def readme_section(readme, heading):
    """The Markdown of one `## heading` section of the README, without its heading."""
    match = re.search(rf'^## {re.escape(heading)}\n(.*?)(?=^## |\Z)', readme, re.S | re.M)
    if not match:
        raise BuildError(f'README.md has no section "## {heading}"')
    return match.group(1)


def link_code(rendered, anchors):
    """`file.py:name` in the README's table -> a link to that name's place on the file's page;
    a name that is not there is an error (the README and the code disagree)."""

    def link(m):
        stem, name = m.group(1), m.group(2)
        if stem not in anchors:
            return m.group(0)
        if name and name not in anchors[stem]:
            raise BuildError(f'README names {stem}.py:{name}, which {stem}.py does not define')
        return f'<a href="{stem}.html{"#" + name if name else ""}">{m.group(0)}</a>'

    return CODE_REFERENCE.sub(link, rendered)


def relink(rendered, root, out):
    """The README's relative links, made relative to the site's folder."""

    def fix(m):
        target = html.unescape(m.group(1))
        if re.match(r'[a-z]+:|#', target):
            return m.group(0)
        path, _, anchor = target.partition('#')
        rel = os.path.relpath(os.path.join(root, path), out)
        return f'href="{html.escape(rel)}{"#" + anchor if anchor else ""}"'

    return re.sub(r'href="([^"]*)"', fix, rendered)


def index_page(md, readme, pages, anchors, root, out):
    """The method in notation, the paper-to-code table linked into the pages, the page list."""
    parts = [
        readme.split('\n## ')[0].split('\n', 1)[1],
        readme_section(readme, 'The method, in notation'),
        readme_section(readme, 'From the papers to the code'),
    ]
    names = {k: v['names'] for k, v in anchors.items()}
    intro, method, table = (
        link_code(relink(render_markdown(md, part), root, out), names) for part in parts
    )
    listing = ''.join(
        f'<li><a href="{href}">{name}</a> ({anchors[name[:-3]]["lines"]} lines)</li>'
        for href, name in pages[1:]
    )
    body = (
        f'{nav(pages, 0)}\n<main class="index">\n<h1>{TITLE}: the code beside the papers</h1>\n'
        f'{intro}\n<h2>The pages</h2>\n<ol>{listing}</ol>\n'
        f'<h2>The method, in notation</h2>\n{method}\n'
        f'<h2 id="papers-to-code">From the papers to the code</h2>\n{table}\n</main>\n'
        f'{nav(pages, 0)}'
    )
    return document(TITLE, body)


STYLE = """
body { margin: 0 auto; max-width: 1500px; padding: 0 16px 32px; color: #222;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
nav { padding: 10px 0; border-bottom: 1px solid #ddd; margin-bottom: 8px; }
nav:last-child { border-bottom: 0; border-top: 1px solid #ddd; margin-top: 8px; }
h1 { font-size: 1.6em; margin: 0.4em 0 0; } .meta { color: #666; margin: 0 0 12px; }
table.blocks { border-collapse: collapse; width: 100%; table-layout: fixed; }
table.blocks td { vertical-align: top; padding: 8px 14px; border-top: 1px solid #eee; }
td.note { width: 38%; overflow-wrap: break-word; }
td.note > :first-child, tr.heading td > :first-child { margin-top: 0; }
td.note > :last-child { margin-bottom: 0; }
td.code { background: #f7f7f5; overflow-x: auto; }
td.code pre { margin: 0; font: 13px/1.45 "DejaVu Sans Mono", Menlo, Consolas, monospace; }
tr.heading td { padding-top: 20px; } tr.heading h2 { margin: 0; font-size: 1.2em; }
code { font: 0.9em "DejaVu Sans Mono", Menlo, Consolas, monospace; background: #f2f2f0; }
pre code { background: none; }
math[display="block"] { margin: 0.5em 0; }
.anchor { display: inline-block; width: 0; }
main.index { max-width: 1000px; }
main.index table { border-collapse: collapse; margin: 8px 0; }
main.index th, main.index td { border: 1px solid #ddd; padding: 4px 8px; vertical-align: top; }
a { color: #1a5fb4; }
"""


def build(out, root=ROOT):
    """Write the site into `out`; returns {page: number of <math> elements}."""
    from pygments.formatters import HtmlFormatter

    md = markdown()
    with open(os.path.join(root, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    names = reading_list(readme)
    pages = [('index.html', 'index')] + [(n[:-3] + '.html', n) for n in names]
    os.makedirs(out, exist_ok=True)
    written, anchors = {}, {}
    for i, name in enumerate(names, 1):
        with open(os.path.join(root, name), encoding='utf-8') as f:
            source = f.read()
        text, names_here = file_page(md, name, source, pages, i)
        anchors[name[:-3]] = {'names': names_here, 'lines': len(source.splitlines())}
        written[pages[i][0]] = text
    written['index.html'] = index_page(md, readme, pages, anchors, root, out)
    style = STYLE + HtmlFormatter(style='default').get_style_defs('td.code pre')
    written['style.css'] = style
    for page, text in written.items():
        with open(os.path.join(out, page), 'w', encoding='utf-8') as f:
            f.write(text)
    return {p: t.count('<math') for p, t in written.items() if p.endswith('.html')}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default=os.path.join(ROOT, 'docs'), help='the site folder')
    p.add_argument('--root', default=ROOT, help='where README.md and the reading list are')
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        maths = build(os.path.abspath(args.out), os.path.abspath(args.root))
    except BuildError as e:
        p.exit(2, f'docs: {e}\n')
    seconds = time.perf_counter() - t0
    print(
        f'docs: {len(maths)} pages, {sum(maths.values())} equations (<math> elements) in '
        f'{args.out}/index.html ({seconds:.1f} s)'
    )


if __name__ == '__main__':
    main()
