"""Keras builders: shapes, the seed network's structure, names, config round trip, save/load in
safe mode and with plain Keras on every backend, older (graph 1) files, the check of a file against
its config, dropout, the masked accuracy, precision and cuDNN reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

# Keras converts its own variables with np.array(copy=False) inside save/fit: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

from pipeline.errors import ModelError, UsageError  # noqa: E402
from pipeline.models import (  # noqa: E402
    ARCHS,
    PARALLEL_ARCHS,
    BitsPerChar,
    MaskedAccuracy,
    ModelConfig,
    OneHot,
    PositionEmbedding,
    build_model,
    choose_precision,
    compile_model,
    cudnn_report,
    decoding_parts,
    inference_copy,
    load_for_config,
    load_inference_model,
    make_optimizer,
)

TINY = dict(units=8, max_len=12, vocab_size=20)


def lstm_params(inp: int, units: int) -> int:
    return 4 * (inp * units + units * units + units)


def inputs_of(cfg: ModelConfig, n: int, seed: int = 0):
    x = np.random.default_rng(seed).integers(0, cfg.vocab_size, (n, cfg.max_len)).astype("int32")
    if cfg.arch in PARALLEL_ARCHS:
        return x
    return (x, np.random.default_rng(seed + 1).integers(0, cfg.vocab_size + 1, (n, cfg.max_len)).astype("int32"))


@pytest.mark.parametrize("arch", ARCHS)
def test_each_architecture_builds_with_the_right_shapes_and_named_layers(arch):
    cfg = ModelConfig(arch=arch, **TINY)
    model = build_model(cfg)
    if arch in PARALLEL_ARCHS:
        assert model.input_shape == (None, 12)
        assert {"chars", "one_hot", "encoder", "repeat", "decoder", "reply"} <= {lay.name for lay in model.layers}
    else:
        assert model.input_shape == [(None, 12), (None, 12)]
        assert [t.name for t in model.inputs] == ["chars", "reply_in"]
        assert {"utterance_embedding", "reply_embedding", "reply"} <= {lay.name for lay in model.layers}
    # Keras's own layers only: nothing of nocpipe in the saved graph.
    assert all(type(layer).__module__.startswith("keras.") for layer in model.layers), arch
    assert model.output_shape == (None, 12, 20)
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
    probs = keras.ops.convert_to_numpy(model(inputs_of(cfg, 3)))
    assert probs.shape == (3, 12, 20)
    assert np.allclose(probs.sum(-1), 1.0, atol=1e-5)


def test_seed_is_the_figure_3_network():
    u, t, v = 16, 12, 20
    model = build_model(ModelConfig(arch="seed", units=u, max_len=t, vocab_size=v))
    by = {layer.name: layer for layer in model.layers}
    assert isinstance(by["encoder"], keras.layers.LSTM) and by["encoder"].units == u
    assert not by["encoder"].return_sequences
    assert isinstance(by["flatten"], keras.layers.Flatten)
    att = by["attention"]
    assert isinstance(att, keras.layers.Dense) and att.units == u and att.activation is keras.activations.softmax
    assert att.kernel.shape == (t * v, u)  # over the flattened one-hot input
    assert isinstance(by["attend"], keras.layers.Multiply)
    assert isinstance(by["repeat"], keras.layers.RepeatVector) and by["repeat"].n == t
    dec = by["decoder"]
    assert isinstance(dec, keras.layers.Bidirectional) and dec.forward_layer.units == u
    assert dec.forward_layer.return_sequences
    out = by["reply"]
    assert isinstance(out, keras.layers.TimeDistributed) and out.layer.units == v
    assert out.layer.activation is keras.activations.softmax
    expected = lstm_params(v, u) + (t * v * u + u) + 2 * lstm_params(u, u) + (2 * u * v + v)
    assert model.count_params() == expected
    # The default is the original's size: LSTM(512), 50 steps, 128 characters.
    cfg = ModelConfig()
    assert (cfg.arch, cfg.units, cfg.max_len, cfg.vocab_size, cfg.reverse_input) == ("seed", 512, 50, 128, True)


def test_simple_has_no_attention_and_dense_attention_reads_the_encoding():
    simple = build_model(ModelConfig(arch="simple", **TINY))
    assert "attention" not in {layer.name for layer in simple.layers}
    dense = build_model(ModelConfig(arch="dense-attention", **TINY))
    att = dense.get_layer("attention")
    assert att.kernel.shape == (8, 8) and att.activation is keras.activations.softmax


def test_config_round_trip_and_validation():
    cfg = ModelConfig(
        arch="dense-attention",
        units=24,
        max_len=30,
        vocab_size=64,
        reverse_input=False,
        optimizer="rmsprop",
        learning_rate=0.003,
    )
    assert ModelConfig.from_json(cfg.to_json()) == cfg
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ModelError, match="unknown fields"):
        ModelConfig.from_dict({**cfg.to_dict(), "depth": 4})
    for bad in (
        dict(arch="lstm"),
        dict(units=0),
        dict(arch="transformer", units=12, heads=5),
        dict(arch="transformer", max_len=1),
        dict(positions="rotary"),
        dict(layers=0),
        dict(max_len=0),
        dict(vocab_size=2),
        dict(optimizer="adagrad"),
        dict(learning_rate=-1.0),
        dict(learning_rate=float("nan")),
    ):
        with pytest.raises(UsageError):
            ModelConfig(**bad).validate()


PLAIN_LOAD = """
import sys
from pathlib import Path
sys.modules["pipeline"] = None  # nocpipe cannot be imported: only Keras reads the files
import numpy as np, keras
for arch in sys.argv[1].split(","):
    data = np.load(arch + ".npz")
    x = tuple(data[k] for k in sorted(data.files) if k.startswith("x"))
    model = keras.saving.load_model(arch + ".keras")
    np.save(arch + ".out.npy", keras.ops.convert_to_numpy(model.predict_on_batch(x if len(x) > 1 else x[0])))
