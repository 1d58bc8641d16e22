"""Rules every code check applies to the functions a student writes: the function is the
student's own (written, and importing nothing from the checks, whose references are theirs), and
where a README asks for no loop, it runs as fast as one tensor operation (a rule on behaviour: one
that read the code for loops failed a harmless comprehension and passed a loop in a helper)."""

import ast
import inspect
import math
import textwrap
import time


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
