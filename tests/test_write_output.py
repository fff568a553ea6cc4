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


def test_dev_null_stays_a_device(tmp_path):
    write_output("/dev/null", _writer("gone"))
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


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


def test_a_folder_or_a_link_loop_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="folder"):
        write_output(tmp_path, _writer("x"))
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(UsageError, match="cannot write"):
        write_output(loop, _writer("x"))
