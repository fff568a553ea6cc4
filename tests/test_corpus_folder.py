"""pipeline.corpus as the one owner of the corpus folder: a run writes a local folder and a
folder at a URL through the same calls, and extract-pairs no longer tells them apart."""

import ast
from pathlib import Path

import pytest

from pipeline import corpus
from pipeline.errors import BusyError
from pipeline.records import WorkRef

REF = WorkRef("text", "w1", Path("unused"))
INFO = {"fingerprint": "f", "options": "o", "counters": {"works": 1}, "rows": 1, "signature": None}


def _one_row() -> list[list]:
    key = b"k" * 16
    return [[1], [2], ["あ"], ["い"], ["ア"], ["イ"], [key], [key]]


@pytest.mark.parametrize("as_url", [False, True])
def test_a_run_writes_a_local_folder_and_a_url_alike(tmp_path, as_url):
    target = tmp_path / "corpus"
    where = target.as_uri() if as_url else target
    with corpus.writing(where) as folder:
        folder.sink.write(REF, corpus.work_table(_one_row(), INFO))
        folder.gather([REF])
        assert corpus.read_work_info(folder.root, REF) == INFO
        corpus.write_stats(folder.root, {"works": 1})
        corpus.write_state(folder.root, {"inputs": "x", "shards": []})
    # Either way the folder itself ends up holding the files, under the same names.
    assert corpus.read_work_info(target, REF) == INFO
    assert corpus.read_stats(target) == {"works": 1}
    assert corpus.load_state(target) == {"inputs": "x", "shards": []}
    assert corpus.read_work(target, REF).num_rows == 1
    if as_url:
        # The worker's file went straight there and was copied in; stats and state went up.
        assert folder.transfers == {"copied_in": 1, "uploaded": 2, "removed": 0}
    else:
        assert folder.transfers is None


def test_a_local_corpus_folder_is_held_by_one_run(tmp_path):
    with corpus.writing(tmp_path / "c"):
        with pytest.raises(BusyError):
            with corpus.writing(tmp_path / "c"):
                pass


def test_stale_per_work_files_go(tmp_path):
    other = WorkRef("text", "w2", Path("unused"))
    for ref in (REF, other):
        corpus.WorkSink(tmp_path).write(ref, corpus.work_table(_one_row(), INFO))
    assert corpus.remove_stale_works(tmp_path, [REF]) == 1
    assert corpus.read_work_info(tmp_path, REF) == INFO and corpus.read_work_info(tmp_path, other) is None


def test_extract_pairs_does_not_tell_a_local_folder_from_a_url():
    """The corpus module and the raw store decide local or URL; the stage only calls them."""
    source = Path(__file__).parent.parent / "stages" / "extract_pairs.py"
    names = {
        n.id if isinstance(n, ast.Name) else n.attr
        for n in ast.walk(ast.parse(source.read_text(encoding="utf-8")))
        if isinstance(n, (ast.Name, ast.Attribute))
    }
    assert not names & {"is_url", "Location", "Mirror", "mirror", "remote_works", "read_remote_metas"}


def test_the_old_module_name_still_imports():
    from pipeline import shards

    assert shards.find_shards is corpus.find_shards and shards.SCHEMA_VERSION == corpus.SCHEMA_VERSION
