"""Running a command on several machines with ``tf.distribute.MultiWorkerMirroredStrategy``, set up by ``TF_CONFIG``.

TensorFlow's strategy does the work: it starts a server in every process, all-reduces the training gradients and
all-gathers a sweep's images. What the commands add here is what a user needs around it:

* the flags ``--worker_timeout`` (both commands) and ``--strategy`` (``neural-style-train``);
* ``TF_CONFIG`` checked before TensorFlow is imported (:func:`neural_style.cluster.parse_tf_config`);
* a deadline on joining the cluster: TensorFlow waits for missing workers forever, so a watchdog ends the process
  with one line when the others are not there within ``--worker_timeout``;
* a check that every worker runs with the same settings (:func:`check_agreement`: a hash of each setting,
  all-gathered), since workers that disagree would train or sweep different things without noticing;
* a worker that fails or goes away mid-run (:func:`lost_workers`): the collective error TensorFlow raises on the
  others becomes one line, and a collective that waits longer than ``--worker_timeout`` fails instead of hanging.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from absl import flags

from neural_style.cluster import TF_CONFIG_ENV, Cluster, parse_tf_config
from neural_style.errors import NeuralStyleError

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "STRATEGIES",
    "check_agreement",
    "chief_value",
    "cluster_of",
    "define_flags",
    "lost_workers",
    "make_strategy",
    "multiworker_strategy",
]

STRATEGIES = ("auto", "multiworker", "mirrored", "none")
# Settings compared between the workers at most (a hash each; the whole set is hashed too).
_SETTINGS_COMPARED = 127


def define_flags(fv: flags.FlagValues, module: str, *, strategy: bool) -> None:
    """Defines ``--worker_timeout`` (and ``--strategy`` when asked) on ``fv`` for the command module ``module``."""
    if strategy:
        flags.DEFINE_enum(
            "strategy",
            "auto",
            list(STRATEGIES),
            "How to spread training: multiworker (tf.distribute.MultiWorkerMirroredStrategy across the machines "
            "TF_CONFIG lists), mirrored (MirroredStrategy over this machine's GPUs), none (one device). auto: "
            "multiworker when TF_CONFIG names two or more tasks, else mirrored with two or more GPUs, else none.",
            flag_values=fv,
            module_name=module,
        )
    flags.DEFINE_float(
        "worker_timeout",
        60.0,
        "Multi-worker runs (TF_CONFIG): seconds to wait for the other workers to join, and for any one exchange "
        "between them, before giving up with an error.",
        flag_values=fv,
        module_name=module,
    )


def cluster_of(fv: flags.FlagValues, choice: str = "auto") -> Cluster | None:
    """The cluster a run spreads over, from ``TF_CONFIG``, checked before TensorFlow is imported; None for this
    process alone.

    Args:
        fv: the command's flags (``--worker_timeout``).
        choice: the ``--strategy`` asked for: ``auto`` uses ``TF_CONFIG`` when it names two or more tasks,
            ``multiworker`` needs it (one task is allowed), the others ignore it.

    Raises:
        NeuralStyleError: a malformed ``TF_CONFIG``, none with ``multiworker``, or a bad ``--worker_timeout``.
    """
    if not fv.worker_timeout > 0:
        raise NeuralStyleError(f"--worker_timeout is {fv.worker_timeout}; give the seconds to wait, more than 0")
    if choice not in ("auto", "multiworker"):
        return None
    cluster = parse_tf_config(os.environ.get(TF_CONFIG_ENV))
    if choice == "multiworker" and cluster is None:
        raise NeuralStyleError(
            f"--strategy multiworker needs {TF_CONFIG_ENV}, which lists the workers (see the README: running across "
            "machines); or choose --strategy auto, mirrored or none"
        )
    if choice == "auto" and cluster is not None and cluster.size < 2:
        return None
    if cluster is not None and os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "2":  # the commands' default
        # A worker that goes away makes TensorFlow log errors of its own; the command says it in one line.
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return cluster


# Run by the watchdog of _deadline: silent when its input ends empty (the block finished), else the one line.
_WATCHDOG = "import sys\nif sys.stdin.buffer.read():\n    sys.stderr.write(sys.argv[1] + '\\n')\n"


@contextlib.contextmanager
def _deadline(seconds: float, message: str, prog: str) -> Iterator[None]:
    """Ends the process with ``PROG: error: message`` on stderr and exit status 1 unless the block is done within
    ``seconds``.

    TensorFlow waits for missing workers without a limit, in a call that holds the interpreter's lock, so no Python
    thread or signal handler can run meanwhile. :mod:`faulthandler`'s timer runs in C: when it fires it writes
    Python's stacks into a pipe and ends the process with status 1; a small process reading the pipe prints the
    message instead of them. Nothing has been written when this applies, so ending the process at once loses nothing.
    """
    import faulthandler
    import subprocess

    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # the process may end without flushing them
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, f"{prog}: error: {message}"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    assert watchdog.stdin is not None
    faulthandler.dump_traceback_later(seconds, exit=True, file=watchdog.stdin)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        watchdog.stdin.close()
        watchdog.wait()


def multiworker_strategy(cluster: Cluster, timeout: float, prog: str) -> tf.distribute.Strategy:
    """Joins the cluster: ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``, every collective limited to
    ``timeout`` seconds. Call it right after TensorFlow is imported, before any other TensorFlow work (the strategy
    configures the runtime when it starts).

    The process ends with one error line (exit 1) when the other workers have not joined within ``timeout``.
    """
    import tensorflow as tf

    others = [cluster.task_name(rank) for rank in range(cluster.size) if rank != cluster.rank]
    message = (
        f"could not reach {', '.join(others)} within --worker_timeout {timeout:g} s; start every "
        f"worker {TF_CONFIG_ENV} lists, with its own task index, and check the addresses and ports"
    )
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout)
    with _deadline(timeout, message, prog):
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
            # The strategy may return before every worker is there; the first collective waits for them all.
            _all_gather(strategy, [0])
        except (RuntimeError, ValueError, tf.errors.OpError):
            raise NeuralStyleError(message, usage=False) from None
    return strategy


def make_strategy(choice: str, cluster: Cluster | None, timeout: float, prog: str) -> tf.distribute.Strategy | None:
    """The strategy of ``--strategy`` (``cluster`` from :func:`cluster_of`), or None for the default device."""
    import tensorflow as tf

    if cluster is not None:
        return multiworker_strategy(cluster, timeout, prog)
    gpus = tf.config.list_logical_devices("GPU")
    if choice == "mirrored" or (choice == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return None


def _all_gather(strategy: tf.distribute.Strategy, values: list[int]) -> list[list[int]]:
    """Every replica's ``values`` (int64), in replica order: this process's go to every replica it holds."""
    import tensorflow as tf

    row = tf.constant([values], tf.int64)

    @tf.function(autograph=False)
    def gather() -> tf.Tensor:
        return strategy.run(lambda: tf.distribute.get_replica_context().all_gather(row, axis=0))

    return strategy.experimental_local_results(gather())[0].numpy().tolist()


def chief_value(strategy: tf.distribute.Strategy, value: int) -> int:
    """The chief's ``value`` (an int64), on every worker (a collective: every worker calls it)."""
    return _all_gather(strategy, [value])[0][0]


