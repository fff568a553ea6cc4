"""`train --distribute`: data-parallel training with the backend's own engine.

    JAX         keras.distribution.DataParallel over every device Keras lists (all the
                GPUs of this host; with KERAS_DISTRIBUTION_JOB_ADDRESSES,
                KERAS_DISTRIBUTION_NUM_PROCESSES and KERAS_DISTRIBUTION_PROCESS_ID set,
                every device of every host, through jax.distributed.initialize)
    TensorFlow  tf.distribute.MirroredStrategy over this host's GPUs (its logical CPU
                devices when it has no GPU); one host only
    other       an error naming the two that work

Each step sees one global batch (`--batch-size`) split evenly over the devices, so
the loss, the gradients and the data order are those of a one-device run at the same
batch; only the floating-point reduction order differs. A global batch that does not
divide by the device count is refused up front (Keras would fail deep inside with a
ZeroDivisionError or a sharding error). On several hosts every process computes the
same global batch from (seed, position) and keeps only its own rows (`local_rows`),
so no host needs the others' data and exact resume still holds.

Not supported: MultiWorkerMirroredStrategy (several TensorFlow hosts) and the
PyTorch backend; model parallelism (the networks fit one device many times over).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

from .errors import UsageError

#: The variables keras.distribution.initialize reads (a launcher sets them on every host).
HOST_ENV = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES", "KERAS_DISTRIBUTION_PROCESS_ID")


@dataclass
class Plan:
    """How one `train` process takes part: its devices, its rows of each batch, its scope."""

    backend: str
    devices: int = 1  # replicas over all hosts
    processes: int = 1  # hosts (JAX processes) taking part
    process_id: int = 0
    device_names: list[str] = field(default_factory=list)
    strategy: object = None  # tf.distribute.MirroredStrategy on TensorFlow
    distribution: object = None  # keras.distribution.DataParallel on JAX

    @property
    def enabled(self) -> bool:
        return self.strategy is not None or self.distribution is not None

    @property
    def chief(self) -> bool:
        """The process that writes the model folder (the others train in step with it)."""
        return self.process_id == 0

    def scope(self):
        """Build and compile the model inside this (MirroredStrategy needs it; JAX does not)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def local_batch(self, global_batch: int) -> int:
        return global_batch // self.processes

    def local_rows(self, batch):
        """This process's rows of a global batch, any nesting of arrays (all of them on one host)."""
        if self.processes == 1:
            return batch
        return _rows(batch, self.process_id, self.processes)

    def local_batches(self, dataset):
        """A PyDataset of global batches -> one of this process's rows (itself on one host)."""
        if self.processes == 1:
            return dataset
        import keras

        plan = self

        class LocalRows(keras.utils.PyDataset):
            def __init__(self):
                super().__init__(workers=1, use_multiprocessing=False)

            @property
            def num_batches(self):
                return dataset.num_batches

            def __getitem__(self, index):
                return plan.local_rows(dataset[index])

        return LocalRows()

    def whole_batches(self, *arrays):
        """Arrays (or tuples of them, or None) cut to a multiple of the device count: a last
        evaluation batch must split evenly too (at most devices - 1 rows are left out)."""
        if self.devices <= 1:
            return arrays
        return tuple(_cut(a, self.devices) for a in arrays)

    def describe(self) -> str:
        if not self.enabled:
            return "one device"
        engine = "DataParallel" if self.distribution is not None else "MirroredStrategy"
        hosts = f" on {self.processes} hosts" if self.processes > 1 else ""
        return f"{engine} over {self.devices} device(s){hosts}: {', '.join(self.device_names)}"

    def close(self) -> None:
        """Leave Keras as it was (tests and benchmarks train again in the same process)."""
        if self.distribution is not None:
            import keras

            keras.distribution.set_distribution(None)


def _rows(batch, part: int, parts: int):
    if batch is None:
        return None
    if isinstance(batch, (tuple, list)):
        return type(batch)(_rows(b, part, parts) for b in batch)
    n = len(batch) // parts
    return batch[part * n : (part + 1) * n]


def _cut(arrays, multiple: int):
    if arrays is None:
        return None
    if isinstance(arrays, (tuple, list)):
        return type(arrays)(_cut(a, multiple) for a in arrays)
    return arrays[: len(arrays) // multiple * multiple]


def check_batch(global_batch: int, devices: int) -> None:
    """A global batch must split evenly: Keras does not pad the last device's share."""
    if devices > 1 and global_batch % devices:
        lo = global_batch // devices * devices
        raise UsageError(
            f"--batch-size {global_batch} does not divide over {devices} devices: "
            f"use a multiple of {devices}, such as {lo or devices} or {lo + devices}"
        )


def _env_hosts() -> bool:
    return all(os.environ.get(k) for k in HOST_ENV)


def setup(global_batch: int, enabled: bool = True) -> Plan:
    """Choose and install the distribution for this backend; call before the model is built."""
    import keras

    backend = keras.backend.backend()
    if not enabled:
        return Plan(backend)
    if backend == "jax":
        return _setup_jax(global_batch)
    if backend == "tensorflow":
        return _setup_tf(global_batch)
    raise UsageError(
        f"--distribute works with KERAS_BACKEND=jax (several devices or hosts) or tensorflow "
        f"(several devices on one host), not {backend}"
    )


def _setup_jax(global_batch: int) -> Plan:
    import jax
    import keras

    processes, process_id = 1, 0
    if _env_hosts():
        if jax.process_count() == 1 and int(os.environ["KERAS_DISTRIBUTION_NUM_PROCESSES"]) > 1:
            keras.distribution.initialize()  # jax.distributed.initialize with the coordinator's address
        processes, process_id = jax.process_count(), jax.process_index()
    devices = keras.distribution.list_devices()
    check_batch(global_batch, len(devices))
    if processes > 1 and global_batch % processes:
        raise UsageError(f"--batch-size {global_batch} does not divide over {processes} hosts")
    dp = keras.distribution.DataParallel(devices=devices)
    keras.distribution.set_distribution(dp)
    return Plan(
        "jax",
        devices=len(devices),
        processes=processes,
        process_id=process_id,
        device_names=[str(d) for d in devices],
        distribution=dp,
    )


def _setup_tf(global_batch: int) -> Plan:
    import keras
    import tensorflow as tf

    version = tuple(int(p) for p in keras.__version__.split(".")[:2] if p.isdigit())
    if (3, 7) <= version < (3, 10):
        raise UsageError(
            f"--distribute on TensorFlow needs Keras 3.10 or later (Keras {keras.__version__} gives NaN "
            "losses under MirroredStrategy): pip install -U keras, or use KERAS_BACKEND=jax"
        )

    if _env_hosts() and int(os.environ["KERAS_DISTRIBUTION_NUM_PROCESSES"]) > 1:
        raise UsageError(
            "--distribute on several hosts needs KERAS_BACKEND=jax: Keras 3 does not support "
            "TensorFlow's MultiWorkerMirroredStrategy"
        )
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    check_batch(global_batch, len(devices))
    strategy = tf.distribute.MirroredStrategy(devices=devices)
    return Plan("tensorflow", devices=strategy.num_replicas_in_sync, device_names=devices, strategy=strategy)
