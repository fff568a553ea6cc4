"""nocpipe serve: the HTTP API over real sockets.

First against a plain Python replier (the app takes the model as a parameter): replies,
every kind of bad request, batching of requests that arrive together, model failures and
a full queue. Then the real `nocpipe serve` process on a tiny trained model, and the
command's errors."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import requests

from pipeline import __version__
from pipeline.config import ServeLimits
from pipeline.decoding import MAX_NUM
from pipeline.errors import UsageError
from pipeline.kana import is_kana_text

serve = pytest.importorskip("stages.serve")  # the `serve` extra; part of the dev install
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


# ---------------------------------------------------------------- a plain replier


@dataclass(frozen=True)
class Cand:
    text: str
    score: float


class EchoReplier:
    """Answers each utterance with itself reversed; records every call; can be held or made to fail."""

    name = "echo"
    arch = "test"
    max_len = 16
    config = {"model": {"units": 8}, "nocpipe": "0.0.9"}

    def __init__(self):
        self.calls: list[tuple[list[str], dict]] = []
        self.entered = threading.Event()
        self.gate: threading.Event | None = None
        self.fail: Exception | None = None

    def to_kana(self, text: str) -> str:
        # hiragana -> katakana; katakana kept; everything else dropped
        out = []
        for ch in text:
            if "ぁ" <= ch <= "ゖ":
                out.append(chr(ord(ch) + 0x60))
            elif "ァ" <= ch <= "ヺ" or ch == "ー":
                out.append(ch)
        return "".join(out)

    def reply(self, utterances_kana, decoding):
        d = decoding
        self.calls.append((list(utterances_kana), {"num": d.num, "temperature": d.temperature, "beam": d.beam}))
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(30)
        if self.fail is not None:
            raise self.fail
        return [[Cand(k[::-1] + "ー" * j, -0.5 - j) for j in range(d.num)] for k in utterances_kana]


@contextmanager
def running(app) -> Iterator[str]:
    """Serve `app` with uvicorn on a free port in a thread; yield its URL."""
    import uvicorn

    sock = serve.bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture
def echo():
    return EchoReplier()


@pytest.fixture
def echo_server(echo, tmp_path):
    # as `nocpipe evaluate` writes it: the figures, and facts about the run that the page leaves out
    (tmp_path / "evaluate.json").write_text(
        json.dumps(
            {"chrf": 12.5, "bits_per_char": 3.25, "n": 40, "tokens": 900, "distinct_1": float("nan"), "split": "test"}
        )
    )
    app = serve.create_app(echo, model_dir=tmp_path)
    with running(app) as url:
        yield url, app


def post(url: str, body, **kw) -> requests.Response:
    return requests.post(url + "api/reply", json=body, timeout=30, **kw)


def wait_until(cond, what: str) -> None:
    deadline = time.monotonic() + 30
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


# ---------------------------------------------------------------- replies


def test_reply_is_well_formed(echo_server, echo):
    url, _ = echo_server
    r = post(url, {"text": "あいう"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == {
        "input_kana": "アイウ",
        "truncated": False,
        "replies": [{"reply": "ウイア", "surface": None, "score": -0.5, "source": None}],
    }
    assert echo.calls == [(["アイウ"], {"num": 1, "temperature": 0.0, "beam": 0})]


def test_options_reach_the_model(echo_server, echo):
    url, _ = echo_server
    r = post(url, {"text": "かきく", "num": 3, "temperature": 0.7})
    assert r.status_code == 200
    assert [c["reply"] for c in r.json()["replies"]] == ["クキカ", "クキカー", "クキカーー"]
    assert echo.calls[-1][1] == {"num": 3, "temperature": 0.7, "beam": 0}
    assert isinstance(echo.calls[-1][1]["temperature"], float)
    assert post(url, {"text": "かきく", "beam": 4}).status_code == 200
    assert echo.calls[-1][1] == {"num": 1, "temperature": 0.0, "beam": 4}
    # The Decoding's own checks: one line naming the JSON fields, before the model is asked.
    r = post(url, {"text": "かきく", "beam": 4, "temperature": 0.7})
    assert r.status_code == 422 and r.json()["error"] == "beam searches and temperature samples: choose one"
    assert len(echo.calls) == 2


def test_long_reading_is_cut_to_the_model_length(echo_server, echo):
    url, _ = echo_server
    r = post(url, {"text": "あ" * 10 + "い" * 10})
    body = r.json()
    assert r.status_code == 200 and body["truncated"] is True
    assert body["input_kana"] == "ア" * 10 + "イ" * 6
    assert echo.calls[-1][0] == ["ア" * 10 + "イ" * 6]


def test_health_names_the_model_version_and_figures(echo_server):
    url, _ = echo_server
    post(url, {"text": "あ"})
    h = requests.get(url + "api/health", timeout=30).json()
    assert h["status"] == "ok" and h["version"] == __version__
    assert h["model"]["name"] == "echo" and h["model"]["arch"] == "test" and h["model"]["max_len"] == 16
    assert h["model"]["units"] == 8 and h["model"]["trained_with"] == "0.0.9"
    # evaluate.json: the finite figures, in the order of the evaluate keys
    assert list(h["model"]["evaluate"].items()) == [("bits_per_char", 3.25), ("chrf", 12.5), ("n", 40)]
    assert h["stats"]["replies"] == 1 and h["stats"]["calls"] == 1
    assert h["limits"]["max_text"] == ServeLimits().max_text


def test_health_without_evaluate_figures(echo):
    with running(serve.create_app(echo)) as url:
        assert requests.get(url + "api/health", timeout=30).json()["model"]["evaluate"] is None


def test_page_is_self_contained(echo_server):
    url, _ = echo_server
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    page = r.text
    assert 'id="text"' in page and "api/reply" in page and "api/health" in page
    for attr in ("src=", "href=", "url(", "@import"):
        for piece in page.split(attr)[1:]:
            assert not piece.lstrip("\"'").startswith(("http:", "https:", "//")), f"{attr}{piece[:40]}"
    assert "innerHTML" not in page and "insertAdjacentHTML" not in page  # shown as text, never parsed


# ---------------------------------------------------------------- bad requests

LONG = ServeLimits().max_text + 1
BAD = [
    ({"text": ""}, 422, "empty"),
    ({"text": " \u3000 "}, 422, "empty"),
    ({"text": "!!! 123"}, 422, "has a reading"),
    ({"text": "😀😀"}, 422, "has a reading"),
    ({"text": "あ" * LONG}, 422, "too long"),
    ({"text": "あ", "seed": 1}, 422, "unknown option 'seed'"),
    ({"text": 5}, 422, "text"),
    ({"text": None}, 422, "text"),
    ({}, 422, "text is missing"),
    ({"num": 2}, 422, "text is missing"),
    ({"text": "あ", "num": "2"}, 422, "num"),
    ({"text": "あ", "num": True}, 422, "num"),
    ({"text": "あ", "num": 1.5}, 422, "num"),
    ({"text": "あ", "num": 0}, 422, "num"),
    ({"text": "あ", "num": MAX_NUM + 1}, 422, "num"),
    ({"text": "あ", "temperature": -0.1}, 422, "temperature"),
    ({"text": "あ", "temperature": 5.5}, 422, "temperature"),
    ({"text": "あ", "temperature": "hot"}, 422, "temperature"),
    ({"text": "あ", "temperature": None}, 422, "temperature"),
    ({"text": "あ", "beam": -1}, 422, "beam"),
    ({"text": "あ", "beam": 17}, 422, "beam"),
    ({"text": "あ", "beam": [2]}, 422, "beam"),
    (["あ"], 422, "JSON object"),
    ("あ", 422, "JSON object"),
]


def test_bad_requests_get_a_json_4xx_and_the_server_survives(echo_server, echo):
    url, _ = echo_server
    for body, status, fragment in BAD:
        r = post(url, body)
        assert r.status_code == status, (body, r.text)
        assert fragment in r.json()["error"], (body, r.json())
    raw = [
        (b'{"text": "\xe3\x81\x82",', "application/json", 400, "not valid JSON"),
        (b'{"text": "a", "temperature": NaN}', "application/json", 400, "not valid JSON"),
        (b"\xff\xfe{}", "application/json", 400, "not valid JSON"),
        (json.dumps({"text": "あ"}).encode(), "text/plain", 415, "application/json"),
        (json.dumps({"text": "あ" * 5000}).encode(), "application/json", 413, "too large"),
    ]
    for data, ctype, status, fragment in raw:
        r = requests.post(url + "api/reply", data=data, headers={"Content-Type": ctype}, timeout=30)
        assert r.status_code == status and fragment in r.json()["error"], (data[:30], r.text)
    # A body sent in chunks, without a length, is cut off at the limit too.
    chunks = iter([b'{"text": "', "あ".encode() * 4000, b'"}'])
    r = requests.post(url + "api/reply", data=chunks, headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 413
    r = requests.get(url + "api/reply", timeout=30)
    assert r.status_code == 405 and "error" in r.json()
    r = requests.get(url + "no/such/page", timeout=30)
    assert r.status_code == 404 and "error" in r.json()
    assert echo.calls == []  # nothing bad reached the model
    assert post(url, {"text": "まだ"}).json()["replies"][0]["reply"] == "ダマ"


def test_a_failing_model_is_a_500_and_the_next_request_works(echo_server, echo):
    url, _ = echo_server
    echo.fail = RuntimeError("out of memory")
    r = post(url, {"text": "あ"})
    assert r.status_code == 500 and "error" in r.json() and "memory" not in r.text
    echo.fail = UsageError("beam search needs an autoregressive model")
    r = post(url, {"text": "あ", "beam": 2})
    assert r.status_code == 422 and "autoregressive" in r.json()["error"]
    echo.fail = None
    assert post(url, {"text": "あ"}).status_code == 200
    assert requests.get(url + "api/health", timeout=30).json()["stats"]["failed_calls"] == 2


# ---------------------------------------------------------------- batching


def hold_first_call(echo, app, pool, requests_: list[dict], url: str):
    """Send the first request, hold the model in its call, send the others meanwhile; release the
    model once all of them wait in the queue. Returns the responses in order."""
    echo.gate = threading.Event()
    futures = [pool.submit(post, url, requests_[0])]
    wait_until(echo.entered.is_set, "the first model call")
    futures += [pool.submit(post, url, body) for body in requests_[1:]]
    wait_until(lambda: app.state.batcher.received == len(requests_), "every request to queue")
    echo.gate.set()
    return [f.result(timeout=30) for f in futures]


def test_requests_arriving_together_share_one_model_call(echo_server, echo):
    url, app = echo_server
    texts = ["あ" * (i + 1) for i in range(10)]
    with ThreadPoolExecutor(10) as pool:
        answers = hold_first_call(echo, app, pool, [{"text": t} for t in texts], url)
    # Each client gets the reply to its own line.
    for t, r in zip(texts, answers):
        assert r.status_code == 200 and r.json()["replies"][0]["reply"] == "ア" * len(t)
    # The nine that came while the model was busy went into ONE call.
    assert [len(kanas) for kanas, _ in echo.calls] == [1, 9]
    stats = requests.get(url + "api/health", timeout=30).json()["stats"]
    assert stats["calls"] == 2 and stats["replies"] == 10 and stats["largest_batch"] == 9


def test_different_options_are_separate_calls(echo_server, echo):
    url, app = echo_server
    bodies = [
        {"text": "あい", "num": 2},
        {"text": "うえ"},
        {"text": "おか", "num": 2},
        {"text": "きく", "beam": 3},
        {"text": "けこ"},
    ]
    with ThreadPoolExecutor(5) as pool:
        answers = hold_first_call(echo, app, pool, bodies, url)
    for body, r in zip(bodies, answers):
        rep = r.json()["replies"]
        assert len(rep) == body.get("num", 1) and rep[0]["reply"] == echo.to_kana(body["text"])[::-1]
    assert len(echo.calls) == 4  # the first alone, then one call per set of options
    for kanas, opts in echo.calls:
        group = [b for b in bodies if echo.to_kana(b["text"]) in kanas]
        assert {(b.get("num", 1), b.get("beam", 0)) for b in group} == {(opts["num"], opts["beam"])}
    assert sorted(k for kanas, _ in echo.calls for k in kanas) == sorted(echo.to_kana(b["text"]) for b in bodies)


def test_a_full_queue_answers_503(echo):
    app = serve.create_app(echo, limits=ServeLimits(max_pending=2, batch_window=0))
    with running(app) as url, ThreadPoolExecutor(4) as pool:
        echo.gate = threading.Event()
        first = pool.submit(post, url, {"text": "あ"})
        wait_until(echo.entered.is_set, "the first model call")
        waiting = [pool.submit(post, url, {"text": "い"}), pool.submit(post, url, {"text": "う"})]
        wait_until(lambda: app.state.batcher.pending == 2, "two queued requests")
        r = post(url, {"text": "え"})
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "try again" in r.json()["error"]
        echo.gate.set()
        assert all(f.result(timeout=30).status_code == 200 for f in [first, *waiting])


# ---------------------------------------------------------------- the real command on a real model


def test_real_server_replies(served_model, tiny_model):
    url = served_model.url
    h = requests.get(url + "api/health", timeout=30).json()
    assert h["status"] == "ok" and h["version"] == __version__
    assert h["model"]["name"] == tiny_model.name and h["model"]["arch"]
    for text in ["こんな忘れ物、ある?", "「お母さん？」", "ウフフ"]:
        r = post(url, {"text": text})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["input_kana"] and is_kana_text(body["input_kana"])
        assert len(body["replies"]) == 1
        rep = body["replies"][0]
        assert rep["reply"] and is_kana_text(rep["reply"]) and isinstance(rep["score"], float)
    r = post(url, {"text": "あいうえお", "num": 3, "temperature": 1.0})
    reps = r.json()["replies"]
    assert r.status_code == 200 and 1 <= len(reps) <= 3
    assert [c["score"] for c in reps] == sorted((c["score"] for c in reps), reverse=True)


@pytest.mark.slow
def test_sigterm_stops_the_real_server_cleanly(tiny_model):
    """A service manager's stop (SIGTERM) ends it like Ctrl-C: summary line, exit status 0."""
    import signal

    from conftest import serving

    with serving(tiny_model, stop_with=signal.SIGTERM) as served:
        assert post(served.url, {"text": "ありがとう"}).status_code == 200
    assert any(line.startswith("stopped: 1 reply in 1 model call ") for line in served.lines), served.lines[-3:]


