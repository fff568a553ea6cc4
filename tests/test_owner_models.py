"""One owner for the model folder: no module but pipeline/modeldir.py names a file inside it.

The checker reads every module of pipeline/ and stages/ as a syntax tree and finds
  * a model-folder file name written as a string (`"vocab.json"`, `f"{d}/model.keras"`),
    docstrings aside (they describe the folder; they do not open it);
  * a `*_FILE` constant imported from pipeline.modeldir joined to a path
    (`d / modeldir.VOCAB_FILE`, `os.path.join(d, MODEL_FILE)`, `d.joinpath(...)`).
It is tested on planted violations first, so a checker that finds nothing cannot pass.
"""

from __future__ import annotations

import ast
from pathlib import Path

from pipeline import modeldir

REPO = Path(__file__).resolve().parents[1]
OWNER = REPO / "pipeline" / "modeldir.py"
NAMES = set(modeldir.ALL_FILES)
CONSTANTS = {k for k in vars(modeldir) if k.endswith("_FILE")}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _names_a_file(text: str) -> bool:
    text = text.strip()
    return any(text == n or text.endswith(("/" + n, "\\" + n)) for n in NAMES)


def _constants_of_modeldir(tree: ast.AST) -> set[str]:
    """Local names bound to modeldir's *_FILE constants (`from pipeline.modeldir import X_FILE as Y`)."""
    local = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("modeldir"):
            local |= {a.asname or a.name for a in node.names if a.name in CONSTANTS}
    return local


def _is_constant(node: ast.AST, local: set[str]) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr in CONSTANTS
    return isinstance(node, ast.Name) and node.id in local


def _joined(call: ast.Call) -> list[ast.AST]:
    """The arguments a call joins onto a path: os.path.join(d, X) and Path(d, X) after the first,
    d.joinpath(X) all of them."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "joinpath":
        return list(call.args)
    if (isinstance(func, ast.Attribute) and func.attr == "join") or (
        isinstance(func, ast.Name) and func.id in ("Path", "PurePath")
    ):
        return list(call.args[1:])
    return []


def violations(source: str, where: str = "<planted>") -> list[str]:
    tree = ast.parse(source)
    docs, local = _docstrings(tree), _constants_of_modeldir(tree)
    found = []
    for node in ast.walk(tree):
        line = f"{where}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if _names_a_file(node.value):
                found.append(f"{line}: names {node.value.strip()!r}")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            if _is_constant(node.right, local):
                found.append(f"{line}: joins a modeldir *_FILE constant to a path")
        elif isinstance(node, ast.Call) and any(_is_constant(a, local) for a in _joined(node)):
            found.append(f"{line}: joins a modeldir *_FILE constant to a path")
    return found


def test_the_checker_finds_planted_violations():
    planted = '''
"""A docstring may say model.keras."""
from pipeline import modeldir
from pipeline.modeldir import VOCAB_FILE as V
import os
from pathlib import Path

def f(d):
    a = d / "config.json"
    b = f"{d}/model.keras"
    c = d / modeldir.CHECKPOINT_FILE
    e = os.path.join(d, modeldir.HISTORY_FILE)
    g = d / V
    h = Path(d, V)
    i = d.joinpath(modeldir.NGRAM_FILE)
    return "evaluate.json"
'''
    found = violations(planted)
    assert len(found) == 8, found
    assert not any(":2:" in v for v in found)  # the docstring is not a violation
    clean = 'from pipeline.modeldir import ModelDir\ndef f(d):\n    return ModelDir(d).vocab_path, "a vocab.json-like word"\n'
    assert violations(clean) == []


def test_no_module_but_modeldir_names_a_model_folder_file():
    found = []
    for path in sorted([*(REPO / "pipeline").rglob("*.py"), *(REPO / "stages").rglob("*.py")]):
        if path != OWNER:
            found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    assert found == [], "\n".join(found)
