"""Events the engine emits; every front-end (TUI, headless printer, control socket) subscribes to these.

Front-ends never reach into the supervisor: they receive these and call Engine commands.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable


class State(str, Enum):
    """Lifecycle state of one service, as shown everywhere (status --json, TUI, headless)."""

    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    STOPPED = "stopped"
    CRASHED = "crashed"
    BACKOFF = "backoff"
    DRAINING = "draining"  # an old worker generation finishing its tasks after a reload
    FAILED = "failed"  # a oneshot step (`oneshot = true`) that exited non-zero: it is not restarted
    BLOCKED = "blocked"  # not started: a service or step it depends on failed or could not start


@dataclass(slots=True)
class LogLine:
    """One line a service printed (already capped and password-masked)."""

    service: str
    text: str
    stream: str = "stdout"
    time: float = field(default_factory=time.time)


@dataclass(slots=True)
class StateChanged:
    """A service moved to another state."""

    service: str
    state: State
    pid: int | None = None
    exit_code: int | None = None
    restarts: int = 0
    detail: str = ""  # e.g. "restarting in 4 s", "exited with code 1"
    backoff_until: float | None = None


@dataclass(slots=True)
class Notice:
    """Something devstack itself says (started, reloading, a diagnosis). Printed under `devstack`."""

    text: str
    level: str = "info"  # info | warning | error
    service: str | None = None
    time: float = field(default_factory=time.time)


Event = LogLine | StateChanged | Notice
Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of engine events to synchronous subscribers running on the engine's loop.

    Subscribers must be cheap (append to a buffer); a slow one would stall the supervisor.
    """

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def emit(self, event: Event) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a broken front-end must never take the supervisor down
                pass

    def queue(self, maxsize: int = 0) -> tuple[asyncio.Queue, Callable[[], None]]:
        """A queue fed with every event (for async consumers such as the control socket)."""
        q: asyncio.Queue = asyncio.Queue(maxsize)

        def put(event: Event) -> None:
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                pass

        return q, self.subscribe(put)