def test_real_server_rejects_bad_requests_and_survives(served_model):
    url = served_model.url
    for body, status, fragment in [b for b in BAD if b[0] != {"text": "!!! 123"}][:13]:
        r = post(url, body)
        assert r.status_code == status and fragment in r.json()["error"], (body, r.text)
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda i: post(url, {"text": "ね" * (i + 1)}), range(10)))
    assert all(r.status_code == 200 and r.json()["replies"] for r in answers)
    assert requests.get(url + "api/health", timeout=30).json()["stats"]["replies"] >= 10
    assert served_model.proc.poll() is None


def test_missing_or_damaged_model_folder_is_one_error_line(cli, tmp_path):
    res = cli("serve", "--model-dir", tmp_path / "nowhere")
    assert res.code == 1 and res.err.count("\n") == 1 and res.err.startswith("Error: no model folder")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    res = cli("serve", "--model-dir", bad)
    assert res.code == 1 and res.err.count("\n") == 1 and res.err.startswith("Error: cannot read")


def test_broken_model_file_is_one_error_line(cli, tmp_path, tiny_model):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    (broken / "model.keras").write_bytes(b"not a zip")
    res = cli("serve", "--model-dir", broken, "--port", "0")
    assert res.code == 1 and res.err.startswith("Error: ") and res.err.count("\n") == 1, res.err
    assert "Traceback" not in res.out + res.err


