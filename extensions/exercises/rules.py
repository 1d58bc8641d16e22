"""Rules every code check applies to the functions a student writes: the function is the
student's own (it imports nothing from the checks, whose references are theirs), and where a
README asks for it, it loops over nothing."""

import ast
import inspect
import textwrap


def source_tree(function):
    return ast.parse(textwrap.dedent(inspect.getsource(function)))


def imports_no_check(function):
    """Fail when the function imports from this exercises folder (a check's reference)."""
    for node in ast.walk(source_tree(function)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or '']
        for name in names:
            assert 'exercises' not in name and 'check' not in name, (
                f'{function.__qualname__} imports {name}: write the function yourself'
            )


def has_no_loop(function):
    """Fail when the function has a for or while loop or a comprehension."""
    loops = (ast.For, ast.While, ast.ListComp, ast.GeneratorExp, ast.SetComp, ast.DictComp)
    found = [type(n).__name__ for n in ast.walk(source_tree(function)) if isinstance(n, loops)]
    assert not found, (
        f'{function.__qualname__} loops ({", ".join(found)}): the README asks for none'
    )
