"""A deterministic `tui.source.Source` (what `devstack.api.Stack` is to the real TUI): fixed pids, uptimes, Redis figures, queues and events,
so snapshots do not change with clocks, pids or ports."""
from __future__ import annotations

import asyncio
from dataclasses import replace

from devstack.api import HeaderInfo, MessageInfo, QueueInfo, RedisStats, ServiceRow, TaskEvent, Usage
from devstack.events import LogLine, State

T0 = 1_700_000_000.0
PYTHON = "/app/.venv/bin/python (.venv in the project)"

LOGS = [
    ("redis", "* Ready to accept connections"),
    ("api", " * Running on http://127.0.0.1:5001"),
    ("worker", "[2024-01-01 00:00:00,000: INFO/MainProcess] worker@demo ready."),
    ("worker", "[2024-01-01 00:00:01,000: WARNING/ForkPoolWorker-1] [bold]x[/bold]"),
    ("beat", "[2024-01-01 00:00:00,500: INFO/MainProcess] beat: Starting..."),
]
SERVICES = [
    ServiceRow("redis", State.READY, 1001, 125.0, 0),
    ServiceRow("api", State.READY, 1002, 124.0, 0),
    ServiceRow("worker", State.READY, 1003, 61.0, 2, detail="prefork ×2"),
    ServiceRow("beat", State.CRASHED, None, None, 5),
]
QUEUES = [QueueInfo("celery", 0, 0), QueueInfo("mail", 2, 1, 42.0)]
MESSAGES = [
    MessageInfo("demo.send_mail", "7d3f0a52-0000-4000-8000-000000000001", "('a@example.com',)", "{}", None, 0, 0,
                "mail", "ready", "application/json"),
    MessageInfo("demo.send_mail", "7d3f0a52-0000-4000-8000-000000000002", "('[red]b[/red]',)", "{}",
                "2024-01-01T00:05:00+00:00", 0, 1, "mail", "ready", "application/json"),
    MessageInfo("demo.send_mail", "7d3f0a52-0000-4000-8000-000000000003", "('c@example.com',)", "{}", None, None,
                None, "mail", "reserved", "application/json"),
]
EVENTS = [
    TaskEvent("received", "aaaaaaaa-1", "demo.add", "worker@demo", T0),
    TaskEvent("succeeded", "aaaaaaaa-1", "demo.add", "worker@demo", T0 + 1, runtime=0.012),
    TaskEvent("failed", "bbbbbbbb-2", "demo.fail", "worker@demo", T0 + 2, exception="ValueError('boom')"),
]

BEAT_ENTRIES = [
    {"name": "demo-tick", "task": "demo.tick", "every": "every 10 s", "last_run": T0 - 4, "next_run": T0 + 6,
     "total_run_count": 12, "queue": "celery"},
    {"name": "demo-nightly-tick", "task": "demo.tick", "every": "daily at 03:00", "last_run": None,
     "next_run": T0 + 7200, "total_run_count": 0, "queue": "celery"},
]

TRACEBACK = 'Traceback (most recent call last):\n  File "/app/tasks.py", line 12, in fail\nValueError: boom'


