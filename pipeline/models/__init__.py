"""The networks of nocpipe, one module per job:

    config     ModelConfig: every hyper-parameter, saved in config.json (no Keras)
    layers     padding masks and position vectors from Keras layers; the legacy custom layers
    builders   one builder per architecture (seed, simple, dense-attention, attention, transformer)
    steps      an autoregressive network split into encoder and one-position step (decoding)
    training   optimizers, compile, the masked accuracy and bits/char metrics
    saving     model.keras: the inference copy, loading it, checking it against its config
    hardware   TensorFlow's start-up noise, the GPU, the training precision, the cuDNN report

`from pipeline.models import X` imports only the module that defines X: ModelConfig and the
names of `config` come without Keras, and importing this package changes no logging (a command
that loads a network calls `quiet_keras()` for that).
"""

from __future__ import annotations

import importlib

_WHERE = {
    "config": (
        "ModelConfig ARCHS PARALLEL_ARCHS AUTOREGRESSIVE_ARCHS OPTIMIZERS POSITIONS GRAPH_VERSION GRAPH_VERSIONS"
    ),
    "layers": "PACKAGE OneHot PaddingMask PositionEmbedding LEGACY_OBJECTS padding_mask position_ids sinusoids",
    "builders": "BUILDERS build_model build_seed build_simple build_dense_attention build_attention build_transformer",
    "steps": "decoding_parts",
    "training": "MaskedAccuracy BitsPerChar METRIC_OBJECTS make_optimizer compile_model variable_value",
    "saving": "CUSTOM_OBJECTS inference_copy load_inference_model load_for_config mismatch",
    "hardware": "PRECISIONS quiet_keras quiet_native_logs gpu_info choose_precision cudnn_report",
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names.split()}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
