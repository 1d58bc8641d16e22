"""Rules every code check applies to the functions a student writes: the function is the
student's own (written, and importing nothing from the checks, whose references are theirs), and
where a README asks for no loop, it runs as fast as one tensor operation (a rule on behaviour: one
that read the code for loops failed a harmless comprehension and passed a loop in a helper).

And where a check's reference is a formula (the closed forms of exercises 2, 4 and 5), a student
copy does not hold it: `make student` draws each check's points from a seed of the check's own,
stores the reference's values on them (references.pt) and blanks the formula (REFERENCES). In the
teacher's repository and in the grader the formula is there and the points are drawn afresh on
every run, so a solution that looks the stored values up passes in the copy and fails there.
"""

import ast
import inspect
import math
import os
import textwrap
import time
import zlib

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
STORED = os.path.join(HERE, 'references.pt')  # in a student copy only
# the check functions that compute a formula the student writes: blanked in a copy
REFERENCES = {
    2: ['closed_form', 'score_interval'],
    4: ['dann_ramp'],
    5: ['formula', 'gradient_at_saturation'],
}
_stored, _recording, _test, _calls = None, None, None, 0


def draws(test):
    """Seed the points test `test` draws: from its name in a copy (the stored values are on those
    points) or while recording them; afresh on every run elsewhere."""
    global _test, _calls, _stored
    _test, _calls = test, 0
    if _stored is None and _recording is None and os.path.exists(STORED):
        _stored = torch.load(STORED)
    if _stored is not None or _recording is not None:
        torch.manual_seed(zlib.crc32(test.encode()))
    else:
        torch.seed()  # a seed from the operating system's randomness


def fingerprint(args):
    """What identifies a reference's points: each tensor's shape and sum, each number."""
    return [(tuple(a.shape), float(a.double().sum())) if torch.is_tensor(a) else a for a in args]


def reference(formula, *args):
    """formula(*args), the check's reference value: computed where the check holds the formula,
    read from the stored values in a copy (on the points make student drew)."""
    global _calls
    key, _calls = f'{_test}:{_calls}', _calls + 1
    if _stored is not None:
        points, value = _stored[key]
        assert points == fingerprint(args), (
            f"{key}: this copy's stored references were drawn on other points (another torch?); "
            'ask for a new copy'
        )
        return value
    value = formula(*args)
    if _recording is not None:
        _recording[key] = (fingerprint(args), value)
    return value


def record(check, target):
    """Run check `check` (a module) on this repository's code, storing its references' values in
    the copy at `target` (make student)."""
    global _recording
    _recording = torch.load(target) if os.path.exists(target) else {}
    try:
        for name, test in inspect.getmembers(check, inspect.isfunction):
            if name.startswith('test_') and test.__module__ == check.__name__:
                test()
        torch.save(_recording, target)
    finally:
        _recording = None


def source_tree(function):
    return ast.parse(textwrap.dedent(inspect.getsource(function)))


def imports_no_check(function):
    """Fail when the function is still the blank `make student` left (nothing of the student's
    own yet) or imports from this exercises folder (a check's reference)."""
    tree = source_tree(function)
    body = tree.body[0].body[1:] if ast.get_docstring(tree.body[0]) else tree.body[0].body
    blank = len(body) == 1 and isinstance(body[0], ast.Raise)
    assert not blank, f'{function.__qualname__}: not written yet (its body raises)'
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or '']
        for name in names:
            assert 'exercises' not in name and 'check' not in name, (
                f'{function.__qualname__} imports {name}: write the function yourself'
            )


def seconds(function, *args, repeat=5):
    """The shortest of `repeat` timings of function(*args): the least disturbed by other work."""
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args)
        best = min(best, time.perf_counter() - start)
    return best


def as_fast_as_one_pass(function, tensor, *args, times=20):
    """Fail when function(tensor, *args) takes longer than `times` passes over the tensor's memory
    (a sum over its last dimension, timed beside it, so a busy machine slows both): what the "no
    loop" of a README is for. A Python loop over the samples costs microseconds a sample, however
    it hides (a helper, map, a module loaded at run time); one tensor operation does not."""
    one_pass = seconds(lambda: tensor.sum(-1))
    took = math.inf
    for _ in range(3):  # the best of three, but no second try for what is far too slow
        start = time.perf_counter()
        function(tensor, *args)
        took = min(took, time.perf_counter() - start)
        if took <= times * one_pass or took > 10 * times * one_pass:
            break
    assert took <= times * one_pass, (
        f'{function.__qualname__} took {1e3 * took:.1f} ms on {tuple(tensor.shape)}, '
        f'{took / one_pass:.0f} passes over its memory ({1e3 * one_pass:.2f} ms each; at most '
        f'{times} allowed): a Python loop over the samples?'
    )