def test_a_taken_port_is_one_error_line(cli, tiny_model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        res = cli("serve", "--model-dir", tiny_model, "--port", taken.getsockname()[1])
    assert (
        res.code == 1 and res.err.startswith("Error: cannot listen on http://127.0.0.1:") and res.err.count("\n") == 1
    )


def test_without_the_serve_extra_it_says_what_to_install(cli, tiny_model, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a))
    res = cli("serve", "--model-dir", tiny_model)
    assert res.code == 1 and "pip install 'nocpipe[serve]'" in res.err and res.err.count("\n") == 1


# ---------------------------------------------------------------- what a retrieval model gives


class RetrievalEcho(EchoReplier):
    """A retrieval model's answers: the katakana reply, the line as the author wrote it, its source."""

    name = "lines"
    arch = "retrieval"

    def reply(self, utterances_kana, decoding):
        from pipeline.inference import Candidate

        super().reply(utterances_kana, decoding)
        source = {"work_id": "aozora-000001", "title": "走れメロス", "episode": 1, "line": 42}
        return [[Candidate("ソウダ", 0.875, surface="そうだ。", source=source)] for _ in utterances_kana]


def test_a_retrieval_model_gives_surface_and_source():
    with running(serve.create_app(RetrievalEcho())) as url:
        r = post(url, {"text": "あいう"})
        assert r.status_code == 200, r.text
        assert r.json()["replies"] == [
            {
                "reply": "ソウダ",
                "surface": "そうだ。",
                "score": 0.875,
                "source": {"work_id": "aozora-000001", "title": "走れメロス", "episode": 1, "line": 42},
            }
        ]
        # It answers with real lines: sampling and beams are refused in one line, before the model.
        r = post(url, {"text": "あいう", "temperature": 0.5})
        assert r.status_code == 422 and "does not apply to a retrieval model" in r.json()["error"]
        assert "--" not in r.json()["error"]


