""""Where is my task?": one answer per task id from the event history, the broker and the result backend.

`where` is one of queued / reserved / running / scheduled / done / unknown, with `detail` in words
and, for unknown, the likely `reason`.
"""
from __future__ import annotations

import json
import time
from typing import Callable

from devstack.broker.layout import loads

from .finder import Located, MessageFinder
from .store import TERMINAL


BACKEND_FINAL = ("SUCCESS", "FAILURE", "REVOKED")
"""Result-backend states after which the message is gone from the broker."""


def meta_key(task_id: str) -> str:
    return f"celery-task-meta-{task_id}"


class WhereLookup:
    """Answers for one stack. `consumers()` (blocking, ~1 s when no worker answers) maps each live worker
    to the queues it consumes; it is called only for a message found in a queue the config does not list."""

    def __init__(self, finder: MessageFinder, queues: list[str], worker_queues: list[str],
                 consumers: Callable[[], dict[str, list[str]]], backend=None):
        self.finder = finder
        self.queues = queues
        self.worker_queues = worker_queues or ["celery"]  # a worker without -Q consumes Celery's default
        self.consumers = consumers
        self.backend = backend  # a client on the result backend's Redis db, None when there is none
        self._found: dict[tuple[str, str], Located | None] = {}  # one scan per place and id for this lookup

    def find_reserved(self, task_id: str) -> Located | None:
        if ("unacked", task_id) not in self._found:
            self._found["unacked", task_id] = self.finder.in_unacked(task_id)
        return self._found["unacked", task_id]

    def find_queued(self, task_id: str) -> Located | None:
        """A full scan of every queue for an id that is not there (~0.4 s at 100,000 messages): asked once."""
        if ("queues", task_id) not in self._found:
            self._found["queues", task_id] = self.finder.in_queues(task_id, self.queues)
        return self._found["queues", task_id]

    def answer(self, task_id: str, row: dict | None) -> dict:
        state = (row or {}).get("state")
        if state in TERMINAL:
            return self._done_from_row(task_id, row)
        meta = self._meta(task_id)
        if meta is not None and meta.get("status") in BACKEND_FINAL:  # finished: no queue needs scanning
            return _done_from_meta(meta)
        reserved = self.find_reserved(task_id)
        if state == "started":
            return _running(row, reserved, meta)
        if reserved is not None:
            return _reserved(row, reserved)
        queued = self.find_queued(task_id)
        if queued is not None:
            return self._queued(queued)
        if meta is not None:
            return _done_from_meta(meta)
        return {"where": "unknown", **self._unknown_reason(row)}

    def locate(self, task_id: str) -> Located | None:
        """The message itself, reserved or queued (for revoke and for capturing the body)."""
        return self.find_reserved(task_id) or self.find_queued(task_id)

    def _done_from_row(self, task_id: str, row: dict) -> dict:
        answer = {"where": "done", "state": row["state"], "result": row.get("result"),
                  "exception": row.get("exception"), "traceback": row.get("traceback")}
        outcome = row.get("exception") or row.get("result")
        answer["detail"] = f"done: {row['state']}" + (f" ({outcome})" if outcome else "")
        if self.backend is not None and row["state"] != "revoked" and self._meta(task_id) is None:
            answer["detail"] += "; its result is no longer in the result backend (expired after result_expires)"
        return answer

    def _queued(self, found: Located) -> dict:
        detail = (f"queued in {found.queue} at position {found.position} of {found.total} "
                  f"(priority bucket {found.bucket})")
        answer = {"queue": found.queue, "position": found.position, "total": found.total, "bucket": found.bucket,
                  "eta": found.headers.get("eta")}
        if found.queue in self.worker_queues:
            return {"where": "queued", **answer, "detail": detail}
        live = self.consumers()
        if any(found.queue in queues for queues in live.values()):
            return {"where": "queued", **answer, "detail": detail}
        runs = ",".join(self.worker_queues)
        return {"where": "unknown", **answer, "reason": "no-consumer",
                "detail": f"{detail}, but no worker consumes {found.queue}: the worker runs -Q {runs}. It stays "
                          f"PENDING until {found.queue} is added to [worker] queues (or the task is routed elsewhere)."}

    def _meta(self, task_id: str) -> dict | None:
        if self.backend is None:
            return None
        meta = loads(self.backend.get(meta_key(task_id)))
        return meta if isinstance(meta, dict) else None

    def _unknown_reason(self, row: dict | None) -> dict:
        if row is not None:
            return {"reason": "lost", "detail": f"last seen {row['state']} on {row.get('hostname') or 'a worker'}, and "
                    "it is neither in a queue, in `unacked` nor in the result backend: the worker was probably killed "
                    "while it held it (an early-ack task is lost then)."}
        if self.backend is None:
            return {"reason": "no-result-backend", "detail": "not in any queue nor in `unacked`, and no result backend "
                    "is configured, so a finished task leaves no trace there (devstack's history has no such id either)."}
        return {"reason": "never-sent-or-expired", "detail": "not in any queue, in `unacked`, in the result backend nor "
                "in devstack's history: the id was never sent to this broker, or it finished long ago and its result "
                "expired (result_expires)."}