print(keras.backend.backend(), "pipeline" in sys.modules and sys.modules["pipeline"] is not None)
"""


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_every_network_loads_with_plain_keras_on_jax_and_tensorflow(tmp_path, positions):
    """model.keras holds Keras layers and ops only: a process where nocpipe is not importable loads
    it with keras.saving.load_model(path) on either backend and gets nocpipe's probabilities."""
    archs = ARCHS if positions == "learned" else ("transformer",)
    want = {}
    for arch in archs:
        cfg = ModelConfig(arch=arch, positions=positions, **TINY)
        model = build_model(cfg)
        model.save(tmp_path / f"{arch}.keras")
        x = inputs_of(cfg, 4, seed=5)
        x = x if isinstance(x, tuple) else (x,)
        x[0][0, :5] = 0  # a padded utterance: the mask must come along
        np.savez(tmp_path / f"{arch}.npz", **{f"x{i}": a for i, a in enumerate(x)})
        ours = load_inference_model(tmp_path / f"{arch}.keras")
        want[arch] = keras.ops.convert_to_numpy(ours(x if len(x) > 1 else x[0]))
    (tmp_path / "load.py").write_text(PLAIN_LOAD, encoding="utf-8")
    for backend in ("jax", "tensorflow"):
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND")}
        env.update(KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        r = subprocess.run(
            [sys.executable, "load.py", ",".join(archs)], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr[-3000:]
        assert r.stdout.split() == [backend, "False"]
        for arch in archs:
            got = np.load(tmp_path / f"{arch}.out.npy")
            np.testing.assert_allclose(got, want[arch], atol=1e-5, err_msg=f"{arch} on {backend}")


@pytest.mark.parametrize("arch", ["attention", "transformer"])
def test_older_folders_keep_their_custom_layers(tmp_path, arch):
    """A config.json without `graph` is graph 1: the network with nocpipe's PaddingMask and
    PositionEmbedding, which loads, decodes and takes its checkpoint's weights as before."""
    old = ModelConfig.from_dict({k: v for k, v in ModelConfig(arch=arch, **TINY).to_dict().items() if k != "graph"})
    assert old.graph == 1 and ModelConfig(arch=arch).graph == 2
    model = build_model(old)
    names = {type(layer).__name__ for layer in model.layers}
    assert "PaddingMask" in names and (arch == "attention" or "PositionEmbedding" in names)
    model.save(tmp_path / "old.keras")
    back = load_for_config(tmp_path / "old.keras", old)
    x, y = inputs_of(old, 3)
    full = keras.ops.convert_to_numpy(back((x, y)))
    assert np.allclose(full, keras.ops.convert_to_numpy(model((x, y))), atol=1e-6)
    encoder, step, shapes = decoding_parts(back, old)  # the decoding split still finds its layers
    assert len(encoder.outputs) >= 2 and shapes
    with pytest.raises(ModelError, match="does not fit its config"):
        load_for_config(tmp_path / "old.keras", ModelConfig(arch=arch, **TINY))  # read as graph 2


def test_a_file_that_does_not_fit_its_config_or_is_damaged_says_so(tmp_path):
    cfg = ModelConfig(arch="transformer", **TINY)
    build_model(cfg).save(tmp_path / "m.keras")
    for change, words in (
        (dict(max_len=20), "inputs are"),
        (dict(units=16), "shape"),
        (dict(vocab_size=30), "outputs are"),
        (dict(layers=3), "layers differ"),
        (dict(arch="attention"), "layers differ"),
    ):
        other = ModelConfig(**{**cfg.to_dict(), **change})
        with pytest.raises(ModelError, match="does not fit its config") as info:
            load_for_config(tmp_path / "m.keras", other)
        assert words in str(info.value) and "\n" not in str(info.value)
    assert load_for_config(tmp_path / "m.keras", cfg).count_params() == build_model(cfg).count_params()
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="damaged .not a Keras archive"):
        load_for_config(tmp_path / "bad.keras", cfg)
    data = (tmp_path / "m.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2] + data[-200:])
    with pytest.raises(ModelError, match="damaged"):
        load_for_config(tmp_path / "cut.keras", cfg)


@pytest.mark.parametrize("arch", ["attention", "transformer"])
def test_dropout_is_active_in_training_only(arch):
    cfg = ModelConfig(arch=arch, dropout=0.3, **TINY)
    model = build_model(cfg)
    assert any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    x = inputs_of(cfg, 4)
    a, b = model(x, training=False), model(x, training=False)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(model(x, training=True)), np.asarray(a))
    plain = build_model(ModelConfig(arch=arch, **TINY))
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in plain.layers)
    assert [w.shape for w in model.weights] == [w.shape for w in plain.weights]  # dropout adds no weights
    for bad in (dict(dropout=1.0), dict(dropout=-0.1), dict(arch="seed", dropout=0.2)):
        with pytest.raises(UsageError, match="dropout"):
            ModelConfig(**{**TINY, "arch": arch, **bad}).validate()


