"""What a run needs besides the method: off the reading list (README), read it last or never.

Typed options with one-line refusals, atomic files, the code's identity (git commit and a
fingerprint of the core files), Student's t quantile, checkpoints that resume bit for bit, the
refusal of a folder that holds another run, and the datasets' files: torchvision's, or the Debian
package's offline, read one process at a time. The core calls these; nothing here knows about
random labels.
"""

import argparse
import ast
import contextlib
import functools
import gzip
import hashlib
import json
import math
import os
import pickle
import shutil
import socket
import statistics
import subprocess
import sys

import numpy as np
import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
CORE = ('data.py', 'model.py', 'regularizer.py', 'metrics.py', 'train.py', 'plumbing.py')
# options that say where and how a run goes, not what it computes: a rerun may change them
PLACE_OPTIONS = ('out', 'device', 'compile', 'data_dir', 'probe')
# under torchrun (extensions/multigpu) every process computes the same numbers; one writes them
WRITER = int(os.environ.get('RANK', 0)) == 0


class Refused(Exception):
    """A folder or an option that a run refuses: one line on stderr, exit code 2."""


# --- options ------------------------------------------------------------------------------------


def checked(kind, ok, rule):
    """An argparse type: text -> kind, refused with `rule` unless ok(value) holds."""

    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f'must be {rule} (got {text})')
        return value

    return convert


