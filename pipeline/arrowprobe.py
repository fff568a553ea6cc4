"""pyarrow without an import of pandas where nothing needs pandas.

The first time pyarrow converts a Python list it asks whether the list is a pandas object,
and imports pandas to answer: 0.2-0.4 s of a process's start, a tenth of an extract-pairs
run over 30 works, for a question whose answer is always no there. pyarrow asks once per
process and keeps the answer. `skip_pandas_probe()` lets it ask while pandas is hidden,
so the answer is "no pandas" and pandas stays unimported; whatever does need pandas
later (`Table.to_pandas`, `Table.from_pandas`) still works, because pyarrow imports it
again when pandas is required rather than merely probed for.

The cost: in that process, after the probe, `pa.array(a_pandas_series)` converts the
Series as the plain sequence it also is (same values) until something has required
pandas. Nothing here converts pandas objects; a process that already imported pandas is
left as it is.
"""

from __future__ import annotations

import sys

_done = False


def skip_pandas_probe() -> None:
    """Let pyarrow's one pandas probe of this process run with pandas hidden (idempotent)."""
    global _done
    if _done:
        return
    _done = True
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    hide = _Hidden("pandas")
    sys.meta_path.insert(0, hide)
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(hide)


class _Hidden:
    """An import finder under which one package is not installed."""

    def __init__(self, name: str):
        self.name = name

    def find_spec(self, fullname, path=None, target=None):
        if fullname == self.name or fullname.startswith(self.name + "."):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None
