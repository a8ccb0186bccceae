"""The runner: one thread that owns the device and runs the queued jobs one at a time, through the command.

A job is ``neural-style`` run in this process on the job's command line (:mod:`neural_style.serve.settings`), so
TensorFlow and the network stay loaded from one job to the next. The run reports every record to the job's hooks,
which keep the live status, publish progress and preview events, save the run's state every ``save_seconds``
(besides its checkpoints) and stop it at the next step boundary when the job is cancelled or the server stops. A
job a stop or crash interrupted is queued again and continues from its saved state (``--resume``); a job that
fails ends with the command's one-line message and the runner goes on with the next.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from neural_style.serve import settings
from neural_style.serve.events import Hub
from neural_style.serve.folders import DataDir
from neural_style.serve.store import Job, JobStore, pairs

__all__ = ["Live", "Runner", "job_files"]


@dataclasses.dataclass
class Live:
    """What the running job has reported since its record was last written."""

    iteration: int = 0
    iterations: int = 0
    losses: dict[str, Any] | None = None  # of the saved image (a sweep: by candidate)
    current: dict[str, list[float | None]] | None = None  # the terms the last step computed, one value per image
    time_left: float | None = None
    preview: bytes | None = None
    preview_version: int = 0


@dataclasses.dataclass
class _Active:
    job: Job
    live: Live
    hooks: _JobHooks | None = None
    cancelled: bool = False


def job_files(folder: Path, inputs: dict[str, Any]) -> settings.JobFiles:
    """The paths of the inputs (``{"content", "styles", "masks", "initial"}``: names in ``folder/inputs``) and the
    output folder (``folder/out``) of a job in ``folder``."""
    where = folder / "inputs"
    return settings.JobFiles(
        content=str(where / inputs["content"]),
        styles=tuple(str(where / name) for name in inputs["styles"]),
        masks=tuple(str(where / name) for name in inputs.get("masks") or ()),
        initial=None if not inputs.get("initial") else str(where / inputs["initial"]),
        out_dir=str(folder / "out"),
    )


def png(image: Any) -> bytes:
    """An RGB array (0..255) or a PIL image as PNG bytes."""
    from PIL import Image

    from neural_style.image_io import to_uint8

    if not isinstance(image, Image.Image):
        image = Image.fromarray(to_uint8(image), "RGB")  # a run diverging to NaN shows as black until it stops
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _number(value: Any) -> float | None:
    """A loss term for JSON: None where it is NaN or infinite (a run whose loss stopped being finite)."""
    number = float(value)
    return number if np.isfinite(number) else None


class _ThreadOutput:
    """``sys.stdout`` or ``sys.stderr`` for a server: what the runner's thread writes while it runs a job goes to that
    job's log; what any other thread writes goes where it went before (the server's own output)."""

    def __init__(self, default: TextIO) -> None:
        self.default = default
        self._local = threading.local()

    def _target(self) -> TextIO:
        stream: TextIO | None = getattr(self._local, "stream", None)
        return self.default if stream is None else stream

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)

    @contextlib.contextmanager
    def to(self, stream: TextIO) -> Iterator[None]:
        """Sends this thread's writes to ``stream`` for the duration."""
        self._local.stream = stream
        try:
            yield
        finally:
            self._local.stream = None


