"""The machine under the network: TensorFlow's start-up noise, the GPU, the training precision and
whether the fused cuDNN kernel serves the recurrent layers.

    quiet_keras()          import Keras with TensorFlow's native start-up lines dropped (explicit:
                           the commands that load a network call it; importing this module does not)
    quiet_native_logs()    drop those lines for the length of a `with` block (fit, device discovery)
    gpu_info()             the first GPU the backend sees, or None
    choose_precision()     the dtype policy for training
    cudnn_report(model)    one line: fused cuDNN kernel in use, or why not
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from contextlib import contextmanager

from ..errors import UsageError

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")

# TensorFlow's C++ start-up lines ("oneDNN custom operations are on", "Could not find cuda
# drivers", cuInit failures on a machine without a GPU) are written before its logging is
# configured, so TF_CPP_MIN_LOG_LEVEL does not hide them. They are caught at the file
# descriptor and dropped; anything else written meanwhile is passed on.
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl|[IW]0000 "
    r"|E0000 .*(cuInit|cuda_platform|cuda_dnn|cuda_fft|cuda_blas|oneDNN supports)"
    r"|To enable the following instructions|.*cpu_feature_guard|.*TF_ENABLE_ONEDNN_OPTS)"
)


@contextmanager
def quiet_native_logs():
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode("utf-8", "replace").splitlines():
                if line and not _NOISE.match(line):
                    print(line, file=sys.stderr)


def quiet_keras():
    """Import Keras (and TensorFlow when it is the backend, devices discovered) with the native
    start-up lines dropped; TensorFlow's Python warnings about retracing, which decoding causes on
    purpose (a few batch shapes, powers of two), are turned off. Returns the keras module."""
    if "keras" in sys.modules and getattr(quiet_keras, "done", False):
        return sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_native_logs():
        import keras

        if keras.backend.backend() == "tensorflow":  # device discovery prints the cuInit line: do it here
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")
            tf.get_logger().setLevel("ERROR")
    quiet_keras.done = True
    return keras


def gpu_info() -> dict | None:
    """{'name': ..., 'capability': (major, minor)} of the first GPU the backend sees, or None."""
    with quiet_native_logs():
        return _gpu_info()


def _gpu_info() -> dict | None:
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if not gpus:
                return None
            details = tf.config.experimental.get_device_details(gpus[0])
            return {
                "name": details.get("device_name", "GPU"),
                "capability": tuple(details.get("compute_capability", (0, 0))),
            }
        if backend == "jax":
            import jax

            devs = [d for d in jax.devices() if d.platform == "gpu"]
            if not devs:
                return None
            cap = getattr(devs[0], "compute_capability", "0.0")
            major, minor = (int(p) for p in str(cap).split(".")[:2])
            return {"name": devs[0].device_kind, "capability": (major, minor)}
        if backend == "torch":
            import torch

            if not torch.cuda.is_available():
                return None
            return {"name": torch.cuda.get_device_name(0), "capability": tuple(torch.cuda.get_device_capability(0))}
    except Exception:  # a broken driver is "no GPU" here; the backend says more when used
        return None
    return None


def choose_precision(mode: str = "auto", gpu: dict | None = None) -> str:
    """The dtype policy for training: auto = mixed precision on a GPU (bfloat16 from Ampere on), float32 on CPU."""
    if mode not in PRECISIONS:
        raise UsageError(f"unknown precision {mode!r}: use one of {', '.join(PRECISIONS)}")
    if mode != "auto":
        return mode
    if gpu is None:
        return "float32"
    return "mixed_bfloat16" if gpu["capability"] >= (8, 0) else "mixed_float16"


def _recurrent_layers(model) -> list:
    from keras import layers

    found = []
    for layer in model.layers:
        if isinstance(layer, layers.Bidirectional):
            found += [layer.forward_layer, layer.backward_layer]
        elif isinstance(layer, (layers.LSTM, layers.GRU)):
            found.append(layer)
    return found


def _blockers(layer) -> list[str]:
    import keras

    cell, problems = layer.cell, []
    if cell.activation is not keras.activations.tanh or cell.recurrent_activation is not keras.activations.sigmoid:
        problems.append(f"{layer.name}: activations not tanh/sigmoid")
    if cell.recurrent_dropout:
        problems.append(f"{layer.name}: recurrent dropout")
    if layer.unroll:
        problems.append(f"{layer.name}: unrolled")
    if not cell.use_bias:
        problems.append(f"{layer.name}: no bias")
    if getattr(layer, "use_cudnn", "auto") is False:
        problems.append(f"{layer.name}: use_cudnn=False")
    if isinstance(layer, keras.layers.GRU) and not cell.reset_after:
        problems.append(f"{layer.name}: reset_after=False")
    return problems


def cudnn_report(model, gpu: dict | None = None) -> str:
    """One line: is the fused cuDNN kernel usable for every LSTM/GRU of `model`, and if not, why."""
    import keras

    backend = keras.backend.backend()
    rnns = _recurrent_layers(model)
    problems = [p for layer in rnns for p in _blockers(layer)]
    # No layer here makes a Keras mask (padding is handled by attention masks and loss weights),
    # so no recurrent layer is masked (cuDNN cannot take one in Keras 3).
    where = f"{backend} on {gpu['name']}" if gpu else f"{backend} on CPU"
    if not rnns:
        return f"RNN: no recurrent layers in this network ({where})"
    if gpu is None:
        return f"RNN: fused cuDNN kernel not in use ({where}: no GPU visible); {len(rnns)} recurrent layers run the generic loop"
    if problems:
        return f"RNN: fused cuDNN kernel not in use ({where}): " + "; ".join(problems)
    if backend == "jax":
        try:
            import jax.experimental.rnn  # noqa: F401
        except ImportError:
            return f"RNN: fused cuDNN kernel not in use ({where}: jax.experimental.rnn missing)"
    return (
        f"RNN: fused cuDNN kernel in use ({where}; {len(rnns)} recurrent layers: tanh/sigmoid, "
        "no recurrent dropout, no mask, not unrolled)"
    )
