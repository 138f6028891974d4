"""Print the longest functions and modules of a package, by lines of code.

A line of code is a line that is neither blank nor only a comment; a
function's docstring does not count. Nested functions are counted on their
own and also inside the function that holds them (that is what a reader of
the outer function has to read).

Usage::

    python tools/code_stats.py            # d2lssd/, the 15 longest functions
    python tools/code_stats.py d2lssd --top 30 --limit 80

Exits 0 always: it reports, it does not judge (``--limit`` only marks the
functions over it with ``*``).
"""

from __future__ import annotations

import argparse
import ast
import io
import tokenize
from pathlib import Path


def code_lines(source: str) -> set[int]:
    """Line numbers (1-based) holding a token other than a comment or a newline."""
    lines: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENCODING, tokenize.ENDMARKER}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in skip:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines


def docstring_lines(node: ast.AST) -> set[int]:
    """Line numbers of the docstring of a function, class or module node, if it has one."""
    body = getattr(node, "body", None)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return set(range(body[0].lineno, body[0].end_lineno + 1))
    return set()


def function_stats(path: Path, root: Path) -> list[tuple[int, str]]:
    """(lines of code without docstrings, "file:line name") for every function in ``path``."""
    source = path.read_text()
    code = code_lines(source)
    tree = ast.parse(source)
    docs: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            docs |= docstring_lines(node)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            span = set(range(start, node.end_lineno + 1))
            out.append((len((span & code) - docs), f"{path.relative_to(root)}:{node.lineno} {node.name}"))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", default="d2lssd")
    parser.add_argument("--top", type=int, default=15, help="how many functions and modules to print")
    parser.add_argument("--limit", type=int, default=80, help="mark functions longer than this")
    args = parser.parse_args(argv)
    package = Path(args.package)
    root = package.parent
    files = sorted(package.rglob("*.py"))
    functions = sorted((s for f in files for s in function_stats(f, root)), reverse=True)
    modules = sorted(((len(f.read_text().splitlines()), str(f.relative_to(root))) for f in files), reverse=True)
    print(f"longest functions (lines of code, docstring aside; * over {args.limit}):")
    for n, name in functions[: args.top]:
        print(f"  {n:4d}{'*' if n > args.limit else ' '} {name}")
    over = sum(n > args.limit for n, _ in functions)
    print(f"functions over {args.limit}: {over} of {len(functions)}")
    print("longest modules (lines, all of them):")
    for n, name in modules[: args.top]:
        print(f"  {n:4d}  {name}")


if __name__ == "__main__":
    main()