# ---------------------------------------------------------------- the Host header


def test_only_the_hosts_it_listens_on_are_answered(echo):
    with running(serve.create_app(echo)) as url:
        port = url.rstrip("/").rsplit(":", 1)[1]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST", "localhost."):
            assert requests.get(url + "api/health", headers={"Host": host}, timeout=30).status_code == 200, host
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "localhost:x", "[::1"):
            for r in (
                requests.get(url, headers={"Host": host}, timeout=30),
                requests.post(url + "api/reply", json={"text": "あ"}, headers={"Host": host}, timeout=30),
            ):
                assert r.status_code == 403 and r.headers["content-type"] == "application/json", (host, r.text)
                assert "--allow-host" in r.json()["error"]
        assert echo.calls == []  # a rebinding page never reaches the model


def test_allowed_names_and_a_wildcard_address(echo):
    policy = serve.hosts.HostPolicy.for_listening("0.0.0.0", ["chat.example.org"])
    with running(serve.create_app(echo, host_policy=policy)) as url:
        for host, status in [
            ("chat.example.org", 200),
            ("CHAT.example.org:443", 200),
            ("192.168.3.4:8000", 200),  # listening on every address: any address
            ("[fe80::1]", 200),
            ("localhost", 200),
            ("other.example.org", 403),
        ]:
            assert requests.get(url + "api/health", headers={"Host": host}, timeout=30).status_code == status, host