def test_transformer_positions_and_causality():
    for kind in ("learned", "sinusoidal"):
        cfg = ModelConfig(arch="transformer", positions=kind, **TINY)
        model = build_model(cfg)
        table = model.get_layer("reply_positions")
        assert isinstance(table, keras.layers.Embedding) and table.trainable == (kind == "learned")
        x, y = inputs_of(cfg, 2)
        base = keras.ops.convert_to_numpy(model((x, y)))
        y2 = y.copy()
        y2[:, 6:] = 3  # a later decoder input never changes an earlier position
        changed = keras.ops.convert_to_numpy(model((x, y2)))
        assert np.allclose(base[:, :6], changed[:, :6], atol=1e-5)
        assert not np.allclose(base[:, 6:], changed[:, 6:], atol=1e-5)
    vectors = keras.ops.convert_to_numpy(table.embeddings)
    assert vectors.shape == (12, 8) and vectors[0, 0] == 0.0 and vectors[0, 1] == 1.0  # sin(0), cos(0)
    assert np.allclose(vectors[3, 2], np.sin(3 / 10000 ** (2 / 8)))
    layer = PositionEmbedding(4, "sinusoidal")  # graph 1's layer gives the same vectors
    out = keras.ops.convert_to_numpy(layer(np.zeros((1, 4, 8), dtype="float32")))
    assert np.allclose(out[0], vectors[:4])


def test_attention_ignores_utterance_padding_positions_it_masks():
    cfg = ModelConfig(arch="attention", **TINY)
    model = build_model(cfg)
    assert isinstance(model.get_layer("encoder"), keras.layers.Bidirectional)
    assert model.get_layer("encoder").forward_layer.units == 8
    assert isinstance(model.get_layer("cross_attention"), keras.layers.MultiHeadAttention)
    assert model.get_layer("decoder").units == 8


def test_bits_per_char_counts_characters_and_the_end_only():
    m = BitsPerChar()
    y_true = np.array([[3, 2, 0, 0]])
    y_pred = np.full((1, 4, 4), 0.25, dtype="float32")
    y_pred[0, 3] = [1.0, 0.0, 0.0, 0.0]  # the padding after the end: ignored whatever it says
    y_pred[0, 0] = [0.0, 0.0, 0.0, 1.0]  # certain of the first character: 0 bits
    m.update_state(y_true, y_pred)
    assert float(m.result()) == pytest.approx((0 + 2 + 2) / 3)


def test_one_hot_layer():
    layer = OneHot(5, name="oh")
    out = keras.ops.convert_to_numpy(layer(np.array([[0, 4, 2]], dtype="int32")))
    assert out.shape == (1, 3, 5) and out[0, 1, 4] == 1 and out.sum() == 3
    assert OneHot.from_config(layer.get_config()).num_classes == 5