class FakeSource:
    poll_seconds = 3600.0  # one poll: the sparkline does not grow while the snapshot is taken
    usage_seconds = 3600.0
    redis_ready = True

    def __init__(self) -> None:
        self.subscribers = []
        self.solo = False
        self.sent: list[tuple[str, str]] = []
        self.purged: list[str] = []
        self.requeue_calls = 0
        self.requeue_count = 3
        self.requeue_error: Exception | None = None
        self.replayed: list[str] = []
        self.revoked: list[tuple[str, bool, str]] = []
        self.beat_runs: list[str] = []
        self.debugged: list[tuple[str, bool]] = []

    def subscribe(self, callback):
        self.subscribers.append(callback)
        return lambda: None

    def emit(self, event) -> None:
        for callback in self.subscribers:
            callback(event)

    async def start(self, request_shutdown) -> None:
        for service, text in LOGS:
            self.emit(LogLine(service, text, time=T0))

    async def shutdown(self) -> None:
        return None

    def header(self) -> HeaderInfo:
        return HeaderInfo("demo", "embedded 127.0.0.1:6379", self.solo, PYTHON, "http://127.0.0.1:5001")

    def services(self):
        return [replace(r, detail="SOLO") if self.solo and r.name == "worker" else r for r in SERVICES]

    async def restart(self, names): ...
    async def stop(self, names): ...
    async def start_services(self, names): ...

    async def set_solo(self, on=None) -> bool:
        self.solo = (not self.solo) if on is None else on
        return self.solo

    async def set_debug(self, name, on, port=None) -> dict:
        self.debugged.append((name, on))
        return {"service": name, "debug": 5678 if on else None}

    async def requeue(self) -> int:
        self.requeue_calls += 1
        if self.requeue_error is not None:
            raise self.requeue_error
        return self.requeue_count

    def send_input(self, name, text) -> bool:
        self.sent.append((name, text))
        return True

    def redis_stats(self) -> RedisStats:
        return RedisStats(ok=True, latency_ms=0.2, version="7.2.4", uptime_s=125, used_memory=1_200_000,
                          peak_memory=1_500_000, clients=9, ops_per_sec=14, keys_per_db={0: 3, 1: 12})

    def queues(self):
        return list(QUEUES)

    def broker_poll(self):
        stats = self.redis_stats()
        return stats, (self.queues() if stats.ok else None)

    def redis_topology(self):
        return None  # one Redis server; tests/tui/test_redis_panel.py subclasses it with a sentinel group

    async def failover(self) -> dict:
        raise NotImplementedError("FakeSource runs one Redis server")

    def messages(self, queue):
        return [m for m in MESSAGES if m.queue == queue]

    def purge(self, queue) -> int:
        self.purged.append(queue)
        return 2

    def usage(self):
        return {"redis": Usage(0.5, 4_000_000), "api": Usage(1.0, 40_000_000), "worker": Usage(2.0, 160_000_000)}

    async def task_events(self, on_event) -> None:
        for event in EVENTS:
            on_event(event)
        await asyncio.Event().wait()

    def task(self, task_id: str) -> dict:
        event = next(e for e in EVENTS if e.uuid == task_id and e.kind != "received")
        return {"id": task_id, "name": event.name, "state": event.kind, "hostname": event.hostname,
                "args": "(1, 2)", "kwargs": "{}", "queue": "celery", "runtime": event.runtime,
                "exception": event.exception, "times": {"received": T0, event.kind: event.timestamp},
                "traceback": TRACEBACK if event.kind == "failed" else None,
                "log": [f"[2024-01-01 00:00:02,000: INFO/MainProcess] Task {event.name}[{task_id}] received",
                        "[2024-01-01 00:00:02,100: ERROR/ForkPoolWorker-1] [red]not markup[/red]"],
                "where": "done", "where_detail": {"detail": f"done: {event.kind}"}}

    def replay(self, task_id: str, queue: str | None = None) -> dict:
        self.replayed.append(task_id)
        return {"id": "cccccccc-3", "replay_of": task_id}

    def revoke(self, task_id: str, terminate: bool = False, signal: str = "TERM") -> dict:
        self.revoked.append((task_id, terminate, signal))
        return {"id": task_id, "revoked": True}

    def beat(self) -> dict:
        return {"entries": [dict(entry) for entry in BEAT_ENTRIES], "file": "/demo/.devstack/celerybeat-schedule",
                "file_error": None}

    def beat_run(self, name: str) -> dict:
        self.beat_runs.append(name)
        return {"id": "eeeeeeee-5", "queue": "celery", "replay_of": None}

    def now(self) -> float:
        return T0