def _done_from_meta(meta: dict) -> dict:
    return {"where": "done", "state": str(meta.get("status", "")).lower(), "result": _short(meta.get("result")),
            "traceback": meta.get("traceback"), "detail": f"done: {meta.get('status')} (from the result backend)"}


def _running(row: dict, reserved: Located | None, meta: dict | None) -> dict:
    started = (row.get("times") or {}).get("started")
    since = f" for {time.time() - started:.0f} s" if started else ""
    pool_pid = _pool_pid(meta)
    worker_pid = _int(row.get("pid"))  # the events' pid is the worker's main process, never the pool's
    where = f"in pool process {pool_pid} of the worker (pid {worker_pid})" if pool_pid else (
        f"in the worker (pid {worker_pid})" if worker_pid else "")
    host = row.get("hostname") or "a worker"
    return {"where": "running", "hostname": row.get("hostname"), "pid": pool_pid, "worker_pid": worker_pid,
            "started": started, "queue": reserved.queue if reserved else row.get("queue"),
            "detail": f"running on {host}{' ' + where if where else ''}{since}"}


def _pool_pid(meta: dict | None) -> int | None:
    """The pool process running the task: Celery stores `{pid, hostname}` as a STARTED result when the app sets
    `task_track_started` (the events only carry the worker's main pid)."""
    if meta is None or meta.get("status") != "STARTED" or not isinstance(meta.get("result"), dict):
        return None
    return _int(meta["result"].get("pid"))


def _int(value: object) -> int | None:
    return int(value) if str(value or "").isdigit() else None  # the store keeps numbers as text


def _reserved(row: dict | None, found: Located) -> dict:
    host = (row or {}).get("hostname") or "a worker"
    since = f" (in `unacked` since {time.strftime('%H:%M:%S', time.localtime(found.since))})" if found.since else ""
    eta = found.headers.get("eta")
    answer = {"queue": found.queue, "hostname": (row or {}).get("hostname"), "since": found.since, "eta": eta}
    if eta:
        return {"where": "scheduled", **answer, "detail": f"scheduled for {eta}, held by {host}{since}"}
    return {"where": "reserved", **answer, "detail": f"reserved by {host}{since}, waiting for a free pool process"}


def _short(value: object, limit: int = 1024) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    return text if len(text) <= limit else text[:limit] + "..."


def offline_answer(row: dict) -> dict:
    """The answer from the history alone, when no stack runs (the broker is not asked)."""
    if row["state"] in TERMINAL:
        return {"where": "done", "state": row["state"], "result": row.get("result"), "exception": row.get("exception"),
                "traceback": row.get("traceback"), "detail": f"done: {row['state']} (from devstack's history)"}
    return {"where": "unknown", "reason": "not-running",
            "detail": f"last seen {row['state']}; devstack is not running, so the broker was not asked. "
                      "Start it with `devstack up` and ask again."}