def _digest(value: object) -> int:
    """A 63-bit hash of a JSON-serialisable value."""
    text = json.dumps(value, sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1


def check_agreement(
    strategy: tf.distribute.Strategy, cluster: Cluster, settings: Mapping[str, object], *, what: str = "settings"
) -> None:
    """Refuses to go on unless every worker has the same ``settings`` (a collective: every worker calls it).

    Each worker's hash of each setting is all-gathered and compared with the chief's.

    Raises:
        NeuralStyleError: naming the first setting that differs and the first worker that differs on it (usage).
    """
    keys = sorted(settings)[:_SETTINGS_COMPARED]
    mine = [_digest(dict(settings)), *(_digest(settings[key]) for key in keys)]
    mine += [0] * (_SETTINGS_COMPARED + 1 - len(mine))
    rows = _all_gather(strategy, mine)
    per_worker = len(rows) // cluster.size  # the replicas of a worker are consecutive
    for rank in range(1, cluster.size):
        row = rows[rank * per_worker]
        if row == rows[0]:
            continue
        differing = [key for i, key in enumerate(keys) if row[i + 1] != rows[0][i + 1]]
        name = differing[0] if differing else "the settings"
        raise NeuralStyleError(
            f"the workers disagree on {what}: {name} differs between {cluster.task_name(0)} and "
            f"{cluster.task_name(rank)}; start every worker with the same flags and files"
        )


# The errors TensorFlow's collectives raise when a peer fails, goes away or does not answer in time.
_PEER_ERRORS = ("UnavailableError", "DeadlineExceededError", "CancelledError", "AbortedError")


@contextlib.contextmanager
def lost_workers(cluster: Cluster | None, timeout: float, hint: str) -> Iterator[None]:
    """Turns the error of a collective whose peer failed into one :class:`NeuralStyleError` (exit 1).

    Args:
        cluster: the run's cluster; None: nothing to catch.
        timeout: ``--worker_timeout``, named in the message.
        hint: what to do next, e.g. where the last checkpoint is.
    """
    if cluster is None:
        yield
        return
    import tensorflow as tf

    try:
        yield
    except tf.errors.OpError as e:
        if type(e).__name__ not in _PEER_ERRORS:
            raise
        lines = [line.strip() for line in str(e.message).splitlines() if line.strip()] or [""]
        at = next((i for i, line in enumerate(lines) if "aborted by" in line or "Deadline" in line), 0)
        cause = lines[at].split("Collective ops is aborted by:")[-1].strip()
        if cause.endswith(":") and at + 1 < len(lines):  # "... unhealthy (stopped sending heartbeats):" + the task
            cause = f"{cause} {lines[at + 1]}"
        cause = cause[:200]
        raise NeuralStyleError(
            f"another worker failed, exited or did not answer within --worker_timeout {timeout:g} s "
            f"({type(e).__name__}: {cause}); {hint}",
            usage=False,
        ) from None
