"""Input a user pipes in or types: UTF-8, or one `Error:` line that says what it looks like."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from conftest import SAMPLES
from harness import REPO, ChildResult, assert_one_error

from pipeline.textinput import NotUtf8Error, read_stdin_lines, text_arguments

TEXT = "「明日、また来てくれるかい？」\n「ええ、きっと」\n"


def _nocpipe(*args: bytes | str, stdin: bytes = b"") -> ChildResult:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(PYTHONPATH=str(REPO), LC_ALL="C.UTF-8", PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pipeline.cli", *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, env=env, cwd=REPO, timeout=300)
    return ChildResult(proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8"))


@pytest.mark.parametrize(
    "data,looks",
    [
        ((SAMPLES / "1567_ruby_4948.txt").read_bytes().splitlines(keepends=True)[:3], "CP932"),
        ([TEXT.encode("utf-16")], "UTF-16"),
        ([TEXT.encode("utf-16-le")], "UTF-16LE"),
        ([TEXT.encode("euc_jp")], "EUC-JP"),
    ],
    ids=["shift_jis", "utf16-bom", "utf16le", "euc-jp"],
)
def test_stdin_that_is_not_utf8_is_one_error_line(data, looks):
    r = _nocpipe("kana", stdin=b"".join(data))
    line = assert_one_error(r, "stdin is not UTF-8 text", f"looks like {looks}", f"iconv -f {looks} -t UTF-8")
    assert "UnicodeEncodeError" not in line and r.out == ""


def test_an_argument_that_is_not_utf8_is_one_error_line():
    r = _nocpipe("kana", "走れ".encode("cp932"))
    assert_one_error(r, "an argument is not UTF-8 text", "set the terminal to UTF-8")


def test_utf8_stdin_with_a_byte_order_mark_and_crlf_reads_as_text():
    r = _nocpipe("kana", "--reader", "pykakasi", stdin=b"\xef\xbb\xbf" + "ねこ\r\nいぬ\r\n".encode())
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["ネコ", "イヌ"]


def test_lines_arrive_one_at_a_time_and_the_bad_one_stops_them():
    stream = io.BytesIO("ひとつ\n".encode() + "ふたつ\n".encode("cp932"))
    lines = read_stdin_lines("predict", stream=stream)
    assert next(lines) == "ひとつ"
    with pytest.raises(NotUtf8Error, match=r"nocpipe predict"):
        next(lines)
    assert text_arguments(["ねこ", "犬"]) == ["ねこ", "犬"]
    with pytest.raises(NotUtf8Error):
        text_arguments(["ok", "\udc82\udca0"])
