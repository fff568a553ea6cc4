"""The Keras callbacks of `nocpipe train`, and the two helpers beside them (Ctrl-C, curves).

    Watch        counts steps; stops after the running step on Ctrl-C or at the time budget;
                 finds the first NaN loss (one step late, so no device sync per step)
    StepReport   within an epoch: a bar on a terminal; in a log, a line at least every
                 HEARTBEAT_S seconds (step, pairs/s, running loss); nothing when quiet
    EpochEnd     at every epoch end (or a stop inside one): the history row, model.keras
                 when the bits/char is the best so far, curves, the checkpoint, one line
    BudgetDecay  --lr-decay: the learning rate falls linearly over the time budget
    Stop         the SIGINT handler: once, stop after this step; twice, abort
    Plotter      draws curves.png on a worker thread

Keras's own progress output is off (`fit(verbose=0)`): these lines replace it, so a log
holds each fact once. Imported only once Keras is needed.
"""

from __future__ import annotations

import math
import queue
import signal
import threading
import time
from dataclasses import dataclass, field

import keras
from keras import ops

from .modeldir import CheckpointState, ModelDir
from .models import variable_value
from .reporter import HEARTBEAT_S, Reporter

#: The least time between two updates of a terminal bar's loss (reading it waits for the device).
BAR_REFRESH_S = 1.0


@dataclass
class Progress:
    """Where the run stands; EpochEnd moves it, the stage reads it when a fit returns."""

    epoch: int  # whole epochs done
    step: int  # steps into the next epoch
    best_loss: float | None
    best_epoch: int | None
    history: list[dict] = field(default_factory=list)
    optimizer: str = ""
    nan_at: tuple[int, int] | None = None  # (epoch index, step) of the first NaN loss


@dataclass(frozen=True)
class EpochWork:
    """What EpochEnd needs besides the Progress: the model, where it goes, and how to say it."""

    folder: ModelDir
    inference_copy: object  # model -> its float32 uncompiled twin (pipeline.models.inference_copy)
    batch_size: int
    steps_per_epoch: int
    epochs: int
    seed: int
    fingerprint: str
    plotter: "Plotter"
    reporter: Reporter


def _value(x) -> float:
    return float(ops.convert_to_numpy(x))


def fmt_loss(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.4f}"


class Stop:
    """SIGINT once: finish the running step, checkpoint, exit. SIGINT twice: abort at once."""

    def __init__(self, reporter: Reporter):
        self.requested = False
        self._reporter = reporter
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self._reporter.info("Ctrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to abort)")

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


class Watch(keras.callbacks.Callback):
    """Counts steps, stops on Ctrl-C or at the deadline (after the running step), finds a NaN loss."""

    def __init__(self, stop: Stop, deadline: float | None = None, clock=time.monotonic):
        super().__init__()
        self.stop, self.deadline, self.clock = stop, deadline, clock
        self.epoch_steps = 0  # steps in the running epoch
        self.nan_step: int | None = None
        self.reason: str | None = None  # "interrupt" or "time"
        self._pending = None

    def _check(self):
        if self._pending is not None and self.nan_step is None:
            step, loss = self._pending
            if not math.isfinite(_value(loss)):
                self.nan_step = step
                self.model.stop_training = True
        self._pending = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.epoch_steps += 1
        self._check()  # the previous step's loss: finished by now, reading it costs no sync
        if logs and "loss" in logs:
            self._pending = (self.epoch_steps, logs["loss"])
        if self.stop.requested:
            self.reason = "interrupt"
            self.model.stop_training = True
        elif self.deadline is not None and self.clock() >= self.deadline:
            self.reason = "time"
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self._check()


class StepReport(keras.callbacks.Callback):
    """Progress inside an epoch. `first_step`: where a resumed epoch starts."""

    def __init__(self, reporter: Reporter, epochs: int, steps: int, batch_size: int, first_step: int = 0):
        super().__init__()
        self.reporter, self.epochs, self.steps, self.batch_size = reporter, epochs, steps, batch_size
        self.first_step = first_step
        self.terminal = reporter.is_terminal()
        self._bar = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.done = epoch, self.first_step
        self.t0 = self.last = time.monotonic()
        self.ran = 0
        if self.terminal:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.steps,
                initial=self.done,
                desc=f"epoch {epoch + 1}/{self.epochs}",
                unit="step",
                file=self.reporter.err,
                dynamic_ncols=True,
                leave=False,
            )

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        self.ran += 1
        now = time.monotonic()
        if self._bar is not None:
            self._bar.update(1)
            if now - self.last >= BAR_REFRESH_S and logs and "loss" in logs:
                self.last = now
                self._bar.set_postfix(loss=f"{_value(logs['loss']):.4f}", refresh=False)
        elif now - self.last >= HEARTBEAT_S:
            self.last = now
            rate = self.ran * self.batch_size / max(now - self.t0, 1e-9)
            loss = fmt_loss(_value(logs["loss"])) if logs and "loss" in logs else "n/a"
            self.reporter.info(
                f"epoch {self.epoch + 1}/{self.epochs}, step {self.done}/{self.steps}: "
                f"{rate:,.0f} pairs/s, running loss {loss}"
            )

    def on_epoch_end(self, epoch, logs=None):
        self.first_step = 0
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    on_train_end = on_epoch_end  # a stop inside an epoch: no bar left behind