def test_host_policy_of_a_named_or_single_address():
    hosts = serve.hosts
    lan = hosts.HostPolicy.for_listening("192.168.1.5")
    assert lan.allows("192.168.1.5:8000") and not lan.allows("127.0.0.1") and not lan.allows("localhost")
    named = hosts.HostPolicy.for_listening("box.lan", ["proxy.example"])
    assert named.allows("box.lan") and named.allows("proxy.example:80") and not named.allows("10.0.0.1")
    six = hosts.HostPolicy.for_listening("::1")
    assert six.allows("[::1]:8000") and six.allows("localhost") and not six.allows("::1")
    assert not six.allows(None) and not six.allows("")
    assert all(map(hosts.is_host_name, ["a.example", "xn--eckwd4c7c.jp", "10.0.0.1", "::1", "[::1]"]))
    assert not any(map(hosts.is_host_name, ["http://a", "a/b", "a:80", "-a.example", "", "a" * 64 + ".jp", "*"]))


# ---------------------------------------------------------------- files the server reads


def test_read_regular_refuses_what_is_not_a_regular_file(tmp_path):
    import os

    from pipeline.regularfile import NotReadable, read_regular

    (tmp_path / "ok.json").write_bytes(b"{}")
    assert read_regular(tmp_path / "ok.json", 10) == b"{}"
    os.mkfifo(tmp_path / "fifo")
    t0 = time.monotonic()
    for path, limit in [(tmp_path / "fifo", 10), (tmp_path, 10), ("/dev/zero", 10), (tmp_path / "ok.json", 1)]:
        with pytest.raises(NotReadable):
            read_regular(path, limit)
    assert time.monotonic() - t0 < 5  # nothing waited for a writer
    with pytest.raises(FileNotFoundError):
        read_regular(tmp_path / "missing", 10)