COUNT = checked(int, lambda v: v >= 1, 'an integer >= 1')
K_LABELS = checked(int, lambda v: v >= 2, 'an integer >= 2 (K = 2: binary labels)')
POSITIVE = checked(float, lambda v: math.isfinite(v) and v > 0, 'a finite number > 0')
NONNEGATIVE = checked(float, lambda v: math.isfinite(v) and v >= 0, 'a finite number >= 0')
FRACTION = checked(float, lambda v: 0 <= v < 1, 'in [0, 1)')
PROBABILITY = checked(float, lambda v: 0 <= v <= 1, 'a probability in [0, 1]')


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every default but None, where the help text says what no value means."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2, no usage dump), every default in --help, and
    `checks`: functions of the parsed options that say why a combination is refused (or None),
    which `parse` runs after parsing (cuda_visible and writable are two)."""

    def __init__(self, prog, doc, **kwargs):
        super().__init__(
            prog, description=doc.split('\n')[0], formatter_class=HelpFormatter, **kwargs
        )
        self.checks = []

    def parse(self, argv=None):
        """The options, checked: a refused value or combination is one line and exit code 2."""
        cfg = self.parse_args(argv)
        for check in self.checks:
            if why := check(cfg):
                self.error(why)
        return cfg

    def error(self, message):
        self.exit(2, f'{self.prog}: error: {message} (see --help)\n')

    def fail(self, message):
        self.exit(2, f'{self.prog}: error: {message}\n')


def cuda_visible(cfg):
    if cfg.device == 'cuda' and not torch.cuda.is_available():
        return '--device cuda: no CUDA GPU is visible; use --device cpu'
    return None


def writable(folder):
    """Why results cannot be written to `folder` (made if missing), or None: checked before the
    first epoch, not after it."""
    try:
        os.makedirs(folder, exist_ok=True)
        test = os.path.join(folder, f'.write-test-{os.getpid()}')
        open(test, 'w').close()
        os.remove(test)
    except OSError as e:
        return f'--out {folder} is not writable ({e.strerror}); choose another folder'
    return None


def pick_device(choice):
    """'auto' (CUDA if any), 'cpu' or 'cuda' -> a torch.device."""
    cuda = choice == 'cuda' or (choice == 'auto' and torch.cuda.is_available())
    return torch.device('cuda' if cuda else 'cpu')


# --- files and the code's identity ----------------------------------------------------------------


def write_json(path, obj):
    """Write to a temporary name, then rename: a reader never sees half a file."""
    if WRITER:
        with open(path + '.tmp', 'w') as f:
            json.dump(obj, f, indent=1)
        os.replace(path + '.tmp', path)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def commit():
    """The code's git commit, '-dirty' when a .py file differs from it; 'none' where the code is
    not a git checkout of its own (a student copy, an unpacked archive), found out quietly."""
    git = ['git', '-C', HERE]
    try:
        top = subprocess.run([*git, 'rev-parse', '--show-toplevel'], capture_output=True, text=True)
        own = top.returncode == 0 and os.path.samefile(top.stdout.strip(), HERE)
        head = subprocess.run([*git, 'rev-parse', '-q', '--verify', 'HEAD'], capture_output=True)
        if not own or head.returncode != 0:  # another repository's folder, or no commit yet
            return 'none'
        diff = subprocess.run([*git, 'diff', '--quiet', 'HEAD', '--', '*.py'], capture_output=True)
    except OSError:  # no git
        return 'none'
    return head.stdout.decode().strip() + ('-dirty' if diff.returncode == 1 else '')


def code_fingerprint():
    """A hash of the core files as they are now, uncommitted changes included: two runs with the
    same fingerprint were computed by the same code, whatever git says. Made of code_parts."""
    return combined(code_parts())


def combined(parts):
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


# Functions that a run reaches only when an option has a value: regularizer.losses calls the output
# regularizer only under --unlearn reg. A run with another value never ran the function, so an edit
# to it leaves the run valid (exercise 5 writes it after exercise 4's runs).
# extensions/exercises/test_handout.py holds it true: without that value, a run finishes with the
# function raising.
REACHED_ONLY_WHEN = {'regularizer.py:output_regularizer': ('unlearn', 'reg')}


def cut(source, qualname):
    """(the source of function `qualname`, 'f' or 'Class.method', and the source without it; ''
    and the source itself where there is none)."""
    nodes, found = ast.parse(source).body, None
    for word in qualname.split('.'):
        defs = (n for n in nodes if isinstance(n, (ast.ClassDef, ast.FunctionDef)))
        found = next((n for n in defs if n.name == word), None)
        nodes = found.body if found else []
    if found is None:
        return '', source
    lines = source.split('\n')
    first = min([found.lineno, *(d.lineno for d in found.decorator_list)]) - 1
    rest = [*lines[:first], f'<{qualname}>', *lines[found.end_lineno :]]
    return '\n'.join(lines[first : found.end_lineno]), '\n'.join(rest)


@functools.cache
def code_parts():
    """The fingerprint in parts: each function of REACHED_ONLY_WHEN ('file:function'), and the
    core files without them ('rest'), each a hash of its source."""
    texts, parts = {}, {}
    for name in CORE:
        with open(os.path.join(HERE, name)) as f:
            texts[name] = f.read()
    for part in REACHED_ONLY_WHEN:
        name, qualname = part.split(':')
        parts[part], texts[name] = cut(texts[name], qualname)
    parts['rest'] = ''.join(name + texts[name] for name in CORE)
    return {k: hashlib.sha256(v.encode()).hexdigest()[:12] for k, v in parts.items()}


def reaches(config, part):
    """Whether a run of these options runs this part of the code (code_parts)."""
    if part not in REACHED_ONLY_WHEN:
        return True
    option, value = REACHED_ONLY_WHEN[part]
    return config.get(option) == value


def same_code(made, config):
    """Whether a file (results.json, probe.json, a checkpoint) was made by the code as it is now:
    its fingerprint, or else every part of the code that its run's options reach."""
    now = code_fingerprint()
    if made.get('code') == now:
        return True
    then, parts = made.get('code_parts') or {}, code_parts()
    if not then or now != combined(parts):  # no parts recorded, or a test's own fingerprint
        return False
    return all(then.get(p) == parts[p] for p in parts if reaches(config, p))


def identity():
    """Which code made a file: its git commit, the fingerprint of the core files, and its parts."""
    return {'commit': commit(), 'code': code_fingerprint(), 'code_parts': code_parts()}


def environment(device, bf16):
    """results.json's `env`: versions, device, what precision ran, and the code."""
    return {
        'torch': torch.__version__,
        'torchvision': torchvision.__version__,
        'device': torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu',
        'world_size': int(os.environ.get('WORLD_SIZE', 1)),
        'bf16': bf16 and device.type == 'cuda',  # what ran, whatever the flag said
    }


def points(t, key):
    """A difference of accuracies with its interval, in points: '+0.3 [-0.8, +1.2]'."""
    lo, hi = t[f'{key}_ci']
    return f'{100 * t[key]:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]'


