"""The bundled Aozora corpus (data/aozora) end to end, checked against an independent reading of
the pair rule, and a kill -9 in the middle of a run."""

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import pyarrow.parquet as pq
import pytest

from pipeline.kana import is_kana_text
from pipeline.shards import list_shards

NOTE = re.compile(r"※?［＃[^［］]*(?:［[^［］]*］[^［］]*)*］")
RUBY = re.compile(r"《[^《》]*》")


def reference_pairs(text: str) -> Counter:
    """The pair rule written independently: regexes over the whole file."""
    lines = text.split("\n")
    dashes = [i for i, ln in enumerate(lines[:80]) if re.match(r"^-{10,}", ln)]
    start = dashes[1] + 1 if len(dashes) >= 2 else lines.index("") + 1
    end = max([i for i, ln in enumerate(lines) if ln.startswith("底本：")] or [len(lines)])
    body = [RUBY.sub("", NOTE.sub("", ln)).replace("｜", "").strip() for ln in lines[start:end]]
    body = [ln for ln in body if ln]

    def dialogue(s):
        if not (s.startswith("「") and s.endswith("」")):
            return False
        depth = 0
        for i, ch in enumerate(s):
            depth += {"「": 1, "」": -1}.get(ch, 0)
            if depth == 0 and i < len(s) - 1:
                return False
        return depth == 0

    out = Counter()
    for a, b in zip(body, body[1:]):
        if dialogue(a) and dialogue(b):
            out[(a[1:-1], b[1:-1])] += 1
    return out


def nocpipe(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True, env=env
    )


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    from conftest import SHARED_CORPUS

    from pipeline.config import SplitConfig  # noqa: F401  (import check)
    from stages.extract_pairs import ExtractOptions, extract_pairs
    from stages.ingest import ingest

    if not SHARED_CORPUS.is_dir():
        pytest.fail(f"shared corpus not found at {SHARED_CORPUS}")
    root = tmp_path_factory.mktemp("corpus")
    ingest([SHARED_CORPUS], root / "raw", show_progress=False)
    extract_pairs(
        ExtractOptions(raw_dir=root / "raw", out_dir=root / "corpus", max_len=0, workers=2, show_progress=False)
    )
    return root


def test_pairs_match_an_independent_implementation(extracted):
    table = pq.read_table(list_shards(extracted / "corpus"))
    got = Counter()
    want = Counter()
    for d in sorted((extracted / "raw" / "aozora").iterdir()):
        want += reference_pairs((d / "text.txt").read_text(encoding="utf-8"))
    for u, r in zip(table.column("utterance").to_pylist(), table.column("reply").to_pylist()):
        got[(u, r)] += 1
    # Dedup and unreadable sides remove a few pairs; compare as sets of texts.
    hit = len(set(got) & set(want))
    recall, precision = hit / len(set(want)), hit / len(set(got))
    print(f"recall {recall:.4f} precision {precision:.4f} ({len(set(got))} pairs, {len(set(want))} expected)")
    assert recall >= 0.97, recall
    assert precision >= 0.98, precision


def test_corpus_invariants(extracted):
    table = pq.read_table(list_shards(extracted / "corpus")).to_pylist()
    assert len(table) > 20000
    assert all(is_kana_text(r["utterance_kana"]) and is_kana_text(r["reply_kana"]) for r in table)
    assert all(r["utterance_kana"] and r["reply_kana"] for r in table)
    splits = {}
    for r in table:
        splits.setdefault(r["work_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in splits.values())
    assert {s.pop() for s in splits.values()} == {"train", "validation", "test"}
    keys = [(r["utterance_kana"], r["reply_kana"]) for r in table]
    assert len(keys) == len(set(keys))


def test_kill_9_then_rerun_finishes_the_same(tmp_path, shared_corpus):
    files = sorted(shared_corpus.glob("*.txt"))[:12]
    src = tmp_path / "src"
    src.mkdir()
    for f in files:
        (src / f.name).write_bytes(f.read_bytes())
    env = {**os.environ, "NOCPIPE_DATA": str(tmp_path / "data")}
    assert nocpipe("ingest", "-q", src, env=env).returncode == 0
    args = ["extract-pairs", "-q", "--workers", "1", "--shard-size", "200", "--examples", "0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    root = tmp_path / "data" / "processed"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list((root / ".works").glob("*/*.parquet"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed, "the run finished before it could be killed; give it more work"
    r = nocpipe(*args, env=env)
    assert r.returncode == 0, r.stderr
    assert "already done" in r.stdout
    assert not list(root.rglob(".*.tmp"))
    resumed = sorted(tuple(d.values()) for d in pq.read_table(list_shards(root)).to_pylist())
    env2 = {**env, "NOCPIPE_DATA": str(tmp_path / "data2")}
    assert nocpipe("ingest", "-q", src, env=env2).returncode == 0
    assert nocpipe(*args, env=env2).returncode == 0
    fresh_dir = tmp_path / "data2" / "processed"
    fresh = sorted(tuple(d.values()) for d in pq.read_table(list_shards(fresh_dir)).to_pylist())
    assert resumed == fresh
