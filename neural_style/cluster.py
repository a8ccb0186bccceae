"""The cluster of machines a command runs on, as ``TF_CONFIG`` describes it.

``TF_CONFIG`` is TensorFlow's own description of a multi-worker job, the one Kubernetes operators and Vertex AI
set on every task: a JSON object naming every task's address and which of them this process is::

    {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}

:func:`parse_tf_config` checks it and gives a :class:`Cluster`; it needs no TensorFlow, so a command can refuse a
malformed one in a fraction of a second. The tasks are ranked as ``tf.distribute.MultiWorkerMirroredStrategy``
ranks them: the ``chief`` task (when there is one) first, then the ``worker`` tasks in order; rank 0, the chief,
is the task that writes files.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

from neural_style.errors import NeuralStyleError

__all__ = ["TF_CONFIG_ENV", "Cluster", "parse_tf_config"]

TF_CONFIG_ENV = "TF_CONFIG"
# The jobs of MultiWorkerMirroredStrategy, in the order it ranks their tasks.
_JOBS = ("chief", "worker")
_EXAMPLE = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The tasks of a multi-worker job and which one this process is.

    Attributes:
        jobs: ((job name, (address, ...)), ...) in rank order: ``chief`` (at most one task), then ``worker``.
        task_type: this task's job, ``"chief"`` or ``"worker"``.
        task_index: this task's index in its job.
    """

    jobs: tuple[tuple[str, tuple[str, ...]], ...]
    task_type: str
    task_index: int

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every task's ``host:port``, in rank order."""
        return tuple(address for _, addresses in self.jobs for address in addresses)

    @property
    def size(self) -> int:
        """The number of tasks (machines, or processes) taking part."""
        return len(self.addresses)

    @property
    def rank(self) -> int:
        """This task's place in :attr:`addresses`: 0 for the chief."""
        rank = 0
        for job, addresses in self.jobs:
            if job == self.task_type:
                return rank + self.task_index
            rank += len(addresses)
        raise AssertionError("the task's job is one of the cluster's")  # parse_tf_config checked it

    @property
    def is_chief(self) -> bool:
        """Whether this task is the one that writes the files (rank 0)."""
        return self.rank == 0

    @property
    def address(self) -> str:
        """This task's own ``host:port``."""
        return self.addresses[self.rank]

    def task_name(self, rank: int) -> str:
        """How messages name the task of ``rank``: ``"the chief (host:port)"`` or ``"worker 1 (host:port)"``."""
        offset = 0
        for job, addresses in self.jobs:
            if rank < offset + len(addresses):
                index = rank - offset
                kind = "the chief" if rank == 0 else f"{job} {index}"
                return f"{kind} ({addresses[index]})"
            offset += len(addresses)
        raise IndexError(rank)


def _addresses(job: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise NeuralStyleError(f'{TF_CONFIG_ENV} cluster "{job}" must be a list of "host:port" addresses')
    for address in value:
        host, _, port = address.rpartition(":") if isinstance(address, str) else ("", "", "")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise NeuralStyleError(
                f'{TF_CONFIG_ENV} cluster "{job}" has {json.dumps(address)}; each task is a "host:port" address '
                "with a port in 1..65535"
            )
    return tuple(value)


def parse_tf_config(text: str | None) -> Cluster | None:
    """The cluster of a ``TF_CONFIG`` value, checked; None when it is unset or empty.

    Args:
        text: the value of the ``TF_CONFIG`` environment variable, or None.

    Returns:
        The cluster (of one task or more), or None.

    Raises:
        NeuralStyleError: not JSON, not of the shape above, a job other than ``chief`` and ``worker`` (parameter
            servers and evaluators have no place in MultiWorkerMirroredStrategy), an address twice or not
            ``host:port``, or a task type or index the cluster does not have.
    """
    if text is None or not text.strip():
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise NeuralStyleError(f"{TF_CONFIG_ENV} is not valid JSON ({e}); it looks like {_EXAMPLE}") from None
    if not isinstance(config, Mapping) or not isinstance(config.get("cluster"), Mapping):
        raise NeuralStyleError(f'{TF_CONFIG_ENV} needs a "cluster" object listing the tasks, as in {_EXAMPLE}')
    cluster, task = config["cluster"], config.get("task")
    if not isinstance(task, Mapping):
        raise NeuralStyleError(f'{TF_CONFIG_ENV} needs a "task" object saying which task this is, as in {_EXAMPLE}')
    others = sorted(set(cluster) - set(_JOBS))
    if others:
        raise NeuralStyleError(
            f'{TF_CONFIG_ENV} has a "{others[0]}" job; MultiWorkerMirroredStrategy runs "chief" and "worker" tasks '
            "only (no parameter servers or evaluators)"
        )
    jobs = tuple((job, _addresses(job, cluster[job])) for job in _JOBS if job in cluster)
    if not jobs:
        raise NeuralStyleError(f'{TF_CONFIG_ENV} cluster lists no "worker" (or "chief") tasks, as in {_EXAMPLE}')
    if len(dict(jobs).get("chief", ())) > 1:
        raise NeuralStyleError(f'{TF_CONFIG_ENV} cluster has {len(dict(jobs)["chief"])} "chief" tasks; give one')
    every = [address for _, addresses in jobs for address in addresses]
    repeated = sorted({address for address in every if every.count(address) > 1})
    if repeated:
        raise NeuralStyleError(f"{TF_CONFIG_ENV} cluster lists {repeated[0]} twice; give each task its own port")
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type not in dict(jobs):
        raise NeuralStyleError(
            f"{TF_CONFIG_ENV} task type {json.dumps(task_type)} is not a job of its cluster ({', '.join(dict(jobs))})"
        )
    count = len(dict(jobs)[task_type])
    if isinstance(index, bool) or not isinstance(index, int):
        raise NeuralStyleError(f"{TF_CONFIG_ENV} task index {json.dumps(index)} must be a whole number")
    if not 0 <= index < count:
        raise NeuralStyleError(
            f'{TF_CONFIG_ENV} task index {index} is out of range: the cluster has {count} "{task_type}" '
            f"task{'s' if count > 1 else ''} (index 0..{count - 1})"
        )
    return Cluster(jobs, task_type, index)