def test_masked_accuracy_ignores_padding():
    m = MaskedAccuracy()
    y_true = np.array([[3, 2, 0, 0], [1, 0, 0, 0]])
    pred_ids = np.array([[3, 1, 0, 2], [1, 0, 0, 0]])  # 2 of 3 real characters right; pads do not count
    y_pred = np.eye(4)[pred_ids].astype("float32")
    m.update_state(y_true, y_pred)
    assert float(m.result()) == pytest.approx(2 / 3)
    m.reset_state()
    assert float(m.result()) == 0.0


@pytest.mark.parametrize("arch", ARCHS)
def test_save_and_load_in_safe_mode(tmp_path, arch):
    cfg = ModelConfig(arch=arch, **TINY)
    model = compile_model(build_model(cfg), "adam")
    x = inputs_of(cfg, 16, seed=1)
    model.fit(x, x[0] if isinstance(x, tuple) else x, batch_size=8, epochs=1, verbose=0)
    twin = inference_copy(model, cfg)
    twin.save(tmp_path / "m.keras")
    back = load_inference_model(tmp_path / "m.keras")
    assert np.allclose(keras.ops.convert_to_numpy(back(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-6)
    assert getattr(back, "optimizer", None) is None  # predict loads no optimizer


def test_optimizers():
    for kind in ("adam", "rmsprop", "sgd"):
        opt = make_optimizer(kind, 0.5)
        assert opt.name == kind and float(opt.learning_rate) == pytest.approx(0.5)
    with pytest.raises(UsageError):
        make_optimizer("adamw")


def test_precision_and_cudnn_report_without_a_gpu():
    assert choose_precision("auto", None) == "float32"
    assert choose_precision("auto", {"name": "H200", "capability": (9, 0)}) == "mixed_bfloat16"
    assert choose_precision("auto", {"name": "T4", "capability": (7, 5)}) == "mixed_float16"
    assert choose_precision("float32", {"name": "H200", "capability": (9, 0)}) == "float32"
    with pytest.raises(UsageError):
        choose_precision("fp8")
    model = build_model(ModelConfig(**TINY))
    line = cudnn_report(model, None)
    assert "not in use" in line and "3 recurrent layers" in line and "\n" not in line
    assert "no recurrent layers" in cudnn_report(build_model(ModelConfig(arch="transformer", **TINY)), None)
    assert "3 recurrent layers" in cudnn_report(build_model(ModelConfig(arch="attention", **TINY)), None)
    gpu_line = cudnn_report(model, {"name": "H200", "capability": (9, 0)})
    assert "in use" in gpu_line and "not in use" not in gpu_line


def test_cudnn_report_names_what_blocks_the_fused_kernel():
    cfg = ModelConfig(**TINY)
    model = build_model(cfg)
    model.get_layer("encoder").cell.recurrent_dropout = 0.1
    line = cudnn_report(model, {"name": "H200", "capability": (9, 0)})
    assert "not in use" in line and "encoder: recurrent dropout" in line


def test_mixed_precision_keeps_the_softmax_in_float32():
    cfg = ModelConfig(**TINY)
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_model(cfg)
    finally:
        keras.config.set_dtype_policy(old)
    assert model.get_layer("encoder").compute_dtype == "bfloat16"
    assert model.get_layer("reply").compute_dtype == "float32"
    twin = inference_copy(model, cfg)
    assert twin.get_layer("encoder").compute_dtype == "float32"


@pytest.mark.parametrize("arch", ["attention", "transformer"])
def test_reply_dropout_hides_characters_in_training_only(arch):
    cfg = ModelConfig(arch=arch, reply_dropout=0.5, **TINY)
    model = build_model(cfg)
    layer = model.get_layer("reply_dropout")
    assert layer.noise_shape == (None, cfg.max_len, 1)  # whole characters, not single features
    x = inputs_of(cfg, 4)
    a, b = model(x, training=False), model(x, training=False)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(model(x, training=True)), np.asarray(a))
    plain = build_model(ModelConfig(arch=arch, **TINY))
    assert "reply_dropout" not in [lyr.name for lyr in plain.layers]
    with pytest.raises(UsageError, match="reply-dropout"):
        ModelConfig(arch=arch, reply_dropout=1.0, **TINY).validate()


def test_the_config_and_the_package_import_without_keras():
    """ModelConfig and the model folder's checks are Keras-free; importing the package touches no logging."""
    code = (
        "import sys, os; before = os.fstat(2).st_ino\n"
        "import pipeline.models, pipeline.modeldir\n"
        "from pipeline.models import ModelConfig, ARCHS\n"
        "ModelConfig(arch='transformer').validate()\n"
        "print('keras' in sys.modules, 'tensorflow' in sys.modules, os.fstat(2).st_ino == before)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False", "True"]