class Runner:
    """Runs the queued jobs of ``store`` one at a time on the network file ``network``.

    Args:
        store: the job records.
        hub: where each job's events are published.
        data: the data directory.
        network: the network file every job uses.
        preview_seconds: a new preview at most this often (and at checkpoints and the end).
        save_seconds: a single run saves its state at least this often, so a crash loses no more.
        nice: how much lower the priority of the jobs' threads is than the server's (Linux), so that requests are
            answered promptly while a job keeps the cores busy.
    """

    def __init__(
        self,
        store: JobStore,
        hub: Hub,
        data: DataDir,
        network: str,
        *,
        preview_seconds: float = 1.0,
        save_seconds: float = 15.0,
        nice: int = 10,
    ) -> None:
        self.store, self.hub, self.data, self.network = store, hub, data, network
        self.preview_seconds, self.save_seconds, self.nice = preview_seconds, save_seconds, nice
        self.prepare = threading.Lock()  # held while a run reads its inputs, and by the checks of new jobs
        self._lock = threading.Lock()  # guards _active against cancel and stop
        self._active: _Active | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._outputs: dict[str, _ThreadOutput] = {}
        # The last job's run, restarted by the next job of the same settings (any images, sizes and iterations)
        # instead of building the network and tracing its steps again; used by the runner's thread alone.
        self._kept_run: Any = None

    # ------------------------------------------------------------------------------------------------ control

    def start(self) -> None:
        """Queues again the jobs a stop or crash interrupted and starts the thread, which starts TensorFlow and loads
        the network before it returns (so the first job does not wait for them)."""
        for job_id in self.store.recover():
            self.hub.publish(job_id, "state", {"state": "queued"})
        self.data.clean(self.store.ids())
        self._outputs = {name: _ThreadOutput(getattr(sys, name)) for name in ("stdout", "stderr")}
        for name, output in self._outputs.items():
            setattr(sys, name, output)
        warm = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._main, args=(warm, failure), name="neural-style-runner", daemon=True
        )
        self._thread.start()
        warm.wait()
        if failure:
            raise failure[0]

    def _warm_up(self) -> None:
        """In the runner's thread, at a lower priority: TensorFlow started (its thread pools made here, so they share
        the lower priority: the server's requests go first), and the network loaded."""
        from neural_style.matconvnet import default_cache_dir, load_vgg

        with contextlib.suppress(OSError, AttributeError):  # Linux: one thread's priority; elsewhere: as it is
            thread = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + self.nice)
        settings.start_tensorflow()  # before TensorFlow's import: it holds back TensorFlow's start-up log
        import tensorflow as tf

        tf.constant(0.0).numpy()  # the eager context and its thread pools
        load_vgg(self.network, cache_dir=default_cache_dir())

    def wake(self) -> None:
        """A job was queued."""
        self._wake.set()

    def stop(self, timeout: float = 60.0) -> None:
        """Stops the running job at its next step boundary (saving its state: it continues at the next start) and
        ends the thread."""
        self._stopping.set()
        with self._lock:
            if self._active is not None and self._active.hooks is not None:
                self._active.hooks.interruption.reason = "terminated"
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for name, output in self._outputs.items():
            if getattr(sys, name) is output:
                setattr(sys, name, output.default)

    def cancel(self, job_id: str) -> bool:
        """Cancels a queued or running job; False when it is neither."""
        with self._lock:
            if self.store.cancel_queued(job_id):
                self.hub.publish(job_id, "state", {"state": "cancelled"})
                return True
            active = self._active
            if active is None or active.job.id != job_id:
                return False
            active.cancelled = True
            if active.hooks is not None:
                active.hooks.interruption.reason = "cancelled"
            self.store.update(job_id, cancel=True)
            active.job.cancel = True
        return True

    def live(self, job_id: str) -> Live | None:
        """The live status of ``job_id`` while it runs."""
        active = self._active
        return active.live if active is not None and active.job.id == job_id else None

    # ------------------------------------------------------------------------------------------------ running

    def _main(self, warm: threading.Event, failure: list[BaseException]) -> None:
        try:
            self._warm_up()
        except BaseException as e:  # noqa: BLE001 - handed to start()
            failure.append(e)
            return
        finally:
            warm.set()
        while not self._stopping.is_set():
            with self._lock:
                job = self.store.claim_next()
                self._active = None if job is None else _Active(job, Live(iterations=job.iterations))
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                self._run(self._active)  # type: ignore[arg-type]
            except Exception as e:  # noqa: BLE001 - e.g. the job's folder is gone; the server goes on
                error = f"the job could not run: {type(e).__name__}: {' '.join(str(e).split())}"
                self.store.update(job.id, state="failed", error=error, finished=time.time())
                self.hub.publish(job.id, "state", {"state": "failed", "error": error})
            finally:
                with self._lock:
                    self._active = None

    def _run(self, active: _Active) -> None:
        job = active.job
        self.hub.publish(job.id, "state", {"state": "running", "attempt": job.attempts})
        files = job_files(self.data.job(job.id), job.inputs)
        hooks = _JobHooks(self, active, self._kept_run)
        self._kept_run = None  # the job holds it now; it leaves its own run (or none) in hooks.kept_run
        with self._lock:
            active.hooks = hooks
            if active.cancelled or self._stopping.is_set():
                hooks.interruption.reason = "cancelled" if active.cancelled else "terminated"
        state, error = "done", None
        self.prepare.acquire()
        hooks.preparing = True
        try:
            with open(self.data.log(job.id), "a", encoding="utf-8", buffering=1) as log:  # by line: kill -9 loses none
                try:
                    arguments, _ = settings.job_arguments(
                        settings.setting_arguments(list(pairs(job.settings))), files, self.network
                    )
                    print(f"--- attempt {job.attempts}: {' '.join(arguments)}", file=log, flush=True)
                    for name, output in self._outputs.items():  # another owner may have replaced the stream
                        if getattr(sys, name) is not output:
                            output.default = getattr(sys, name)
                            setattr(sys, name, output)
                    with self._outputs["stdout"].to(log), self._outputs["stderr"].to(log):
                        folder = self.data.job(job.id)
                        settings.run(arguments, hooks, hide=(str(folder / "inputs"), str(folder)))
                except settings.Stopped:
                    state = "cancelled" if active.cancelled else "queued"
                except settings.CommandError as e:
                    state, error = "failed", e.message
                except Exception as e:  # noqa: BLE001 - a job's failure must not stop the server
                    traceback.print_exc(file=log)
                    state, error = "failed", f"the run failed: {type(e).__name__}: {' '.join(str(e).split())}"
        finally:
            hooks.ready()  # releases the inputs' lock if the run ended before its first step
            self._kept_run = hooks.kept_run
        if state == "cancelled":
            settings.discard_saved_state(files.output)  # nothing to resume
        live = active.live
        fields: dict[str, Any] = {"state": state, "iteration": live.iteration, "losses": live.losses}
        if live.iterations:
            fields["iterations"] = live.iterations
        if state != "queued":
            fields.update(finished=time.time(), error=error, files=self.data.results(job.id))
        self.store.update(job.id, **fields)
        self.hub.publish(job.id, "state", {"state": state, "error": error})