def test_a_slow_figures_read_holds_up_no_route(echo, tmp_path, monkeypatch):
    """evaluate.json is read in a thread: a read that does not end leaves every route answering."""
    from pipeline import modeldir

    release = threading.Event()
    monkeypatch.setattr(modeldir, "read_evaluate", lambda d: release.wait(60) and {"chrf": 1.0})
    with running(serve.create_app(echo, model_dir=tmp_path)) as url:
        t0 = time.monotonic()
        h = requests.get(url + "api/health", timeout=30).json()
        assert h["model"]["evaluate"] is None and time.monotonic() - t0 < 5
        assert post(url, {"text": "あ"}).status_code == 200
        assert requests.get(url, timeout=30).status_code == 200
        release.set()
        wait_until(lambda: requests.get(url + "api/health", timeout=30).json()["model"]["evaluate"], "the figures")


def test_a_fifo_for_evaluate_json_freezes_nothing(tiny_model, tmp_path):
    """`mkfifo MODEL/evaluate.json`: the real server answers every route and stops on SIGTERM."""
    import os
    import shutil
    import signal

    from conftest import serving

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    (model / "evaluate.json").unlink(missing_ok=True)
    os.mkfifo(model / "evaluate.json")
    with serving(model, stop_with=signal.SIGTERM) as served:
        for _ in range(3):
            h = requests.get(served.url + "api/health", timeout=10).json()
            assert h["status"] == "ok" and h["model"]["evaluate"] is None
        assert post(served.url, {"text": "はい"}).status_code == 200
        assert requests.get(served.url, timeout=10).status_code == 200
        # Figures written while it runs show; a FIFO put in their place later is passed over again.
        (model / "evaluate.json").unlink()
        (model / "evaluate.json").write_text(json.dumps({"chrf": 9.5}))
        assert requests.get(served.url + "api/health", timeout=10).json()["model"]["evaluate"] == {"chrf": 9.5}
        (model / "evaluate.json").unlink()
        os.mkfifo(model / "evaluate.json")
        assert requests.get(served.url + "api/health", timeout=10).json()["model"]["evaluate"] is None


