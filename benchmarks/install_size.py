"""Disk size of each install target, from the packages installed in this environment.

For `make install` (the core), `make demo` (core + serve), each extra and `make install-dev`,
walks the dependency closure of the requirements pyproject.toml declares through the installed
distributions' metadata and adds up the files each distribution's RECORD lists. Run it in an
environment where `make install-dev` has been done (every package present):

    .venv/bin/python benchmarks/install_size.py

A package missing from the environment is named and counted as 0.
"""

from __future__ import annotations

import os
import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

_NAME = re.compile(r"[-_.]+")


def _norm(name: str) -> str:
    return _NAME.sub("-", name).lower()


def _dists() -> dict[str, metadata.Distribution]:
    return {_norm(d.metadata["Name"]): d for d in metadata.distributions()}


def _size(dist: metadata.Distribution) -> int:
    total = 0
    for f in dist.files or ():
        p = dist.locate_file(f)
        try:
            total += os.path.getsize(p)
        except OSError:
            pass
    return total


def _closure(reqs: list[Requirement], dists: dict, missing: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = [(r, frozenset(r.extras)) for r in reqs]
    while todo:
        req, extras = todo.pop()
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in extras or {""}):
            continue
        name = _norm(req.name)
        dist = dists.get(name)
        if dist is None:
            missing.add(name)
            continue
        key = name + "[" + ",".join(sorted(extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        for sub in dist.requires or ():
            r = Requirement(sub)
            todo.append((r, frozenset(r.extras)))
        for extra in extras:  # the extras' own requirements carry an `extra == ...` marker
            for sub in dist.requires or ():
                r = Requirement(sub)
                if r.marker is not None and r.marker.evaluate({"extra": extra}):
                    todo.append((r, frozenset(r.extras)))
    return {k.split("[")[0] for k in seen}


def main() -> None:
    dists = _dists()
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    core = [Requirement(r) for r in project["dependencies"]]
    optional = project["optional-dependencies"]
    extras = sorted(optional)
    missing: set[str] = set()
    sizes = {n: _size(d) for n, d in dists.items()}
    core_set = _closure(core, dists, missing) - {"nocpipe"}

    def extra_set(name: str) -> set[str]:
        own = [Requirement(r) for r in optional[name]]
        # nocpipe[a,b] inside an extra: those extras, from this file rather than the installed metadata
        inner = [e for r in own if _norm(r.name) == "nocpipe" for e in r.extras]
        found = _closure([r for r in own if _norm(r.name) != "nocpipe"], dists, missing)
        return found.union(*(extra_set(e) for e in inner))

    def mb(names: set[str]) -> str:
        return f"{sum(sizes[n] for n in names) / 1e6:,.0f} MB"

    print(f"{'target':<34} {'packages':>8} {'size':>10}")
    print(f"{'make install (core)':<34} {len(core_set):>8} {mb(core_set):>10}")
    demo = core_set | extra_set("serve")
    print(f"{'make demo (core + serve)':<34} {len(demo):>8} {mb(demo):>10}")
    for e in extras:
        own = extra_set(e) - core_set
        print(f"{'  extra ' + e + ' (beyond core)':<34} {len(own):>8} {mb(own):>10}")
    dev = core_set | extra_set("dev")
    print(f"{'make install-dev (all)':<34} {len(dev):>8} {mb(dev):>10}")
    biggest = sorted(core_set, key=lambda n: -sizes[n])[:8]
    print("largest core packages: " + ", ".join(f"{n} {sizes[n] / 1e6:,.0f} MB" for n in biggest))
    if missing:
        print("not installed here (counted as 0): " + ", ".join(sorted(missing)))


if __name__ == "__main__":
    main()
