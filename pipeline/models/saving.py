"""model.keras: the uncompiled float32 copy train saves, and loading it back for decoding.

A new file holds Keras layers and ops only, so `keras.saving.load_model(path)` reads it on any
backend without nocpipe; an older one (graph 1) needs the legacy layers, which are always passed.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras

from ..errors import ModelError
from .builders import build_model
from .config import ModelConfig
from .layers import LEGACY_OBJECTS
from .training import METRIC_OBJECTS, variable_value

CUSTOM_OBJECTS = {**LEGACY_OBJECTS, **METRIC_OBJECTS}
_FIX = "restore it, or train the model again (nocpipe train --resume rewrites it from the checkpoint)"


def inference_copy(model: keras.Model, config: ModelConfig) -> keras.Model:
    """An uncompiled float32 twin of `model` (same weights): what model.keras holds for predict."""
    twin = build_model(config, dtype="float32")
    twin.set_weights([variable_value(w).astype("float32") for w in model.weights])
    return twin


def load_inference_model(path) -> keras.Model:
    """Load a `.keras` file in safe mode, uncompiled (predict needs no optimizer)."""
    return keras.saving.load_model(path, compile=False, safe_mode=True, custom_objects=CUSTOM_OBJECTS)


def load_for_config(path: Path, config: ModelConfig) -> keras.Model:
    """model.keras checked against the network its config.json describes: a damaged file, or one of
    another architecture or size, is a one-line ModelError saying which and what to do."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{path} is damaged (not a Keras archive); {_FIX}")
    try:
        model = load_inference_model(path)
    except Exception as exc:  # a truncated or foreign archive: Keras says "File not found" or worse
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path} is damaged ({first[:200]}); {_FIX}") from None
    problem = mismatch(model, build_model(config, dtype="float32"))
    if problem:
        raise ModelError(
            f"{path} does not fit its config ({config.arch}, {config.max_len} steps, {config.units} units, "
            f"{config.vocab_size} characters): {problem}; was the folder changed by hand? {_FIX}"
        )
    return model


def _shapes(tensors) -> list[tuple]:
    return [tuple(t.shape[1:]) for t in tensors]


def mismatch(model: keras.Model, expected: keras.Model) -> str:
    """What differs between a loaded network and the one the config builds ('' when nothing):
    every input and output shape, the layers by name (graph 1 and 2 differ there), then every
    weight's shape, in order."""
    for what, got, want in (
        ("inputs", _shapes(model.inputs), _shapes(expected.inputs)),
        ("outputs", _shapes(model.outputs), _shapes(expected.outputs)),
    ):
        if got != want:
            return f"its {what} are {got}, the config's {want}"
    names, expected_names = {layer.name for layer in model.layers}, {layer.name for layer in expected.layers}
    if names != expected_names:
        odd = sorted(names ^ expected_names)[:3]
        return f"its layers differ from the config's network ({', '.join(odd)})"
    got = [tuple(w.shape) for w in model.weights]
    want = [tuple(w.shape) for w in expected.weights]
    if len(got) != len(want):
        return f"it has {len(got)} weight arrays, the config's network {len(want)}"
    for g, w, var in zip(got, want, expected.weights):
        if g != w:
            return f"weight {var.path} has shape {g}, the config's {w}"
    return ""
