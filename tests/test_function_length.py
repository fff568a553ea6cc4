"""No function body in stages/ or pipeline/cli/ is longer than 60 lines (a docstring does not
count, nor a Typer command's option declarations, which sit in its signature)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMIT = 60


def long_functions(source: str, limit: int = LIMIT) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            first = body[0]
            docstring = isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant)
            start = body[1].lineno if docstring and len(body) > 1 else first.lineno
            length = (node.end_lineno or start) - start + 1
            if length > limit:
                out.append((node.name, length))
    return out


def test_the_checker_finds_a_long_body():
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT + 1))
    assert long_functions(f'def f(a=1,\n      b=2):\n    """doc"""\n{body}\n') == [("f", LIMIT + 1)]
    assert long_functions("def g():\n    return 1\n") == []


def test_no_function_body_in_stages_or_the_cli_is_over_60_lines():
    found = {
        f"{path.relative_to(REPO)}:{name}": n
        for folder in ("stages", "pipeline/cli")
        for path in sorted((REPO / folder).glob("*.py"))
        for name, n in long_functions(path.read_text(encoding="utf-8"))
    }
    assert found == {}
