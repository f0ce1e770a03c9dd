"""The stack's task tracking, composed in one place: the event feed into the store, the capture of
each message from `unacked` (for replay), the listeners (the TUI), and the per-task commands."""
from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Callable

from devstack.broker import TaskEventFeed, active_queues
from devstack.broker.layout import as_text, loads
from devstack.errors import DevstackError

from . import actions
from .finder import MessageFinder, message_id
from .logs import log_path, task_log_lines
from .store import TERMINAL, TaskHistory, TaskStore, store_path
from .where import WhereLookup

log = logging.getLogger(__name__)

CAPTURE_WINDOW = 2.0
"""Seconds after its task-received event that a message is still looked for in `unacked`."""
CAPTURE_PAUSE = (0.02, 0.32)
"""Seconds between two looks while ids are wanted: the first after a new id, doubling up to the second (a lone
task not found at once was looked for 100 times in its window: beat's demo.tick cost an idle stack 0.15% of a core)."""
INDEX_OVERLAP = 2.0
"""Seconds before the newest delivery time read that `unacked_index` is read again (only unseen tags are fetched)."""
SEEN_MAX = 10_000
"""Delivery tags remembered as read (the oldest forgotten first)."""
UNACKED, UNACKED_INDEX = "unacked", "unacked_index"
"""kombu's keys (devstack/broker/layout.py): the reserved messages and their delivery times."""