def test_a_fifo_in_place_of_a_model_file_is_one_error_line(cli, tmp_path, tiny_model):
    import os
    import shutil

    for name in ("config.json", "vocab.json", "model.keras"):
        model = tmp_path / name.replace(".", "-")
        shutil.copytree(tiny_model, model)
        (model / name).unlink()
        os.mkfifo(model / name)
        res = cli("serve", "--model-dir", model, "--port", "0")
        assert res.code == 1 and res.err.count("\n") == 1, res.err
        assert res.err.startswith(f"Error: {model / name} is not a regular file"), res.err


# ---------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-batch", "0"], "--max-batch must be from 1 to 256, not 0"),
        (["--max-batch", "257"], "--max-batch must be from 1 to 256, not 257"),
        (["--max-pending", "0"], "--max-pending must be from 1 to 4096, not 0"),
        (["--max-pending", "100000"], "--max-pending must be from 1 to 4096, not 100000"),
        (["--port", "70000"], "--port must be from 0 to 65535, not 70000"),
        (["--allow-host", "http://chat.example/"], "--allow-host 'http://chat.example/' is not a host name"),
        (["--allow-host", "a.example"] * 65, "--allow-host may be given at most 64 times"),
    ],
)
def test_sizes_are_bounded_before_the_model_loads(cli, tmp_path, args, message):
    res = cli("serve", "--model-dir", tmp_path / "no-model-here", *args)  # refused before the folder is read
    assert res.code == 1 and res.err.count("\n") == 1 and res.err.startswith(f"Error: {message}"), res.err


def test_help_states_the_bounds(cli):
    res = cli("serve", "--help")
    text = " ".join(res.out.split())
    for bound in ("1 to 256", "1 to 4096", f"1 to {MAX_NUM} replies", "at most 8192 bytes", "at most 200 characters"):
        assert bound in text, bound
    assert "--allow-host NAME" in res.out and "within 5 s" in text


def test_functions_are_short():
    """Every function of the server's modules is at most 60 lines (a command's option declarations aside)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = [
        root / "stages" / "serve.py",
        root / "pipeline" / "cli" / "serve.py",
        *(root / "pipeline" / "web").glob("*.py"),
    ]
    long = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = node.body[0]
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and len(node.body) > 1:
                    first = node.body[1]  # the docstring is not code
                lines = node.end_lineno - first.lineno + 1
                if lines > 60:
                    long.append(f"{path.name}:{node.name} {lines}")
    assert not long and len(files) >= 7


# ---------------------------------------------------------------- the process: stopping, hang-ups, timeouts

# The real serve() in its own process, with a model that takes `delay` seconds a call, one
# request a call: the queue grows as it would in front of a large model.
SLOW_SERVER = """
import sys, time
from pathlib import Path
from pipeline.config import ServeLimits
from pipeline.inference import Candidate
from pipeline.reporter import Reporter
from stages import serve

class Slow:
    name, arch, max_len = "slow", "test", 16
    def to_kana(self, text):
        return "ア" * len(text)
    def reply(self, kanas, decoding):
        time.sleep(float(sys.argv[1]))
        return [[Candidate(k, -1.0)] for k in kanas]

