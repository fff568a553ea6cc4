"""A folder at a URL (an object store, a remote file system) worked on through a local copy.

A stage that reads and rewrites a whole folder (extract-pairs' corpus: its state, its
per-work files, its shards) runs its local code unchanged on a temporary copy. The folder's
owner drives it (pipeline.corpus.writing) and gives the names: the files to bring in and
the one to commit last. The mirror itself knows no names but its own temporaries':

    mirror = Mirror(Location("s3://bucket/corpus"), Path(tmp))
    mirror.pull()                  # every file, as it is now
    ...                            # the stage works in tmp; files others put in the
    mirror.pull_files(names)       #   store (workers' output) are brought in by name
    mirror.push(last=STATE)        # the owner's state file, after everything else

`push` uploads what the stage added or changed, the file named `last` after all the
others, then removes what the stage removed. The state goes last, as in a local run: a
crash part-way leaves the previous state, which no longer matches the inputs, so the next
run rebuilds and uploads again whatever differs. Temporaries and lock files never travel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .location import Location


def _local_files(root: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for dirpath, dirs, names in os.walk(root):
        dirs.sort()
        for n in names:
            if _transient(n):
                continue
            full = os.path.join(dirpath, n)
            st = os.stat(full)
            found[os.path.relpath(full, root).replace(os.sep, "/")] = (st.st_size, st.st_mtime_ns)
    return found


def _transient(name: str) -> bool:
    """A temporary (`.NAME.XXXX.tmp`) or a lock file: never a part of the folder's content."""
    base = name.rsplit("/", 1)[-1]
    return base.startswith(".") and base.endswith((".tmp", ".lock"))


@dataclass
class PushResult:
    uploaded: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


class Mirror:
    """`local`, a copy of `remote`; what changed in it since the copy was made goes back."""

    def __init__(self, remote: Location, local: Path):
        self.remote = remote
        self.local = Path(local)
        self._synced: dict[str, tuple[int, int]] = {}  # name -> (size, mtime_ns) as pulled
        self.pulled = 0  # files copied in so far

    def pull(self, remove_temporaries: bool = False) -> int:
        """Copy every file of the remote folder (temporaries aside); returns how many. With
        `remove_temporaries`, the temporaries found (a killed writer's) are deleted there:
        only for a caller that is the folder's one writer."""
        listing = self.remote.files()
        if remove_temporaries:
            for name in listing:
                if _transient(name) and name.endswith(".tmp"):
                    self.remote.remove(name)
        names = [n for n in listing if not _transient(n)]
        self.pull_files(names)
        return len(names)

    def pull_files(self, names: list[str]) -> None:
        """Copy files that the remote folder holds now (workers' output), in one batch."""
        self.remote.get_files(names, self.local)
        self.pulled += len(names)
        for name in names:
            st = (self.local / name).stat()
            self._synced[name] = (st.st_size, st.st_mtime_ns)

    def push(self, last: str | None = None) -> PushResult:
        """Upload new and changed files (`last` after the others), then remove from the remote
        folder the files pulled earlier that the local copy no longer has."""
        res = PushResult()
        now = _local_files(self.local)
        changed = sorted(n for n, st in now.items() if self._synced.get(n) != st)
        if last in changed:
            changed.remove(last)
            changed.append(last)
        for name in changed:
            self.remote.commit_file(self.local / name, name)
            self._synced[name] = now[name]
            res.uploaded.append(name)
        for name in sorted(set(self._synced) - set(now)):
            self.remote.remove(name)
            del self._synced[name]
            res.removed.append(name)
        return res
