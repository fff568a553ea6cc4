"""nocpipe evaluate on a real tiny model trained on real pairs of the bundled corpus."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import SHARED_CORPUS

from pipeline.metrics import FIGURES


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The bundled works ingested and extracted, and a model of 8 units trained 1 epoch on 300 pairs."""
    from pipeline.cli import main

    assert SHARED_CORPUS.is_dir(), f"bundled corpus not found at {SHARED_CORPUS}"
    root = tmp_path_factory.mktemp("evaluate")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NOCPIPE_DATA", str(root / "data"))
        assert main(["ingest", "-q", str(SHARED_CORPUS)]) == 0
        assert main(["extract-pairs", "-q", "--examples", "0"]) == 0
        assert (
            main(
                [
                    "train",
                    "--arch",
                    "transformer",
                    "--name",
                    "tiny",
                    "--units",
                    "8",
                    "--epochs",
                    "1",
                    "--max-pairs",
                    "300",
                    "--batch-size",
                    "32",
                    "--valid-pairs",
                    "32",
                    "--quiet",
                ]
            )
            == 0
        )
    return root / "data", root / "data" / "models" / "tiny"


@pytest.fixture
def env(tiny, monkeypatch):
    monkeypatch.setenv("NOCPIPE_DATA", str(tiny[0]))
    return tiny


def test_evaluate_prints_and_writes_every_figure(env, cli, tmp_path):
    data, model = env
    out = tmp_path / "figures.json"
    r = cli("evaluate", "--name", "tiny", "--json", out, "--examples", "3", "--max-pairs", "40")
    assert r.code == 0, r.err
    figs = json.loads(out.read_text())
    assert set(FIGURES) <= set(figs)
    assert figs["n"] == 40 and figs["split"] == "test"
    assert json.loads((model / "evaluate.json").read_text())["bits_per_char"] == figs["bits_per_char"]
    for key in FIGURES:
        assert math.isfinite(figs[key]), key
    # The 5-gram has learned replies from 300 of them: well under the uniform 7 bits/char.
    assert 0 < figs["ngram_bits_per_char"] < math.log2(128) and figs["bits_per_char"] > 0
    assert f"{figs['bits_per_char']:8.3f} {figs['ngram_bits_per_char']:8.3f}" in r.out
    better = figs["bits_per_char"] < figs["ngram_bits_per_char"]
    assert ("it uses the utterance" in r.out) == better and ("no better than the n-gram" in r.out) != better
    assert r.out.count("reference  「") == 3 and "evaluated 40 pairs" in r.out
    assert (model / "ngram.npz").exists() and "fitted on 300 train replies" in r.err


def test_figures_agree_with_the_models_themselves(env, cli, tmp_path):
    """bits/char is the Chatbot's own log-probabilities; the n-gram model is fitted on the
    replies of exactly the train pairs the model saw (its --max-pairs)."""
    from pipeline.dataset import read_unit, scan_units
    from pipeline.inference import Chatbot
    from pipeline.metrics import bits_per_char
    from pipeline.ngram import NgramLM

    data, model = env
    out = tmp_path / "f.json"
    r = cli("evaluate", "--model-dir", model, "--json", out, "--examples", "0", "--max-pairs", "24")
    assert r.code == 0, r.err
    assert "fitted" not in r.err  # the saved n-gram model is reused
    figs = json.loads(out.read_text())
    cfg = json.loads((model / "config.json").read_text())
    pairs = Path(figs["data_dir"])
    assert pairs == Path(cfg["data"]["data_dir"])
    utt, rep = [], []
    for unit in scan_units(pairs, "test", 24):
        u, r_ = read_unit(unit, "test")
        utt += u
        rep += r_
    bot = Chatbot.load(model)
    assert figs["bits_per_char"] == pytest.approx(bits_per_char(bot.log_probs(utt, rep)), abs=1e-5)
    train = [x for unit in scan_units(pairs, "train", 300) for x in read_unit(unit, "train")[1]]
    lm = NgramLM.fit(bot.vocab, [train])
    assert figs["ngram_bits_per_char"] == pytest.approx(bits_per_char(lm.log_probs(rep)), abs=1e-5)
    assert figs["tokens"] == sum(min(len(x), bot.max_len - 1) + 1 for x in rep)


def test_mmi_reranks_replies_in_evaluate_and_predict(env, cli, tmp_path):
    out = tmp_path / "mmi.json"
    r = cli("evaluate", "--name", "tiny", "--json", out, "--examples", "0", "--max-pairs", "8", "--mmi", "0.5")
    assert r.code == 0, r.err
    assert json.loads(out.read_text())["decoding"] == "beam 8, reranked by MMI λ=0.5"
    plain = cli("predict", "--name", "tiny", "--num", "3", "お母さん？")
    mmi = cli("predict", "--name", "tiny", "--num", "3", "--mmi", "0.5", "お母さん？")
    assert plain.code == 0 and mmi.code == 0, mmi.err
    lines = [ln for ln in mmi.out.splitlines() if ln.strip()[:2] in ("1.", "2.", "3.")]
    assert len(lines) == 3


def test_user_errors_are_one_line(env, cli, tmp_path):
    r = cli("evaluate", "--model-dir", tmp_path / "nothing")
    assert r.code == 1 and r.err.startswith("Error: ") and "Traceback" not in r.err
    r = cli("evaluate", "--name", "tiny", "--split", "dev")
    assert r.code == 1 and "--split" in r.err
    r = cli("evaluate", "--name", "tiny", "--data-dir", tmp_path / "empty")
    assert r.code == 1 and r.err.startswith("Error: ")