opts = serve.ServeOptions(model_dir=Path(sys.argv[2]), port=0, limits=ServeLimits(max_batch=1))
res = serve.serve(opts, Reporter(), replier=Slow())
print("stopped:", res.stats["replies"], flush=True)
"""


@contextmanager
def slow_server(tmp_path, delay: float):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_SERVER, str(delay), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=repo,
    )
    lines: list[str] = []
    url = None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("serving at "):
            url = line.split()[2]
            break
    assert url, "\n".join(lines)
    pump = threading.Thread(target=lambda: lines.extend(ln.rstrip("\n") for ln in proc.stdout), daemon=True)
    pump.start()
    try:
        yield url, proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        pump.join(10)


def test_sigint_with_a_long_queue_answers_every_waiting_request(tmp_path):
    """250 requests queued in front of a slow model, then Ctrl-C: the one in the model gets its
    reply, the others a JSON 503 saying the server stops; one log line, no traceback."""
    import signal

    with slow_server(tmp_path, delay=0.5) as (url, proc, lines), ThreadPoolExecutor(250) as pool:
        futures = [pool.submit(post, url, {"text": "あ"}) for _ in range(250)]
        wait_until(lambda: requests.get(url + "api/health", timeout=30).json()["stats"]["pending"] >= 240, "a queue")
        proc.send_signal(signal.SIGINT)
        answers = [f.result(timeout=60) for f in futures]
        assert proc.wait(30) == 0
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {200, 503} and statuses.count(503) >= 240, sorted(set(statuses))
    assert all(r.headers["content-type"] == "application/json" for r in answers)
    assert all("stopping" in r.json()["error"] for r in answers if r.status_code == 503)
    log = "\n".join(lines)
    assert "Traceback" not in log and "CancelledError" not in log and "Internal Server Error" not in log, log[-2000:]
    told = [ln for ln in lines if ln.startswith("stopping")]
    assert len(told) == 1 and f"{statuses.count(503)} waiting requests" in told[0], lines[-5:]


def _hang_up(port: int, head: bytes, body: bytes, reset: bool) -> None:
    import struct

    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if reset:  # RST instead of FIN: the way a killed client or a dropped network ends
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.sendall(head + body)
    s.close()


def test_hang_ups_and_deep_nesting_log_nothing(served_model):
    url = served_model.url
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    before = len(served_model.lines)
    head = (
        f"POST /api/reply HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    ).encode()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: _hang_up(port, head, b'{"text": "' + b"a" * (i % 50), i % 2 == 0), range(400)))
    for body in (
        "[" * 4000,
        '{"text": ' + "[" * 4000,
        "{" * 4000,
        '{"text": "あ", "num": ' + "[" * 900 + "]" * 900 + "}",
    ):
        r = requests.post(url + "api/reply", data=body, headers={"Content-Type": "application/json"}, timeout=30)
        assert 400 <= r.status_code < 500 and "error" in r.json(), (body[:20], r.status_code, r.text[:200])
    assert post(url, {"text": "はい"}).status_code == 200  # still serving
    time.sleep(0.5)
    new = served_model.lines[before:]
    assert len(new) <= 1 and "Traceback" not in "\n".join(new), new[:20]


def _closed_after(sock: socket.socket) -> float:
    """Seconds until the server closes `sock` (reading and dropping what it sends)."""
    t0 = time.monotonic()
    sock.settimeout(30)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, TimeoutError):
        pass
    return time.monotonic() - t0


def test_idle_and_half_sent_connections_are_dropped(served_model):
    import http.client

    port = int(served_model.url.rstrip("/").rsplit(":", 1)[1])
    host = f"Host: 127.0.0.1:{port}\r\n".encode()
    silent = socket.create_connection(("127.0.0.1", port))
    half_head = socket.create_connection(("127.0.0.1", port))
    half_head.sendall(b"POST /api/reply HTTP/1.1\r\n" + host + b"Content-Type: appl")
    half_body = socket.create_connection(("127.0.0.1", port))
    half_body.sendall(
        b"POST /api/reply HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    idle.request("GET", "/api/health")
    assert idle.getresponse().read()  # one answered request, then nothing on a keep-alive connection
    with ThreadPoolExecutor(4) as pool:
        waits = list(pool.map(_closed_after, [silent, half_head, half_body, idle.sock]))
    limits = ServeLimits()
    assert all(1 < w < limits.read_timeout + 5 for w in waits[:3]), waits
    assert 1 < waits[3] < limits.keep_alive + 5, waits
    assert served_model.proc.poll() is None
