"""The events of each job, from the runner's thread to any number of server-sent-event streams.

The runner publishes from its own thread; each stream waits in the server's event loop and is woken through that
loop (``call_soon_threadsafe``), so a waiting stream costs nothing while the job runs. A job's events are kept
until the server stops, so a stream that starts late (or reconnects with ``Last-Event-ID``) gets them all: the
whole loss curve so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
from typing import Any

__all__ = ["Channel", "Event", "Hub"]

MAX_EVENTS = 20_000  # kept per job; a longer run keeps every other progress event of its first part


@dataclasses.dataclass(frozen=True)
class Event:
    """One event: ``kind`` is ``progress``, ``preview`` or ``state``; ``data`` its JSON object."""

    seq: int
    kind: str
    data: dict[str, Any]

    def encode(self) -> bytes:
        """The event in the ``text/event-stream`` format."""
        return f"id: {self.seq}\nevent: {self.kind}\ndata: {json.dumps(self.data)}\n\n".encode()


class Channel:
    """The events of one job."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._seq = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Adds an event and wakes every stream waiting for one (from any thread)."""
        with self._lock:
            self._seq += 1
            self._events.append(Event(self._seq, kind, data))
            if len(self._events) > MAX_EVENTS:
                progress = [i for i, e in enumerate(self._events) if e.kind == "progress"]
                drop = set(progress[: len(progress) // 2 : 2])
                self._events = [e for i, e in enumerate(self._events) if i not in drop]
            waiters = list(self._waiters)
        for loop, flag in waiters:
            with contextlib.suppress(RuntimeError):  # a loop that has closed: its stream is gone
                loop.call_soon_threadsafe(flag.set)

    def since(self, seq: int) -> list[Event]:
        """The events after ``seq``."""
        with self._lock:
            return [e for e in self._events if e.seq > seq]

    async def wait(self, seq: int, timeout: float) -> list[Event]:
        """The events after ``seq``, waiting up to ``timeout`` seconds for one when there is none yet."""
        events = self.since(seq)
        if events:
            return events
        flag = asyncio.Event()
        waiter = (asyncio.get_running_loop(), flag)
        with self._lock:
            self._waiters.add(waiter)
        try:
            events = self.since(seq)  # one may have come while registering
            if not events:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(flag.wait(), timeout)
                events = self.since(seq)
        finally:
            with self._lock:
                self._waiters.discard(waiter)
        return events


class Hub:
    """The channels of every job, made when first asked for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, Channel] = {}

    def channel(self, job_id: str) -> Channel:
        with self._lock:
            if job_id not in self._channels:
                self._channels[job_id] = Channel()
            return self._channels[job_id]

    def publish(self, job_id: str, kind: str, data: dict[str, Any]) -> None:
        self.channel(job_id).publish(kind, data)
