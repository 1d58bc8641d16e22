"""Every command block of README.md and the exercises' READMEs runs as written in bash and in zsh
(macOS's shell: it does not split $VAR into words, nor expand ~ after DIR=), and the repository
imports and collects where there is no fcntl (Windows).

Each ```sh block is parsed by both shells (bash -n, zsh -n) and then run to the end by both, in
one of three ways, each block named in BLOCKS:
  run     as written, with $HOME a temporary folder (a student copy, a check: seconds);
  record  the blocks that train networks: as written, in a temporary folder whose
          .venv/bin/python records its arguments instead of training (the shells' part: word
          splitting, quoting, line continuations), and the arguments must be the runs the
          exercises' checks read; the slow test runs the exercises' blocks for real;
  parse   parsed only, with the reason (a GPU study, the test suite itself).
A block that BLOCKS does not name fails the test: say how it is to be run.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import train
from extensions.exercises import measurements

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHELLS = ('bash', 'zsh')
DOCUMENTS = ['README.md'] + sorted(
    os.path.relpath(os.path.join(folder, 'README.md'), ROOT)
    for folder, _, names in os.walk(os.path.join(ROOT, 'extensions', 'exercises'))
    if 'README.md' in names
)
# the first line of each block -> how it runs (run, record, or the reason it is parsed only)
BLOCKS = {
    'make cifar10': 'parse: a GPU study of half an hour; make test is this test suite',
    'make install': 'record',
    'make student DIR="$HOME/rlp-student"': 'run',
    'cd "$HOME/rlp-student"': 'run',
    '.venv/bin/python train.py': 'record',
}


def blocks(path):
    """The ```sh blocks of a Markdown file, each dedented (a block may sit in a list item)."""
    with open(os.path.join(ROOT, path)) as f:
        text = f.read()
    found = re.findall(r'^( *)```sh\n(.*?)^\1```', text, re.M | re.S)
    return [re.sub(rf'^{indent}', '', body, flags=re.M) for indent, body in found]


ALL = [(path, i, block) for path in DOCUMENTS for i, block in enumerate(blocks(path))]
IDS = [f'{path}:{i + 1}' for path, i, _ in ALL]


def how(block):
    first = block.split('\n')[0]
    kinds = [kind for start, kind in BLOCKS.items() if first.startswith(start)]
    assert kinds, f'a new command block, {first!r}: name in BLOCKS how the test runs it'
    return kinds[0]


def need(shell):
    if shutil.which(shell) is None:
        if os.environ.get('REQUIRE_SHELLS'):  # CI installs zsh: there its absence is a failure
            pytest.fail(f'{shell} is not installed (apt-get install {shell})')
        pytest.skip(f'{shell} is not installed (apt-get install {shell})')


def test_the_readmes_have_command_blocks():
    assert len(ALL) >= 7 and all(how(block) for _, _, block in ALL), IDS


@pytest.mark.parametrize('shell', SHELLS)
@pytest.mark.parametrize('path, index, block', ALL, ids=IDS)
def test_every_block_parses(path, index, block, shell, tmp_path):
    need(shell)
    script = tmp_path / 'block.sh'
    script.write_text(block)
    done = subprocess.run([shell, '-n', str(script)], capture_output=True, text=True)
    assert done.returncode == 0, (path, index, done.stderr)


@pytest.mark.parametrize('path, index, block', ALL, ids=IDS)
def test_no_block_has_a_comment(path, index, block):
    """Pasted into interactive zsh (macOS's Terminal), `# ...` is no comment unless the user set
    interactive_comments: make gets '#' and the words after it as targets. Say it outside."""
    commented = [line for line in block.split('\n') if re.search(r'(^|\s)#', line)]
    assert not commented, (path, commented)


def in_shell(shell, block, cwd, home, **env):
    """Run a block to its end in `shell`, from cwd, with $HOME = home; returns the process."""
    env = {**os.environ, 'HOME': str(home), 'ZDOTDIR': str(home), **env}
    script = home / f'block-{shell}.sh'
    script.write_text(block)
    return subprocess.run(
        [shell, str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize('shell', SHELLS)
def test_the_exercises_blocks_make_a_copy_and_check_it(shell, tmp_path):
    """exercises/README.md's blocks, in order: a student copy in $HOME, then its first check,
    which fails naming the function to write (PYTHON: this environment, no install)."""
    need(shell)
    first, second = blocks('extensions/exercises/README.md')[:2]
    assert how(first) == how(second) == 'run'
    python = {'PYTHON': sys.executable}
    made = in_shell(shell, first, ROOT, tmp_path, **python)
    assert made.returncode == 0, made.stdout + made.stderr
    assert (tmp_path / 'rlp-student' / 'train.py').exists(), made.stdout
    checked = in_shell(shell, second, ROOT, tmp_path, **python)
    assert checked.returncode != 0, checked.stdout[-2000:]
    assert 'exercise 1: write draw_random_labels' in checked.stdout, checked.stdout[-2000:]


RECORDER = """#!{python}
import json, os, sys
with open(os.path.join(os.environ['RECORD'], str(len(os.listdir(os.environ['RECORD'])))), 'w') as f:
    json.dump(sys.argv[1:], f)
