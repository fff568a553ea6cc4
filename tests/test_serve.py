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

    def reply(self, utterances_kana, *, num=1, temperature=0.0, beam=0):
        self.calls.append((list(utterances_kana), {"num": num, "temperature": temperature, "beam": beam}))
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(30)
        if self.fail is not None:
            raise self.fail
        return [[Cand(k[::-1] + "ー" * j, -0.5 - j) for j in range(num)] for k in utterances_kana]


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
    assert r.json() == {"input_kana": "アイウ", "truncated": False, "replies": [{"text": "ウイア", "score": -0.5}]}
    assert echo.calls == [(["アイウ"], {"num": 1, "temperature": 0.0, "beam": 0})]


def test_options_reach_the_model(echo_server, echo):
    url, _ = echo_server
    r = post(url, {"text": "かきく", "num": 3, "temperature": 0.7, "beam": 4})
    assert r.status_code == 200
    assert [c["text"] for c in r.json()["replies"]] == ["クキカ", "クキカー", "クキカーー"]
    assert echo.calls[-1][1] == {"num": 3, "temperature": 0.7, "beam": 4}
    assert isinstance(echo.calls[-1][1]["temperature"], float)


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
    ({"text": "!!! 123"}, 422, "katakana"),
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
    ({"text": "あ", "num": 11}, 422, "num"),
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
    assert post(url, {"text": "まだ"}).json()["replies"][0]["text"] == "ダマ"


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
        assert r.status_code == 200 and r.json()["replies"][0]["text"] == "ア" * len(t)
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
        assert len(rep) == body.get("num", 1) and rep[0]["text"] == echo.to_kana(body["text"])[::-1]
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
        assert rep["text"] and is_kana_text(rep["text"]) and isinstance(rep["score"], float)
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
    for body, status, fragment in [b for b in BAD if b[2] != "katakana"][:12]:
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