class _JobHooks(settings.RunHooks):
    """The running job's side of the command's run: live status, events, previews, state saves."""

    def __init__(self, runner: Runner, active: _Active, kept_run: Any = None) -> None:
        super().__init__(kept_run)
        self.runner, self.active = runner, active
        self.job = active.job
        self.preparing = False
        self._last_preview = -math.inf
        self._last_save = self._last_write = time.monotonic()

    def ready(self) -> None:
        if self.preparing:
            self.preparing = False
            self.runner.prepare.release()

    def save_due(self) -> bool:
        now = time.monotonic()
        if now - self._last_save < self.runner.save_seconds:
            return False
        self._last_save = now
        return True

    def record(self, done: int, total: int, record: Any, run: Any, *, first: int = 0, remaining: float = 0.0) -> None:
        live, labels = self.active.live, self.job.labels
        live.iteration, live.iterations = done, total
        live.time_left = remaining if done > 0 else None
        event: dict[str, Any] = {"iteration": done, "iterations": total, "time_left": live.time_left}
        terms = record.losses if record.losses is not None else record.step_losses
        if terms is not None:
            live.current = {key: [_number(v) for v in np.asarray(value).ravel()] for key, value in terms.items()}
            event["losses"] = live.current
        if record.image_losses is not None:
            saved = {key: np.asarray(value).ravel() for key, value in record.image_losses.items()}
            if labels is None:
                live.losses = {key: _number(value[0]) for key, value in saved.items()}
            else:
                live.losses = dict(live.losses or {})
                for i in range(len(saved["total"])):
                    live.losses[labels[first + i]] = {key: _number(value[i]) for key, value in saved.items()}
            event["image_losses"] = live.losses
        if first:
            event["first"] = first
        self.runner.hub.publish(self.job.id, "progress", event)
        self._preview(done, record, run, first)
        now = time.monotonic()
        if record.final or now - self._last_write >= 2.0:
            self._last_write = now
            fields: dict[str, Any] = {"iteration": done, "iterations": total, "losses": live.losses}
            if labels is not None and record.final:
                fields["files"] = self.runner.data.results(self.job.id)
            self.runner.store.update(self.job.id, **fields)

    def _preview(self, done: int, record: Any, run: Any, first: int) -> None:
        now = time.monotonic()
        if record.images is None and now - self._last_preview < self.runner.preview_seconds:
            return
        images = record.images
        if images is None and run is not None:
            images = run.current_images()
        if images is None:
            return
        self._last_preview = now
        labels = self.job.labels
        if labels is None:
            data = png(images[0])
        else:
            data = png(settings.contact_sheet(list(images), labels[first : first + len(images)]))
        from neural_style.image_io import atomic_write

        live = self.active.live
        live.preview = data
        live.preview_version += 1
        atomic_write(self.runner.data.preview(self.job.id), data)
        self.runner.hub.publish(self.job.id, "preview", {"iteration": done, "version": live.preview_version})