class EpochEnd(keras.callbacks.Callback):
    """At every epoch end (or a stop inside one): the history row, model.keras when the
    bits/char (validation, else training) is the best so far, curves, the checkpoint, one line."""

    def __init__(self, net, work: EpochWork, progress: Progress, watch: Watch):
        super().__init__()
        self.net, self.work, self.run, self.watch = net, work, progress, watch
        self.first_step = progress.step
        self.t0 = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        run, work = self.run, self.work
        if self.watch.nan_step is not None:
            run.nan_at = (epoch, self.first_step + self.watch.nan_step)
            return
        done = self.first_step + self.watch.epoch_steps
        row = self._row(epoch, logs or {}, done - self.first_step, time.perf_counter() - self.t0)
        run.history.append(row)
        score = row["val_bpc"] if row["val_bpc"] is not None else row["bpc"]
        is_best = score is not None and math.isfinite(score) and (run.best_loss is None or score < run.best_loss)
        if is_best:
            run.best_loss, run.best_epoch = float(score), epoch + 1
            work.folder.save_model(work.inference_copy(self.net))
        work.folder.write_history(run.history)
        work.plotter.submit(run.history)
        run.epoch, run.step = (epoch + 1, 0) if done >= work.steps_per_epoch else (epoch, done)
        self.first_step = 0
        self._checkpoint()
        part = f" (stopped at step {done}/{work.steps_per_epoch})" if run.step else ""
        work.reporter.info(
            f"epoch {epoch + 1}/{work.epochs}{part}: {row['samples']:,} pairs in {row['seconds']:.1f}s "
            f"({row['samples_per_s'] or 0:,.0f} pairs/s), loss {fmt_loss(row['loss'])}, "
            f"bits/char {fmt_loss(row['bpc'])}, val loss {fmt_loss(row['val_loss'])}, "
            f"val bits/char {fmt_loss(row['val_bpc'])}, val acc {fmt_loss(row['val_acc'])}"
            + (" (best)" if is_best else "")
        )

    def _row(self, epoch: int, logs: dict, ran: int, seconds: float) -> dict:
        samples = ran * self.work.batch_size
        figures = {k: (_value(logs[k]) if k in logs else None) for k in ("loss", "acc", "bpc")}
        figures.update({k: (_value(logs[k]) if k in logs else None) for k in ("val_loss", "val_acc", "val_bpc")})
        return {
            "epoch": epoch + 1,
            "optimizer": self.run.optimizer,
            "learning_rate": float(variable_value(self.net.optimizer.learning_rate)),
            "steps": ran,
            "samples": samples,
            "seconds": round(seconds, 3),
            "samples_per_s": round(samples / seconds, 1) if seconds > 0 else None,
            **figures,
            "resumed_at_step": self.first_step or "",
        }

    def _checkpoint(self) -> None:
        run, work, net = self.run, self.work, self.net
        state = CheckpointState(
            epoch=run.epoch,
            step=run.step,
            steps_per_epoch=work.steps_per_epoch,
            batch_size=work.batch_size,
            optimizer=run.optimizer,
            optimizer_iterations=int(variable_value(net.optimizer.iterations)),
            seed=work.seed,
            fingerprint=work.fingerprint,
            best_loss=run.best_loss,
            best_epoch=run.best_epoch,
        )
        weights = [variable_value(w) for w in net.weights]
        work.folder.save_checkpoint(weights, [variable_value(v) for v in net.optimizer.variables], state)


class BudgetDecay(keras.callbacks.Callback):
    """Budgeted training (Li, Yumer and Ramanan, ICLR 2020): with a fixed time budget, a learning
    rate that falls linearly to zero as the budget runs out ends at a lower loss than a constant
    one. Set at each epoch's start from the share of the budget left (Keras applies a rate set
    there on every backend); never below 2 % of the start value."""

    def __init__(self, base: float, deadline: float, budget: float, clock=time.monotonic):
        super().__init__()
        self.base, self.deadline, self.budget, self.clock = base, deadline, budget, clock

    def on_epoch_begin(self, epoch, logs=None):
        left = max(0.0, self.deadline - self.clock()) / self.budget
        self.model.optimizer.learning_rate = self.base * max(0.02, left)


class Plotter:
    """Draws curves.png on a worker thread (matplotlib imported there at start), so the
    picture costs the training loop nothing; close() waits for the last one."""

    def __init__(self, folder: ModelDir, title: str, reporter: Reporter):
        self._queue: queue.Queue = queue.Queue()
        self._folder, self._title, self._reporter = folder, title, reporter
        self._thread = threading.Thread(target=self._run, name="nocpipe-curves", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            import matplotlib.backends.backend_agg  # noqa: F401  (the import is most of the cost)
            import matplotlib.figure  # noqa: F401
        except ImportError:
            pass
        while True:
            rows = self._queue.get()
            if rows is None:
                return
            if not self._queue.empty():  # a newer history is waiting: draw that one
                continue
            try:
                self._folder.plot_curves(rows, title=self._title)
            except Exception as exc:  # a picture must never stop training
                self._reporter.warn(f"could not draw {self._folder.curves_path.name}: {exc}")

    def submit(self, rows: list[dict]) -> None:
        self._queue.put([dict(r) for r in rows])

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