"""


def recorded(shell, block, tmp_path):
    """The argument lists a block gives .venv/bin/python, run in a folder where that records
    them; the Makefile is there, so that `make install` finds its environment made."""
    work, record = tmp_path / shell, tmp_path / f'{shell}-record'
    os.makedirs(work / '.venv' / 'bin')
    os.makedirs(record)
    for f in ('Makefile', 'requirements.txt', 'extensions/extensions.mk'):
        os.makedirs((work / f).parent, exist_ok=True)
        shutil.copy(os.path.join(ROOT, f), work / f)
    python = work / '.venv' / 'bin' / 'python'
    python.write_text(RECORDER.format(python=sys.executable))
    python.chmod(0o755)
    (work / '.venv' / 'installed').touch()  # newer than requirements.txt: nothing to install
    done = in_shell(shell, block, work, tmp_path, RECORD=str(record), PYTHON='.venv/bin/python')
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'pip install' not in done.stdout, done.stdout
    return [json.loads((record / str(i)).read_text()) for i in range(len(os.listdir(record)))]


def expected_runs():
    """{--out: the options} of every run the exercises' checks read (runs/<name>), and of the
    README's worked example (the same task at seed 0, the exercises' at seed 1: runs/plain and
    runs/memorize)."""
    runs = {}
    for named in measurements.RUNS.values():
        for name, args in named.items():
            argv = [*measurements.COMMON, *args, '--out', f'runs/{name}']
            runs[f'runs/{name}'] = vars(train.build_parser().parse_args(argv))
    return runs


RECORDED = [(path, i, block) for path, i, block in ALL if how(block) == 'record']


@pytest.mark.parametrize('shell', SHELLS)
@pytest.mark.parametrize(
    'path, index, block', RECORDED, ids=[f'{p}:{i + 1}' for p, i, _ in RECORDED]
)
def test_every_training_block_gives_train_py_the_runs_the_checks_read(
    path, index, block, shell, tmp_path
):
    need(shell)
    calls = recorded(shell, block, tmp_path)
    lines = [line for line in block.split('\n') if line.startswith('.venv/bin/python')]
    assert len(calls) == len(lines) > 0, (path, calls)
    runs = expected_runs()
    for argv in calls:
        assert argv[0] == 'train.py', argv
        got = vars(train.build_parser().parse_args(argv[1:]))
        assert got['out'] in runs, f'{path}: a run the checks do not read: {got["out"]}'
        want = runs[got['out']]
        if path == 'README.md':  # the worked example: seed 0, which the exercises do not ask
            want = want | {'seed': 0, 'label_seed': 0}
        differ = [k for k in want if k not in ('device', 'out') and got[k] != want[k]]
        assert not differ, f'{path}, {got["out"]}: --{differ[0]} {got[differ[0]]}, not {want}'


def test_the_worked_example_is_the_make_targets_run():
    """README's worked example runs what `make example-worked` runs (example/worked/)."""
    found = subprocess.run(
        ['make', '-n', 'example-worked', 'PYTHON=python'],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    made = [line.split() for line in found.split('\n') if line.startswith('python train.py')]
    readme = [b for b in blocks('README.md') if b.startswith('make install')]
    assert len(readme) == 1 and len(made) == 2, found
    commands = readme[0].replace('\\\n', ' ').split('\n')
    commands = [c.split()[1:] for c in commands if c.startswith('.venv/bin/python')]
    for ours, make in zip(commands, made, strict=True):
        ours = vars(train.build_parser().parse_args(ours[1:]))
        make = vars(train.build_parser().parse_args(make[2 : make.index('>')]))
        assert {**ours, 'out': ''} == {**make, 'out': ''}, (ours, make)


def test_the_readme_prints_what_the_worked_example_printed():
    """The output README.md shows is example/worked/output.txt, the lines its runs ended with
    (make example-worked writes into results/worked/ where the README writes into runs/)."""
    with open(os.path.join(ROOT, 'README.md')) as f:
        text = f.read()
    shown = re.search(r'^```\n(done \|.*?)^```', text, re.M | re.S)
    with open(os.path.join(ROOT, 'example', 'worked', 'output.txt')) as f:
        printed = f.read().replace('results/worked/', 'runs/')
    assert shown and shown.group(1) == printed, shown and shown.group(1)
    for name in ('plain', 'memorize'):
        probe = json.load(open(os.path.join(ROOT, 'example', 'worked', f'{name}-probe.json')))
        assert not probe['commit'].endswith('-dirty'), f'example/worked: made by {probe["commit"]}'


# --- no fcntl (Windows) -----------------------------------------------------------------------

WITHOUT_FCNTL = """
import importlib, os, sys
sys.modules['fcntl'] = None  # import fcntl now raises ImportError, as on Windows
for folder, dirs, names in os.walk('.'):
    dirs[:] = [d for d in dirs if not d.startswith('.') and d not in ('data', 'results', 'runs')]
    for name in sorted(names):
        path = os.path.normpath(os.path.join(folder, name))
        if name.endswith('.py') and not name.startswith(('test_', 'conftest')):
            importlib.import_module(path[:-3].replace(os.sep, '.'))
import pytest
sys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'tests', 'extensions']))
"""


def test_every_module_imports_and_every_test_collects_without_fcntl():
    done = subprocess.run(
        [sys.executable, '-c', WITHOUT_FCNTL], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert 'error' not in done.stdout.split('\n')[-2].lower(), done.stdout[-2000:]
