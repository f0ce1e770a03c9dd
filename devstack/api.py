"""The engine's public face: everything a front-end (the TUI, the headless printer, the control socket)
uses of devstack, besides `devstack.events` and `devstack.errors`.

    stack = Stack.from_config(config, solo=False)
    stack.subscribe(callback)                  # LogLine / StateChanged / Notice events
    await stack.start(request_shutdown)        # the engine, then the control socket
    stack.services() / header() / usage() / broker_poll() / messages(queue) / status()   # snapshots
    await stack.restart([...]) / stop / start_services / set_solo / requeue; purge(queue); send_input
    await stack.task_events(on_event)          # live Celery task events, until cancelled
    stack.tasks(state, name) / task(id) / replay(id) / revoke(id) / clear_tasks()   # task history (blocking)
    stack.beat() / beat_run(name)              # beat's schedule, an entry sent now (blocking)
    await stack.shutdown()                     # the control socket, then the stack; idempotent

Value snapshots are plain dataclasses: front-ends never hold an engine object. Methods marked
"blocking" do network I/O: call them from a thread, never on an event loop that draws a screen.
"""
from __future__ import annotations

import asyncio
import importlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .beat import ScheduleCache, when_words
from .control import ControlServer
from .control_commands import redis_summary
from .engine import Engine
from .errors import DevstackError
from .events import State
from .topology import NodeState, TopologyState
from .usage import Usage, UsageMonitor

if TYPE_CHECKING:
    from .broker import MessageInfo, QueueInfo, RedisStats, TaskEvent

__all__ = ["Stack", "HeaderInfo", "ServiceRow", "Usage", "QueueInfo", "MessageInfo", "RedisStats", "TaskEvent",
           "TopologyState", "NodeState", "when_words"]

_BROKER_TYPES = ("QueueInfo", "MessageInfo", "RedisStats", "TaskEvent")


