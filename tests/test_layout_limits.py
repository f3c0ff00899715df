"""The size limits of docs/layout.md: under ``mmaction_gblend/`` and
``tools/`` no module over 400 lines of code and no function over 80.

A line of code holds a token other than a comment; blank lines and
docstrings (of modules, classes and functions) are not counted, so that
explaining a step never pushes a module over its limit.
"""
import ast
import io
import os.path as osp
import tokenize
from pathlib import Path
from typing import Iterator, Set, Tuple

import pytest

REPO = Path(osp.dirname(osp.dirname(osp.abspath(__file__))))
ROOTS = ('mmaction_gblend', 'tools')
MODULE_LIMIT = 400
FUNCTION_LIMIT = 80
_SCOPES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
_NOT_CODE = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
             tokenize.DEDENT, tokenize.ENDMARKER)


def _docstring_lines(tree: ast.Module) -> Set[int]:
    lines: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, _SCOPES) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and \
                    isinstance(first.value, ast.Constant) and \
                    isinstance(first.value.value, str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def code_lines(source: str) -> Tuple[ast.Module, Set[int]]:
    """The module's tree and the numbers of its lines of code."""
    tree = ast.parse(source)
    docstrings = _docstring_lines(tree)
    lines: Set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in _NOT_CODE:
            lines.update(n for n in range(token.start[0], token.end[0] + 1)
                         if n not in docstrings)
    return tree, lines


def sizes(source: str) -> Iterator[Tuple[str, int]]:
    """``('<module>', n)``, then ``(function name, n)`` for every function
    (methods and nested functions included)."""
    tree, lines = code_lines(source)
    yield '<module>', len(lines)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, sum(node.lineno <= n <= node.end_lineno
                                 for n in lines)


def test_the_counter_leaves_out_docstrings_comments_and_blank_lines():
    source = '''"""Module docstring,
two lines."""
import os  # a comment


def f(x):
    """Docstring."""
    # a comment
    y = (x +
         1)

    return """not a docstring"""
'''
    assert dict(sizes(source)) == {'<module>': 5, 'f': 4}


@pytest.mark.parametrize('root', ROOTS)
def test_no_module_or_function_over_the_limits(root):
    over = []
    for path in sorted((REPO / root).rglob('*.py')):
        for name, n in sizes(path.read_text()):
            limit = MODULE_LIMIT if name == '<module>' else FUNCTION_LIMIT
            if n > limit:
                over.append(f'{path.relative_to(REPO)}: {name} has {n} '
                            f'lines of code (limit {limit})')
    assert not over, '\n'.join(over)
