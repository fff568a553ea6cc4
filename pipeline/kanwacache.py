"""pykakasi's kanji dictionary, read a character at a time from an indexed copy.

pykakasi keeps its dictionary (kanwadict4.db: for every first kanji, the words that start
with it and their readings) as one 10 MB pickle that it loads whole, a million objects,
a third of a second in every process that reads katakana. nocpipe reads through UniDic
and asks pykakasi only about the words UniDic does not know: a few dozen look-ups on
thirty works. So the first process writes an indexed copy:

    <cache>/pykakasi-<version>-kanwa.idx    header: {"format", "source_size", "index"}
                                            then each first character's table, pickled;
                                            index: code point -> (offset after the
                                            header, length)

and every process reads the header (7,000 entries) and, on a look-up, only that character's
table, once. <cache> is $NOCPIPE_CACHE, else $XDG_CACHE_HOME/nocpipe, else
~/.cache/nocpipe. The copy is written atomically (a temporary name, then a rename), keyed
by pykakasi's version and the source's size; where it cannot be written or read, pykakasi
loads its own file as before. Reads open the file for each look-up, so a table survives
fork and threads without shared handles.
"""

from __future__ import annotations

import os
import pickle
import struct
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

FORMAT = 1
_MAGIC = b"NOCPKANWA1\n"
_HEAD = struct.Struct("<Q")  # length of the pickled header that follows the magic


def cache_dir() -> Path:
    if os.environ.get("NOCPIPE_CACHE"):
        return Path(os.environ["NOCPIPE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nocpipe"


class KanwaTable:
    """What pykakasi's Kanwa asks of its table: .get(code point, default)."""

    def __init__(self, path: Path, index: dict[int, tuple[int, int]], base: int):
        self.path = path
        self.index = index
        self.base = base
        self._tables: dict[int, dict] = {}
        self._lock = threading.Lock()

    def get(self, key: int, default=None):
        table = self._tables.get(key)
        if table is not None:
            return table
        where = self.index.get(key)
        if where is None:
            return default
        offset, length = where
        with open(self.path, "rb") as fh:
            fh.seek(self.base + offset)
            table = pickle.loads(fh.read(length))
        with self._lock:
            self._tables[key] = table
        return table


def _source() -> Path:
    from pykakasi.properties import Configurations

    # pykakasi replaces its class by the one instance under the same name, so the type
    # checker sees an unbound method where the code calls a bound one.
    conf: Any = Configurations
    return Path(conf.dictpath(conf.jisyo_kanwa))


def _cache_path() -> Path:
    return cache_dir() / f"pykakasi-{metadata.version('pykakasi')}-kanwa.idx"


def _read(path: Path, source_size: int) -> KanwaTable | None:
    try:
        with open(path, "rb") as fh:
            if fh.read(len(_MAGIC)) != _MAGIC:
                return None
            (n,) = _HEAD.unpack(fh.read(_HEAD.size))
            header = pickle.loads(fh.read(n))
    except (OSError, ValueError, struct.error, pickle.UnpicklingError, EOFError):
        return None
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("source_size") != source_size:
        return None
    return KanwaTable(path, header["index"], len(_MAGIC) + _HEAD.size + n)


def _write(path: Path, source: Path, source_size: int) -> None:
    from .atomic import write_bytes

    # Built once per machine, inside kana.get_reader, which pauses the collector for it.
    with open(source, "rb") as fh:
        full = pickle.load(fh)
    blobs = {key: pickle.dumps(table, protocol=pickle.HIGHEST_PROTOCOL) for key, table in full.items()}
    index, pos = {}, 0
    for key, blob in blobs.items():
        index[key] = (pos, len(blob))  # from the end of the header
        pos += len(blob)
    header = pickle.dumps({"format": FORMAT, "source_size": source_size, "index": index})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, b"".join([_MAGIC, _HEAD.pack(len(header)), header, *blobs.values()]))


def install() -> bool:
    """Give pykakasi the indexed table before it loads its own (False: it loads its own).
    Call before the first pykakasi.Kakasi()."""
    try:
        from pykakasi.kanji import Kanwa
    except ImportError:
        return False
    state = getattr(Kanwa, "_shared_state", None)
    if not isinstance(state, dict) or state.get("_jisyo_table") is not None:
        return False  # already loaded in this process, or a pykakasi that keeps it elsewhere
    try:
        source = _source()
        size = source.stat().st_size
        path = _cache_path()
        table = _read(path, size)
        if table is None:
            _write(path, source, size)
            table = _read(path, size)
    except (OSError, ValueError, pickle.PickleError):
        return False
    if table is None:
        return False
    state["_jisyo_table"] = table
    return True
