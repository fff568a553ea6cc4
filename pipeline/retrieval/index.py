"""The reply index: every distinct train reply, where it came from, and its vectors.

    replies.parquet     one row per indexed reply: reply (the original line), reply_kana,
                        utterance (the line it answered), utterance_kana, source, work_id, title,
                        author, episode, line
    reply_vectors.npy   float16 (rows, 2·units): the reply through the reply tower, then its
                        utterance through the utterance tower; memory-mapped when read

Replies equal in katakana are indexed once (the first in corpus order keeps its source). Answering an
input q: score_i = cos(q, reply_i) + β·cos(q, utterance_i): a reply fits when the encoder says so
and, more, when the line it answered in the corpus is like the input. The model folder's owner
(pipeline/modeldir.py) names and writes both files; this module makes their contents.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import config
from ..reporter import Reporter
from .pairs import read_pairs, work_titles

#: Texts encoded per forward pass while indexing.
ENCODE_BATCH = 2048


def _distinct(pairs) -> list[int]:
    seen: set[str] = set()
    keep = []
    for i, r in enumerate(pairs.replies):
        if r and r not in seen:
            seen.add(r)
            keep.append(i)
    return keep


def _vectors(encoder, space, vocab, utts: list[str], reps: list[str], reporter: Reporter) -> np.ndarray:
    units = encoder.outputs[0].shape[-1]
    out = np.zeros((len(reps), 2 * units), dtype=np.float16)
    starts = range(0, len(reps), ENCODE_BATCH)
    for start in reporter.progress(starts, "indexing", unit="batch", total=len(starts)):
        stop = start + ENCODE_BATCH
        u, r = encoder.predict_on_batch([space.encode(vocab, utts[start:stop]), space.encode(vocab, reps[start:stop])])
        out[start:stop, :units] = np.asarray(r, dtype=np.float16)
        out[start:stop, units:] = np.asarray(u, dtype=np.float16)
    return out


def build_index(folder, encoder, space, vocab, opts, reporter: Reporter) -> int:
    """Index the train replies of opts.data_dir with `encoder`; returns the rows written."""
    import pyarrow as pa

    pairs = read_pairs(opts.data_dir, "train", getattr(opts, "max_pairs", 0) or 0, with_sources=True)
    keep = _distinct(pairs)
    cols = {name: [values[i] for i in keep] for name, values in pairs.columns.items()}
    raw_dir = Path(getattr(opts, "raw_dir", None) or config.default_raw_dir())
    titles = work_titles(raw_dir, set(zip(cols["source"], cols["work_id"])))
    cols["title"] = [titles[k][0] for k in zip(cols["source"], cols["work_id"])]
    cols["author"] = [titles[k][1] for k in zip(cols["source"], cols["work_id"])]
    t0 = time.perf_counter()
    vectors = _vectors(encoder, space, vocab, cols["utterance_kana"], cols["reply_kana"], reporter)
    table = pa.table(
        {
            "reply": pa.array(cols["reply"], pa.string()),
            "reply_kana": pa.array(cols["reply_kana"], pa.string()),
            "utterance": pa.array(cols["utterance"], pa.string()),
            "utterance_kana": pa.array(cols["utterance_kana"], pa.string()),
            "source": pa.array(cols["source"], pa.string()),
            "work_id": pa.array(cols["work_id"], pa.string()),
            "title": pa.array(cols["title"], pa.string()),
            "author": pa.array(cols["author"], pa.string()),
            "episode": pa.array(cols["episode"], pa.int32()),
            "line": pa.array(cols["line"], pa.int32()),
        }
    )
    folder.write_reply_index(table, vectors)
    untitled = sum(1 for t in cols["title"] if not t)
    reporter.info(
        f"reply index: {len(keep):,} distinct replies of {len(pairs):,} train pairs in "
        f"{time.perf_counter() - t0:.1f}s"
        + (f"; {untitled:,} without a title (no raw store at {raw_dir}: give --raw-dir)" if untitled else "")
    )
    return len(keep)