# --- Student's t ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def t_quantile(df, p=0.975):
    """The p-quantile of Student's t with df degrees of freedom: Welch's df may be fractional,
    df = inf gives the normal. P(|T| < t) = (2 / B(1/2, df/2)) ∫_0^φ cos^(df-1)(u) du with
    φ = atan(t / √df) (the t density in its angle variable), integrated by Simpson's rule and
    inverted by bisection: a few lines instead of scipy (test_metrics.py holds scipy's values)."""
    if math.isinf(df):
        return statistics.NormalDist().inv_cdf(p)
    log_beta = math.lgamma(0.5) + math.lgamma(df / 2) - math.lgamma((df + 1) / 2)

    def central(t, n=128):  # P(|T| < t)
        h = math.atan(t / math.sqrt(df)) / n
        weights = [1] + [4 if i % 2 else 2 for i in range(1, n)] + [1]
        area = sum(w * math.cos(i * h) ** (df - 1) for i, w in enumerate(weights)) * h / 3
        return 2 * area * math.exp(-log_beta)

    lo, hi = 0.0, 1.0
    while central(hi) < 2 * p - 1:
        hi *= 2
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if central(mid) < 2 * p - 1 else (lo, mid)
    return (lo + hi) / 2


# --- a run's folder: checkpoints, resume, refusals ------------------------------------------------


def refuse_other_run(stored, config, what):
    """Refuse an existing folder that holds a run of another config, naming what differs. An
    option the stored run lacks was added since; read as None (off), it is what that run did."""
    keys = (stored.keys() | config.keys()) - set(PLACE_OPTIONS)
    diff = [k for k in sorted(keys) if stored.get(k) != config.get(k)]
    if diff:
        shown = [f'--{k.replace("_", "-")} {stored.get(k)} -> {config.get(k)}' for k in diff]
        raise Refused(
            f'--out {config["out"]} holds {what} of a different run ({", ".join(shown)}); '
            'use another --out'
        )


def finished(folder, results):
    """What a rerun over a finished run's folder says: nothing to do, or that other code made it."""
    if same_code(results, results['config']):
        return f'{folder}: finished, nothing to do'
    return other_code(folder, results.get('code'))


def other_code(folder, code):
    """One line for a folder whose run was made by code of another fingerprint: how to redo it."""
    now = code_fingerprint()
    return (
        f'{folder} was made by other code (fingerprint {code}, now {now}): its numbers are that '
        f"code's. To redo it with this code: rm -r {folder}, then rerun"
    )


def save_checkpoint(path, model, opt, loader, history, config, train_index):
    """Everything a resumed run needs to continue bit for bit (weights, optimizer, data order,
    random number generators), which samples of the training split it trains on, and the code."""
    state = {
        'train_index': train_index,
        'model': model.state_dict(),
        'optimizer': opt.state_dict(),
        'loader': loader.state_dict(),
        'rng_cpu': torch.get_rng_state(),
        'rng_cuda': torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
        'history': history,
        'config': config,
        'code': code_fingerprint(),
        'code_parts': code_parts(),
    }
    if WRITER:
        torch.save(state, path + '.tmp')
        os.replace(path + '.tmp', path)  # atomic: a kill loses at most the current epoch


def load_checkpoint(path, model, config, opt=None, loader=None):
    """Restore a checkpoint of this same run and code (another's is refused); returns its history.
    Without opt and loader: the weights only."""
    ckpt = torch.load(path, map_location=next(model.parameters()).device, weights_only=False)
    refuse_other_run(ckpt['config'], config, 'a checkpoint')
    if opt is not None and not same_code(ckpt, ckpt['config']):
        raise Refused(
            other_code(os.path.dirname(path), ckpt.get('code')) + ' (or restore that code)'
        )
    model.load_state_dict(ckpt['model'])
    if opt is not None:
        opt.load_state_dict(ckpt['optimizer'])
        loader.load_state_dict(ckpt['loader'])
        torch.set_rng_state(ckpt['rng_cpu'])
        if ckpt['rng_cuda'] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(ckpt['rng_cuda'])
    return ckpt['history']


def read_finished(path, config):
    """The results.json of a finished run of this same config, or None if there is none."""
    if not os.path.exists(path):
        return None
    results = read_json(path)
    refuse_other_run(results['config'], config, 'the results')
    return results


# --- one dataset unpacked at a time ---------------------------------------------------------------


