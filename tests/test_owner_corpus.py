"""One owner per folder, read off the source: no module but the corpus module
(pipeline/corpus.py, and pipeline/shards.py, its old name) names a file of the corpus
folder, and none but pipeline/rawstore.py one of the raw store, as a literal, or joins
one of their imported `*_FILE` / `*_DIR` constants into a path. Lock files are
pipeline/locks.py's and stay out of this."""

from __future__ import annotations

import ast
from pathlib import Path

from pipeline import corpus, rawstore

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("pipeline", "stages", "benchmarks")
OWNERS = {
    "corpus": ("pipeline/corpus.py", "pipeline/shards.py"),
    "rawstore": ("pipeline/rawstore.py",),
}
OWNER_MODULES = {"corpus": "corpus", "shards": "corpus", "rawstore": "rawstore"}
EXEMPT = {"LOCK_FILE"}


def _names(module) -> dict[str, str]:
    """The owner's constants that name something in its folder: {constant: file name}."""
    return {
        k: v
        for k, v in vars(module).items()
        if k.endswith(("_FILE", "_DIR")) and k not in EXEMPT and isinstance(v, str)
    }


GUARDED = {"corpus": _names(corpus), "rawstore": _names(rawstore)}


def _path_parts(text: str) -> list[str] | None:
    """The components of a literal that reads as a path (no white space), else None: prose
    (help text, messages, docstrings) may name a file."""
    if not text or any(c.isspace() for c in text):
        return None
    return text.replace("\\", "/").split("/")


def _literal_hits(text: str) -> list[tuple[str, str]]:
    """(owner, file name) for each guarded name the literal holds as a path component."""
    parts = _path_parts(text)
    if parts is None:
        return []
    hits = []
    for owner, names in GUARDED.items():
        for const, name in names.items():
            # A bare word that is also a common key ("pairs", "episodes") counts only inside a path.
            if name in parts and (const.endswith("_FILE") or "." in name or len(parts) > 1):
                hits.append((owner, name))
    return hits


JOINERS = {"join", "joinpath", "Path", "PurePath", "PurePosixPath", "open"}


def _imports(tree: ast.AST) -> tuple[dict[str, str], dict[str, str]]:
    """Local names bound to an owner's guarded constants, and to the owner modules themselves."""
    constants: dict[str, str] = {}
    modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            owner = OWNER_MODULES.get((node.module or "").rsplit(".", 1)[-1])
            for alias in node.names:
                local = alias.asname or alias.name
                if owner and alias.name in GUARDED[owner]:
                    constants[local] = owner
                elif alias.name in OWNER_MODULES:
                    modules[local] = OWNER_MODULES[alias.name]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                last = alias.name.rsplit(".", 1)[-1]
                if last in OWNER_MODULES:
                    modules[alias.asname or alias.name] = OWNER_MODULES[last]
    return constants, modules


def _next_to_slash(pieces: list[str], i: int) -> bool:
    before = pieces[i - 1] if i > 0 else ""
    after = pieces[i + 1] if i + 1 < len(pieces) else ""
    return before.endswith("/") or after.startswith("/")


def violations(source: str, path: str = "<string>") -> list[str]:
    """What `source` (a module at `path`, relative to the repository) does to folders it
    does not own, one line each."""
    tree = ast.parse(source)
    constants, modules = _imports(tree)

    def guarded(node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner = modules.get(node.value.id)
            return owner if owner and node.attr in GUARDED[owner] else None
        return None

    found: set[tuple[int, str, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found |= {(node.lineno, o, f"names {n!r} as a literal") for o, n in _literal_hits(node.value)}
        elif isinstance(node, ast.JoinedStr):
            pieces = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
            found |= {(node.lineno, o, f"names {n!r} in an f-string") for o, n in _literal_hits("".join(pieces))}
            for i, v in enumerate(node.values):
                owner = guarded(v.value) if isinstance(v, ast.FormattedValue) else None
                if owner and _next_to_slash(pieces, i):
                    found.add((node.lineno, owner, "joins an owner's constant into an f-string path"))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                if owner := guarded(side):
                    found.add((node.lineno, owner, "joins an owner's constant to a path with /"))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            for arg in node.args if name in JOINERS else ():
                if owner := guarded(arg):
                    found.add((node.lineno, owner, f"joins an owner's constant to a path with {name}()"))
    exempt = {owner for owner, files in OWNERS.items() if path in files}
    return [f"{path}:{line}: {what} ({owner})" for line, owner, what in sorted(found) if owner not in exempt]


def scan(root: Path) -> list[str]:
    out = []
    for top in SCANNED:
        for file in sorted((root / top).rglob("*.py")):
            rel = file.relative_to(root).as_posix()
            out += violations(file.read_text(encoding="utf-8"), rel)
    return out


# ---------------------------------------------------------------- the tree


def test_no_module_reaches_into_a_folder_it_does_not_own():
    assert scan(ROOT) == []


def test_a_planted_violation_in_the_tree_is_found(tmp_path):
    for top in SCANNED:
        (tmp_path / top).mkdir()
    (tmp_path / "stages" / "planted.py").write_text(
        "from pipeline.rawstore import META_FILE\n\ndef f(work):\n    return work / META_FILE\n", encoding="utf-8"
    )
    assert scan(tmp_path) == ["stages/planted.py:4: joins an owner's constant to a path with / (rawstore)"]


# ---------------------------------------------------------------- the checker on small strings


def test_literals_naming_an_owners_files_are_found():
    src = 'a = root / "stats.json"\nb = f"{work}/meta.json"\nc = "episodes/0001.html"\nd = ".works"\n'
    assert violations(src, "stages/x.py") == [
        "stages/x.py:1: names 'stats.json' as a literal (corpus)",
        "stages/x.py:2: names 'meta.json' as a literal (rawstore)",
        "stages/x.py:2: names 'meta.json' in an f-string (rawstore)",
        "stages/x.py:3: names 'episodes' as a literal (rawstore)",
        "stages/x.py:4: names '.works' as a literal (corpus)",
    ]


def test_joins_of_imported_constants_are_found_however_they_are_imported():
    src = (
        "import os\n"
        "from pipeline import rawstore as rs\n"
        "from pipeline.corpus import STATE_FILE as S\n"
        "from ..shards import CARD_FILE\n"
        "x = os.path.join(root, rs.TEXT_FILE)\n"
        "y = f'{root}/{S}'\n"
        "z = Path(root, CARD_FILE)\n"
    )
    assert violations(src, "pipeline/x.py") == [
        "pipeline/x.py:5: joins an owner's constant to a path with join() (rawstore)",
        "pipeline/x.py:6: joins an owner's constant into an f-string path (corpus)",
        "pipeline/x.py:7: joins an owner's constant to a path with Path() (corpus)",
    ]


def test_prose_keys_lock_files_and_the_owners_themselves_pass():
    src = (
        "from pipeline.corpus import LOCK_FILE, STATS_FILE\n"
        "from pipeline.locks import LOCK_FILE as L\n"
        "help = 'the card (README.md) and stats.json'\n"
        "row = {'pairs': 1, 'episodes': 2}\n"
        "lock = root / LOCK_FILE\n"
        "msg = f'no {STATS_FILE} beside these shards'\n"
    )
    assert violations(src, "stages/x.py") == []
    own = "from pipeline.rawstore import META_FILE\nx = work / META_FILE\ny = 'meta.json'\n"
    assert violations(own, "pipeline/rawstore.py") == []
    assert violations(own, "pipeline/corpus.py") != []