class TaskTracker:
    """`client_for(db)` gives a bytes-returning Redis client on the broker's Redis; `broker_url()` the URL
    for Celery's control commands; `queues()` every queue known (bindings + config)."""

    def __init__(self, state_dir: Path, keep: int, *, client_for: Callable[[int], object],
                 broker_url: Callable[[], str], queues: Callable[[], list[str]], worker_queues: list[str],
                 backend_db: int | None = 1):
        self.store = TaskStore(store_path(state_dir), keep)
        self.history = TaskHistory(self.store.path)
        self.client_for = client_for
        self.broker_url = broker_url
        self.queues = queues
        self.worker_queues = worker_queues
        self.backend_db = backend_db
        self._listeners: list[Callable[[object], None]] = []
        self._capture_ids: dict[str, float] = {}
        self._captures_asked = 0  # task-received events that asked for a capture (the loop looks again soon after one)
        self._capture_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._capture_thread: threading.Thread | None = None

    # ----- the feed ----------------------------------------------------------------------------
    async def run(self, feed_url: str) -> None:
        """Record events until cancelled."""
        self.store.start()
        self._capture_thread = threading.Thread(target=self._capture_loop, name="devstack-task-capture", daemon=True)
        self._capture_thread.start()
        await TaskEventFeed(feed_url, self.on_event, db=1).run()

    def on_event(self, event) -> None:
        self.store.record(event)
        if event.kind == "received" and event.uuid:
            with self._capture_lock:
                self._capture_ids[event.uuid] = time.monotonic()
                self._captures_asked += 1
            self._wake.set()
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # one broken front-end must not stop the history
                log.exception("task listener failed")

    def listen(self, callback: Callable[[object], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _capture_loop(self) -> None:
        seen: dict[str, None] = {}  # delivery tags already read (bounded, oldest dropped)
        since: float | None = None  # the newest delivery time read from `unacked_index` (None: none yet)
        asked, pause = -1, CAPTURE_PAUSE[0]
        while not self._closed.is_set():
            self._wake.wait()  # set by a task-received event, by the loop itself during a window, by close()
            self._wake.clear()
            with self._capture_lock:
                now = time.monotonic()
                for task_id in [i for i, t in self._capture_ids.items() if now - t > CAPTURE_WINDOW]:
                    del self._capture_ids[task_id]
                wanted = set(self._capture_ids)
                # A new id: look again soon. Else less and less often: a message acked before the first
                # look (the usual early ack of a task that starts at once) is never there to be found.
                pause = CAPTURE_PAUSE[0] if self._captures_asked != asked else min(pause * 2, CAPTURE_PAUSE[1])
                asked = self._captures_asked
            if not wanted:
                continue
            try:
                since = self._capture(wanted, seen, since)
            except Exception as exc:  # Redis restarting: the next event retries
                log.debug("capture: %s", exc)
            self._closed.wait(pause)
            self._wake.set()  # keep looking while some ids are in their window

    def _capture(self, wanted: set[str], seen: dict[str, None], since: float | None) -> float | None:
        """Read only the delivery tags not seen yet: `unacked_index` (tag -> delivery time, written with the
        `unacked` entry in one MULTI by kombu) from a little before the newest time read, then HMGET of the
        new tags alone. Reading the whole `unacked` hash 50 times a second decoded thousands of entries under
        a flood. The overlap covers workers whose clocks or writes land slightly out of order. Returns the newest
        delivery time read (`since` for the next call)."""
        client = self.client_for(1)
        low = "-inf" if since is None else since - INDEX_OVERLAP
        index = client.zrangebyscore(UNACKED_INDEX, low, "+inf", withscores=True) or []
        new: list[str] = []
        for tag, score in index:
            if since is None or score > since:
                since = score
            tag = as_text(tag)
            if tag in seen:
                continue
            seen[tag] = None
            if len(seen) > SEEN_MAX:
                seen.pop(next(iter(seen)))
            new.append(tag)
        if not new:
            return since
        for value in client.hmget(UNACKED, new):
            if value is None:  # acknowledged between the two reads
                continue
            data = loads(value)
            if not (isinstance(data, list) and len(data) >= 3):
                continue
            task_id = message_id(data[0])
            if task_id in wanted:
                self._keep_message(task_id, data[0], as_text(data[2] or ""), as_text(data[1] or ""))
                with self._capture_lock:
                    self._capture_ids.pop(task_id, None)
        return since

    def _keep_message(self, task_id: str, payload: dict, routing_key: str, exchange: str = "",
                      queue: str | None = None) -> None:
        self.store.put({"id": task_id, "body": json.dumps(payload), "routing_key": routing_key or None,
                        "exchange": exchange or None, "queue": queue or routing_key or None})

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        if self._capture_thread is not None:
            self._capture_thread.join(2)
        self.store.close()

    # ----- commands (blocking) -------------------------------------------------------------------
    def row(self, task_id: str) -> dict:
        self.store.flush()
        return find_row(self.history, task_id)

    def lookup(self) -> WhereLookup:
        finder = MessageFinder(self.client_for(1))
        backend = self.client_for(self.backend_db) if self.backend_db is not None else None
        return WhereLookup(finder, self.queues(), self.worker_queues,
                           lambda: active_queues(self.broker_url(), timeout=1.0), backend)

    def detail(self, task_id: str) -> dict:
        """The history row with a `where` answer; unknown ids still get an answer from the broker."""
        lookup = self.lookup()
        row = self._ensure_row(task_id, lookup)
        answer = lookup.answer(row["id"] if row else task_id, row)
        full_id = row["id"] if row else task_id
        return {**(row or {"id": task_id}), "where": answer["where"], "where_detail": answer,
                "log": task_log_lines(log_path(self.store.path.parent), full_id)}

    def _ensure_row(self, task_id: str, lookup: WhereLookup) -> dict | None:
        """The history row, with the message captured from the broker when it is there and was not yet;
        a full id devstack never saw but the broker holds gets a row from the message's headers."""
        try:
            row = self.row(task_id)
        except DevstackError:
            if len(task_id) < 36:
                raise
            row = None
        if row is not None and (row.get("message_captured") or row.get("state") in TERMINAL):
            return row  # a finished task is in no queue: nothing to scan for
        located = lookup.locate(row["id"] if row else task_id)
        if located is None:
            return row
        headers = located.headers
        self.store.put({"id": row["id"] if row else task_id, "state": None if row else "sent", "state_at": None,
                        "name": headers.get("task"), "args": headers.get("argsrepr"),
                        "kwargs": headers.get("kwargsrepr"), "eta": headers.get("eta"),
                        "parent_id": headers.get("parent_id"), "root_id": headers.get("root_id"),
                        "body": json.dumps(located.payload), "queue": located.queue, "routing_key": located.queue})
        return self.row(task_id)

    def replay(self, task_id: str, queue: str | None = None) -> dict:
        row = self._ensure_row(task_id, self.lookup()) or self.row(task_id)
        plan = actions.plan_replay(row, self.history.body(row["id"]), queue, self.history.known_queue(row["name"] or ""))
        return self.send(plan, replay_of=row["id"])

    def send(self, plan: actions.ReplayPlan, replay_of: str | None = None) -> dict:
        """Publish `plan` (a replay, or a beat entry run now) and put it in the history as sent."""
        new_id = actions.send(plan, self.broker_url())
        now = time.time()
        self.store.put({"id": new_id, "state": "sent", "name": plan.name, "args": repr(tuple(plan.args)),
                        "kwargs": repr(plan.kwargs), "queue": plan.queue, "routing_key": plan.routing_key,
                        "replay_of": replay_of, "t_sent": now, "state_at": now})
        self.store.flush()
        return {"id": new_id, "replay_of": replay_of, "queue": plan.queue, "exact": plan.exact, "notes": plan.notes}

    def revoke(self, task_id: str, terminate: bool = False, signal: str = "TERM") -> dict:
        """Remove a queued message from its list, and broadcast the revoke for reserved/running ones."""
        lookup = self.lookup()
        row = self._ensure_row(task_id, lookup) or self.row(task_id)
        located = lookup.find_queued(row["id"])  # the scan _ensure_row made, not a second one
        removed = located is not None and lookup.finder.remove(located)
        actions.revoke(row["id"], self.broker_url(), terminate=terminate, signal=signal)
        if removed or row.get("state") not in ("succeeded", "failed"):
            now = time.time()
            self.store.put({"id": row["id"], "state": "revoked", "t_revoked": now, "state_at": now})
            self.store.flush()
        how = "removed from queue " + located.queue if removed else (
            f"terminated with SIG{signal}" if terminate else "revoked on the live workers")
        return {"id": row["id"], "removed_from_queue": bool(removed), "terminated": terminate, "detail": how}

    def clear(self) -> int:
        return self.store.clear()


def find_row(history: TaskHistory, task_id: str) -> dict:
    """The one history row for `task_id` (or a unique prefix of it); DevstackError naming the problem."""
    rows = history.matches(task_id)
    if not rows:
        raise DevstackError(f"no task {task_id!r} in devstack's history ({history.path}). `devstack tasks` lists "
                            "the ones seen; a full 36-character id is also looked up in the broker.", 1)
    if len(rows) > 1:
        raise DevstackError(f"{task_id!r} is the start of several task ids ({', '.join(r['id'] for r in rows)}): "
                            "give more characters.", 2)
    return rows[0]