@contextlib.contextmanager
def one_at_a_time(folder):
    """Runs started together (make -j) download or unpack a dataset one after the other: an
    exclusive lock on folder/.lock, which the system drops when the process ends, even when it is
    killed. A folder we cannot write to is only read: no lock needed."""
    try:
        os.makedirs(folder, exist_ok=True)
        lock = open(os.path.join(folder, '.lock'), 'a+')
    except OSError:
        yield
        return
    with lock:
        if sys.platform == 'win32':  # no fcntl on Windows: msvcrt locks a byte of the file
            import msvcrt

            lock.seek(0)
            while True:  # LK_LOCK tries for 10 s, then raises: try again until it is ours
                try:
                    msvcrt.locking(lock.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    continue
        else:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


# --- datasets on disk: torchvision's files, the Debian package offline ----------------------------

FASHION_MNIST_DEBIAN = '/usr/share/datasets/fashion-mnist'  # apt-get install dataset-fashion-mnist
# the pickle batches torchvision downloads: folder, training files, test files, label key
CIFAR_FILES = {
    'cifar10': (
        'cifar-10-batches-py',
        [f'data_batch_{i}' for i in range(1, 6)],
        ['test_batch'],
        'labels',
    ),
    'cifar100': ('cifar-100-python', ['train'], ['test'], 'fine_labels'),
}


class DataError(Exception):
    """A missing or unreadable dataset: one line on stderr, exit code 2."""


def read_dataset(name, data_dir):
    """((train images, labels), (test images, labels), classes) of cifar10, cifar100 or
    fashion-mnist in data_dir, read from torchvision's files (downloaded, or unpacked from the
    Debian package, if missing), checked; DataError says what is wrong and how to fix it."""
    try:
        with one_at_a_time(data_dir):
            reader = load_fashion_mnist if name == 'fashion-mnist' else load_cifar
            train, test, classes = reader(data_dir, name)
    except DataError as e:
        raise DataError(f'--dataset {name}: not found in --data-dir {data_dir} and {e}') from None
    except (OSError, EOFError, ValueError, KeyError, pickle.UnpicklingError, RuntimeError) as e:
        raise DataError(
            f'--dataset {name}: files in --data-dir {data_dir} are corrupt or truncated '
            f'({type(e).__name__}); delete them and download again'
        ) from None
    (train_x, train_y), (test_x, test_y) = train, test
    if len(train_x) != len(train_y) or len(test_x) != len(test_y) or train_y.max() >= classes:
        raise DataError(f'--dataset {name}: images and labels in --data-dir {data_dir} differ')
    return train, test, classes


def download(make, fix):
    socket.setdefaulttimeout(15)  # offline, fail in seconds instead of hanging on a mirror
    try:
        make()
    except Exception as e:
        raise DataError(f'could not download it ({type(e).__name__}); {fix}') from None


def load_cifar(root, name):
    folder, train_files, test_files, key = CIFAR_FILES[name]
    cls = torchvision.datasets.CIFAR10 if name == 'cifar10' else torchvision.datasets.CIFAR100
    if not os.path.isdir(os.path.join(root, folder)):
        download(lambda: cls(root, download=True), f'unpack {cls.url} into --data-dir')

    def read_batches(files):  # each: {'data': (n, 3072) uint8, key: [n labels]}
        xs, ys = [], []
        for f in files:
            with open(os.path.join(root, folder, f), 'rb') as fh:
                batch = pickle.load(fh, encoding='latin1')
            xs.append(np.asarray(batch['data'], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[key], dtype=np.int64))
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    return read_batches(train_files), read_batches(test_files), 100 if name == 'cifar100' else 10


def load_fashion_mnist(root, name='fashion-mnist'):
    raw = os.path.join(root, 'FashionMNIST', 'raw')
    if not os.path.exists(os.path.join(raw, 'train-images-idx3-ubyte')):
        # offline: the Debian package's files, decompressed into torchvision's layout
        if os.path.isdir(FASHION_MNIST_DEBIAN):
            os.makedirs(raw, exist_ok=True)
            for gz in os.listdir(FASHION_MNIST_DEBIAN):
                path = os.path.join(raw, gz.removesuffix('.gz'))
                with gzip.open(os.path.join(FASHION_MNIST_DEBIAN, gz)) as src:
                    with open(path + '.tmp', 'wb') as dst:
                        shutil.copyfileobj(src, dst)
                os.replace(path + '.tmp', path)  # a kill never leaves half a file under the name
        else:
            fix = 'apt-get install dataset-fashion-mnist, or download it elsewhere into --data-dir'
            fmnist = torchvision.datasets.FashionMNIST
            for train in (True, False):
                download(lambda t=train: fmnist(root, train=t, download=True), fix)
    splits = []
    for train in (True, False):
        ds = torchvision.datasets.FashionMNIST(root, train=train)
        splits.append((ds.data.unsqueeze(1), ds.targets.long()))  # (N, 1, 28, 28) uint8
    return splits[0], splits[1], 10
