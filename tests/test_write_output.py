"""Files the user names (predict -o): written through links, straight into devices."""

import os
import threading

import pytest

from pipeline.atomic import write_output
from pipeline.errors import UsageError


def _writer(text):
    return lambda p: p.write_text(text, encoding="utf-8")


def test_a_new_or_regular_file_is_replaced_atomically(tmp_path):
    p = tmp_path / "out.csv"
    write_output(p, _writer("one"))
    write_output(p, _writer("two"))
    assert p.read_text() == "two"
    assert [q.name for q in tmp_path.iterdir()] == ["out.csv"]


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path):
    target = tmp_path / "real" / "replies.csv"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    write_output(link, _writer("new"))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new"
    # A chain of links ends at the same file.
    link2 = tmp_path / "link2.csv"
    link2.symlink_to(link)
    write_output(link2, _writer("newer"))
    assert link2.is_symlink() and link.is_symlink() and target.read_text() == "newer"


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "made.csv")
    write_output(link, _writer("x"))
    assert link.is_symlink() and (tmp_path / "made.csv").read_text() == "x"


def test_a_fifo_is_written_into(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, encoding="utf-8").read()))
    reader.start()
    write_output(fifo, _writer("through the pipe"))
    reader.join(10)
    assert got == ["through the pipe"]
    assert not fifo.is_file()


def test_every_atomic_write_goes_through_links_and_into_fifos(tmp_path):
    from harness import FifoReader

    from pipeline import atomic

    target = tmp_path / "stats.json"
    target.write_text("{}")
    (tmp_path / "link.json").symlink_to(target)
    atomic.write_json(tmp_path / "link.json", {"a": 1})
    assert (tmp_path / "link.json").is_symlink() and '"a": 1' in target.read_text()
    reader = FifoReader(tmp_path / "pipe")
    atomic.write_text(tmp_path / "pipe", "into the pipe")
    assert reader.result() == "into the pipe".encode() and not (tmp_path / "pipe").is_file()


def test_a_folder_or_a_link_loop_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="folder"):
        write_output(tmp_path, _writer("x"))
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(UsageError, match="cannot write"):
        write_output(loop, _writer("x"))
