"""AutoRequeue: when a worker generation is gone, the messages it had reserved go back to their queues
by themselves instead of waiting in Redis' `unacked` for the visibility timeout (1 h)."""
from __future__ import annotations

import asyncio
import time
from typing import Callable

from .events import State, StateChanged


class AutoRequeue:
    """Bus subscriber that sweeps `unacked` once a worker process is gone (exited, killed, or its broker
    connection lost with a Redis restart) and when a new generation is ready.

    `sweep()` (blocking, run in a thread) requeues what the live generation cannot hold and returns the
    count; `busy()` is true while an old generation drains (it may still ack its messages: its end sweeps
    again); `enabled()` reads `[worker] auto_requeue` at the time of the event, so a config edit applies.
    """

    def __init__(self, sweep: Callable[[], int], busy: Callable[[], bool], enabled: Callable[[], bool],
                 notice: Callable[[str, str, str | None], None], spawn: Callable[[object], None]):
        self.sweep, self.busy, self.enabled, self.notice, self.spawn = sweep, busy, enabled, notice, spawn
        self.count = 0
        """Messages requeued so far (`auto_requeued` in `devstack status --json`)."""
        self.broker_since = 0.0
        """When Redis last came back: what was delivered before, no live connection can ack any more."""
        self._lock: asyncio.Lock | None = None

    def __call__(self, event) -> None:
        if not isinstance(event, StateChanged) or not self.enabled():
            return
        if event.service == "redis" and event.state == State.READY and event.restarts:
            self.broker_since = time.time()
            self.spawn(self.run("Redis restarted under the worker's connection"))
        elif event.service == "worker" and event.state in (State.BACKOFF, State.CRASHED, State.READY):
            self.spawn(self.run("the worker process that reserved them is gone"))

    async def run(self, why: str) -> int:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.busy():
                return 0
            try:
                count = await asyncio.get_running_loop().run_in_executor(None, self.sweep)
            except Exception:
                return 0  # Redis is not back yet (or not a Redis broker): Redis's return sweeps again
        if count:
            self.count += count
            self.notice(f"requeued {count} reserved message(s) left in Redis' `unacked` ({why}); they would "
                        "otherwise wait for the visibility timeout (1 h). Set [worker] auto_requeue = false "
                        "to leave them.", "warning", "worker")
        return count