def __getattr__(name: str):
    """The broker's value types, imported on first use: `devstack.broker` pulls in redis-py (~150 ms), which
    `devstack up` must not pay before Redis and the apps are started (see "Cold start" in docs/benchmarks.md)."""
    if name in _BROKER_TYPES:
        from . import broker

        return getattr(broker, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class HeaderInfo:
    """What the header shows: never the Redis password."""

    project: str
    redis: str  # e.g. "binary 127.0.0.1:6379"
    solo: bool
    python: str = ""  # the interpreter that runs the app and why, e.g. "/app/.venv/bin/python (.venv in the project)"
    api_url: str = ""  # where the API listens, e.g. "http://127.0.0.1:5000" ("" without an api service)


@dataclass
class ServiceRow:
    """One service as the process list shows it."""

    name: str
    state: State
    pid: int | None
    uptime: float | None
    restarts: int
    backoff_until: float | None = None
    command: tuple[str, ...] = ()
    last_error: str | None = None  # why it last exited on its own: the exception line and the fix
    held: bool = False  # stopped by a command: reloads leave it stopped
    detail: str = ""  # what kind of process it is, e.g. the worker's pool: "prefork ×2", "SOLO"
    debug: int | None = None  # the debugpy port while it runs under `devstack debug`


class Stack:
    """A running (or about to run) stack: an Engine, its control socket, Redis polling, process usage
    and the Celery event feed."""

    poll_seconds = 1.0
    """How long after one Redis/queue poll finished the next one starts."""
    usage_seconds = 3.0
    """How often a front-end should sample `usage()`."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.control: ControlServer | None = None
        self._clients: dict[tuple, object] = {}
        self._usage = UsageMonitor()
        self._poller = None  # devstack.broker.BrokerPoller, at the first poll
        self._topology = None  # devstack.topology.TopologyPoller, at the first poll of a sentinel group or cluster
        self._tracker = None  # devstack.tasks.TaskTracker, once the stack started
        self._tracker_task: asyncio.Task | None = None
        self._tracker_ready = asyncio.Event()
        self._beat_schedule = ScheduleCache()

    @classmethod
    def from_config(cls, config, *, solo: bool = False) -> "Stack":
        return cls(Engine(config, solo=solo))

    @property
    def config(self):
        return self.engine.config

    # ----- lifecycle -----------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[object], None]) -> Callable[[], None]:
        return self.engine.bus.subscribe(callback)

    def event_queue(self, maxsize: int = 10000):
        """(asyncio.Queue of events, unsubscribe) — for a subscriber that consumes at its own pace."""
        return self.engine.bus.queue(maxsize=maxsize)

    async def start(self, request_shutdown: Callable[[], None]) -> None:
        """Start the stack, then listen on the control socket (`devstack down` calls `request_shutdown`)."""
        await self.engine.start()
        self._start_tracker()
        self.control = ControlServer(self, request_shutdown)
        await self.control.start()

    async def shutdown(self) -> None:
        if self.control is not None:
            await self.control.close()
            self.control = None
        await self._stop_tracker()
        await self.engine.shutdown()
        for client in self._clients.values():
            try:
                client.close()
            except Exception:
                pass
        self._clients.clear()

    async def wait_all_ready(self, timeout: float | None = None) -> bool:
        return await self.engine.wait_all_ready(timeout)

    def notice(self, text: str, level: str = "info", service: str | None = None) -> None:
        self.engine.notice(text, level, service)

    # ----- what is running -------------------------------------------------------------------------
    @property
    def state_dir(self):
        return self.engine.state_dir

    def status(self) -> dict:
        """The dict behind `devstack status --json`."""
        status = self.engine.status()
        for name, port in self.engine.debug_ports.items():
            status["services"][name]["debug"] = port
        return status

    def header(self) -> HeaderInfo:
        status = self.engine.status()
        python = f"{status['python']['path']} ({status['python']['source']})"
        return HeaderInfo(status["project"], redis_summary(status["redis"]), self.engine.solo, python, self._api_url())

    def _api_url(self) -> str:
        api = self.engine.config.api
        if not api.enabled:
            return ""
        host = "127.0.0.1" if api.host in ("0.0.0.0", "::", "") else api.host  # where a browser reaches it
        return f"http://{f'[{host}]' if ':' in host else host}:{api.port}"

    def _detail(self, name: str) -> str:
        """The worker's pool and concurrency as it runs them (its own `command` says nothing we can read)."""
        if name != "worker" or self.engine.config.worker.command:
            return ""
        if self.engine.solo:
            return "SOLO"
        pool, concurrency = self.engine.worker_pool()
        return f"{pool} ×{concurrency}" if concurrency else pool

    def services(self) -> list[ServiceRow]:
        rows = []
        for name, service in self.engine.services.items():
            s = service.status()
            rows.append(ServiceRow(name, State(s["state"]), s["pid"], s["uptime"], s["restarts"],
                                   s.get("backoff_until"), tuple(s["command"]), s.get("last_error"),
                                   bool(s.get("held")), self._detail(name),
                                   self.engine.debug_ports.get(name)))
        return rows

    def service_names(self) -> list[str]:
        return list(self.engine.services)

    def resolve(self, names: list[str]) -> list[str]:
        """The services `names` stand for (none or `all`: every one but Redis); DevstackError for an unknown one."""
        return self.engine.resolve(names)

    @property
    def redis_ready(self) -> bool:
        redis = self.engine.services.get("redis")
        return self.engine.endpoint is not None and redis is not None and redis.state == State.READY

    def usage(self) -> dict[str, Usage]:
        """CPU% (since the previous call) and RSS summed over each service's process tree; a warm spare's
        under "<name> spare"."""
        roots = {name: s.pid for name, s in self.engine.services.items() if s.pid}
        roots.update({f"{name} spare": spare.process.pid for name, s in self.engine.services.items()
                      if (spare := getattr(s, "spare", None)) is not None})
        return self._usage.sample(roots)

    def now(self) -> float:
        return time.time()

    # ----- commands --------------------------------------------------------------------------------
    async def restart(self, names: list[str]) -> list[str]:
        await self.engine.restart(names)
        return self.engine.resolve(names)

    async def stop(self, names: list[str]) -> list[str]:
        await self.engine.stop(names)
        return self.engine.resolve(names)

    async def start_services(self, names: list[str]) -> list[str]:
        await self.engine.start_services(names)
        return self.engine.resolve(names)

    async def set_solo(self, on: bool | None = None) -> bool:
        return await self.engine.set_solo(on)

    async def set_debug(self, name: str, on: bool, port: int | None = None) -> dict:
        """Restart worker/api under debugpy on a loopback port (on) or as usual; see devstack/debug.py."""
        from .debug import set_debug

        return await set_debug(self.engine, name, on, port)

    async def requeue(self) -> int:
        """Messages returned from `unacked` to their queues; DevstackError while a worker generation drains."""
        return await self.engine.requeue_unacked()

    def send_input(self, name: str, text: str) -> bool:
        return self.engine.send_input(name, text)

    async def failover(self) -> dict:
        """A sentinel failover: the old and new master and how long the switch took (devstack/topology)."""
        from .topology import failover

        return await failover(self.engine.endpoint)

    def kill_node(self, name: str, hold: bool = False) -> dict:
        """SIGKILL to one Redis node; supervision restarts it unless `hold`."""
        from .topology import kill_node

        return kill_node(self.engine.services, self.engine.redis_nodes, name, hold)

    def redis_topology(self) -> TopologyState | None:
        """Blocking: a sentinel group's or cluster's state for the Redis panel (None: one Redis server).
        One connection per node, kept among the stack's clients (`shutdown` closes them)."""
        endpoint = self.engine.endpoint
        if endpoint is None or not (endpoint.sentinels or endpoint.cluster):
            return None
        if self._topology is None or self._topology.endpoint is not endpoint:
            from .topology import TopologyPoller

            self._topology = TopologyPoller(endpoint, self._clients)
        return self._topology.poll()

    # ----- Redis and the broker (blocking) ---------------------------------------------------------
    def _client(self, db: int, *, raw_info: bool = False):
        # Keyed by address too: behind sentinels the endpoint moves from the sentinel to the master found.
        kwargs = self.engine.endpoint.connect_kwargs(db)
        key = (db, kwargs["host"], kwargs["port"], raw_info)
        client = self._clients.get(key)
        if client is None:
            from .broker import fast_fail_client

            # no retries: with redis-py's default backoff a Redis that is down would freeze a panel for seconds
            client = fast_fail_client(raw_info=raw_info, **kwargs)
            self._clients[key] = client
        return client

    def redis_stats(self) -> RedisStats:
        from .broker import redis_stats

        return redis_stats(self._client(0))

    def broker_poll(self) -> tuple[RedisStats, list[QueueInfo] | None]:
        """The Redis panel's stats and the queues (None when Redis failed), in two round trips."""
        client = self._client(1, raw_info=True)
        if self._poller is None or self._poller.client is not client:
            from .broker import BrokerPoller

            self._poller = BrokerPoller(client, self.engine.config.worker.queues)
        return self._poller.poll()

    def _inspector(self):
        from .broker import QueueInspector

        return QueueInspector(self._client(1), self.engine.config.worker.queues)

    def queues(self) -> list[QueueInfo]:
        return self._inspector().queues()

    def messages(self, queue: str) -> list[MessageInfo]:
        return self._inspector().messages(queue)

    def purge(self, queue: str) -> int:
        """Delete the ready messages of `queue` (reserved ones stay with their worker); how many were removed."""
        return self._inspector().purge(queue)

    # ----- live task events ------------------------------------------------------------------------
    async def task_events(self, on_event: Callable[[TaskEvent], None]) -> None:
        """Runs until cancelled. Fed by the stack's one event feed (the one the task history records)."""
        if self._tracker_task is None:  # not started through `start` (tools, tests): a feed of its own
            from .broker import TaskEventFeed

            await self._wait_redis()
            await TaskEventFeed(self.engine.endpoint.direct_url(1), on_event, db=1).run()
            return
        await self._tracker_ready.wait()
        unlisten = self._tracker.listen(on_event)
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            unlisten()

    # ----- task history and per-task commands (blocking) -------------------------------------------
    def _start_tracker(self) -> None:
        self._tracker_task = asyncio.get_running_loop().create_task(self._run_tracker(), name="task-history")

    async def _wait_redis(self) -> None:
        redis_service = self.engine.services.get("redis")
        if redis_service is not None:  # behind sentinels the master is known only then
            await redis_service.wait_ready()

    async def _run_tracker(self) -> None:
        """Opened once Redis answers and the apps are spawned: importing the task history (redis-py, sqlite3)
        on the loop before then would delay the spawns (the cold start's critical path)."""
        await self._wait_redis()
        apps = [s.wait_spawned() for name, s in self.engine.services.items() if name != "redis"]
        try:
            await asyncio.wait_for(asyncio.gather(*apps), 2)
        except asyncio.TimeoutError:
            pass  # an app that is slow to spawn (or waits for a step) must not keep the history closed
        tasks = await asyncio.to_thread(importlib.import_module, "devstack.tasks")
        worker = self.engine.services.get("worker")
        self._tracker = tasks.TaskTracker(
            self.state_dir, self.config.tasks.keep, client_for=self._client, broker_url=self._broker_url,
            queues=lambda: self._inspector().queue_names(), worker_queues=list(self.config.worker.queues),
            backend_db=1 if worker is None or "CELERY_RESULT_BACKEND" in worker.spec.env else None)
        self._tracker_ready.set()
        await self._tracker.run(self.engine.endpoint.direct_url(1))

    async def _stop_tracker(self) -> None:
        if self._tracker_task is not None:
            self._tracker_task.cancel()
            try:
                await self._tracker_task
            except (asyncio.CancelledError, Exception):
                pass
            self._tracker_task = None
        if self._tracker is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._tracker.close)
            self._tracker = None

    def _broker_url(self) -> str:
        worker = self.engine.services.get("worker")
        return self.engine.internal_broker_url(worker.spec.env.get("CELERY_BROKER_URL") if worker else None)

    def _tasks(self):
        if self._tracker is None:
            raise DevstackError("the task history is not open yet: the stack is still starting", 1)
        return self._tracker

    def tasks(self, state: str | None = None, name: str | None = None, limit: int = 100) -> list[dict]:
        """History rows, newest first (`name`: a substring of the task name)."""
        tracker = self._tasks()
        tracker.store.flush()
        return tracker.history.list(state, name, limit)

    def task(self, task_id: str) -> dict:
        """One task's history row with `where` (queued/reserved/running/scheduled/done/unknown) and its detail."""
        return self._tasks().detail(task_id)

    def replay(self, task_id: str, queue: str | None = None) -> dict:
        """Send the task again (same name, args, kwargs, queue); the new id is in `id`."""
        return self._tasks().replay(task_id, queue)

    def revoke(self, task_id: str, terminate: bool = False, signal: str = "TERM") -> dict:
        return self._tasks().revoke(task_id, terminate, signal)

    def clear_tasks(self) -> int:
        return self._tasks().clear()

    # ----- beat (blocking) -------------------------------------------------------------------------
    def beat(self) -> dict:
        """Beat's schedule: {"entries": [...], "file", "file_error"} (see devstack/beat.py)."""
        from .beat import read_schedule

        beat = self.engine.services.get("beat")
        if beat is None:
            raise DevstackError("this stack runs no beat: [beat] enabled = false in devstack.toml", 1)
        spec = beat.spec
        return self._beat_schedule.get(
            (beat.pid, tuple(spec.argv), str(spec.cwd)),
            lambda: read_schedule(spec.argv, spec.env, spec.cwd, self.config.beat.app or self.config.worker.app,
                                  self.engine.interpreter().python))

    def beat_run(self, name: str) -> dict:
        """Send beat entry `name`'s task now, with its args, kwargs and queue; the new id in `id`."""
        from .beat import entry_plan, find_entry

        return self._tasks().send(entry_plan(find_entry(self.beat(), name)))
