"""pyarrow without pandas: extract-pairs never imports it, and pandas still works after."""

import json
import subprocess
import sys

from conftest import REPO

HEAVY = ("pandas", "pyarrow.compute", "pyarrow.dataset")


def _python(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_lists_convert_without_pandas_and_pandas_works_afterwards():
    out = _python(
        "import sys, json\n"
        "from pipeline.arrowprobe import skip_pandas_probe\n"
        "skip_pandas_probe()\n"
        "import pyarrow as pa\n"
        "t = pa.table({'a': [1, 2], 's': ['x', None]})\n"
        "before = 'pandas' in sys.modules\n"
        "df = t.to_pandas()\n"
        "back = pa.Table.from_pandas(df, preserve_index=False)\n"
        "print(json.dumps([before, 'pandas' in sys.modules, df['a'].tolist(), back.to_pylist() == t.to_pylist()]))"
    )
    assert json.loads(out) == [False, True, [1, 2], True]


def test_a_process_that_imported_pandas_keeps_its_probe():
    out = _python(
        "import sys, json, pandas as pd\n"
        "from pipeline.arrowprobe import skip_pandas_probe\n"
        "skip_pandas_probe()\n"
        "import pyarrow as pa\n"
        "a = pa.array(pd.Series([1.5, None]))\n"
        "print(json.dumps([a.type == pa.float64(), a.null_count]))"
    )
    assert json.loads(out) == [True, 1]


def test_extract_pairs_imports_neither_pandas_nor_pyarrow_compute(tmp_path, shared_corpus):
    from stages.ingest import ingest

    ingest(sorted(shared_corpus.glob("*"))[:2], tmp_path / "raw", show_progress=False)
    out = _python(
        "import sys, json\n"
        "from pipeline.cli import main\n"
        f"code = main(['extract-pairs', '-q', '--workers', '1', '--raw-dir', {str(tmp_path / 'raw')!r},"
        f" '--out-dir', {str(tmp_path / 'corpus')!r}])\n"
        f"print(json.dumps([code, [m for m in {HEAVY!r} if m in sys.modules]]))"
    )
    assert json.loads(out) == [0, []]
    assert list((tmp_path / "corpus" / "pairs").glob("*.parquet"))
