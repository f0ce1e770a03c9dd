"""Where the TUI's data comes from: the running engine (``EngineSource``), or a stub in snapshot tests.

The app and its panels talk only to this interface, never to the engine directly, so a
deterministic fake (no pids, clocks or ports) can drive the same screens. Methods marked
"blocking" do network I/O and are called from thread workers, never on the UI loop.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

import psutil

from devstack.broker import QueueInspector, RedisStats, TaskEventFeed, TaskEvent, redis_stats
from devstack.control import ControlServer
from devstack.engine import Engine
from devstack.events import State

from .broker_poll import BrokerPoller, raw_info_client


def proc_children(pid: int) -> list[int]:
    """Children of `pid`, from the children file of each of its threads (a child belongs to the thread that
    forked it); [] if it is gone."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(child) for child in f.read().split())
        except (OSError, ValueError):  # the thread ended meanwhile
            pass
    return out


@dataclass
class HeaderInfo:
    """What the header shows: never the Redis password."""

    project: str
    redis: str  # e.g. "binary 127.0.0.1:6379"
    solo: bool


@dataclass
class ServiceRow:
    """One line of the process list."""

    name: str
    state: State
    pid: int | None
    uptime: float | None
    restarts: int
    backoff_until: float | None = None
    command: tuple[str, ...] = ()


@dataclass
class Usage:
    """CPU% and resident memory of a service's whole process tree."""

    cpu: float
    rss: int


class EngineSource:
    """The real thing: an Engine, its control socket, Redis polling and the Celery event feed."""

    poll_seconds = 1.0
    """How long after one Redis/queue poll finished the next one starts."""
    usage_seconds = 3.0

    def __init__(self, engine: Engine):
        self.engine = engine
        self.control: ControlServer | None = None
        self._clients: dict[tuple, object] = {}
        self._procs: dict[int, psutil.Process] = {}
        self._poller: BrokerPoller | None = None

    # ----- lifecycle -----------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[object], None]) -> Callable[[], None]:
        return self.engine.bus.subscribe(callback)

    async def start(self, request_shutdown: Callable[[], None]) -> None:
        await self.engine.start()
        self.control = ControlServer(self.engine, request_shutdown)
        await self.control.start()

    async def shutdown(self) -> None:
        if self.control is not None:
            await self.control.close()
        await self.engine.shutdown()
        for client in self._clients.values():
            try:
                client.close()
            except Exception:
                pass
        self._clients.clear()

    # ----- what is running -------------------------------------------------------------------------
    def header(self) -> HeaderInfo:
        status = self.engine.status()
        r = status["redis"]
        where = f"{r['host']}:{r['port']}" if r["host"] else "(starting)"
        return HeaderInfo(status["project"], f"{r['mode']} {where}", self.engine.solo)

    def services(self) -> list[ServiceRow]:
        rows = []
        for name, service in self.engine.services.items():
            s = service.status()
            rows.append(ServiceRow(name, service.state, s["pid"], s["uptime"], s["restarts"],
                                   s.get("backoff_until"), tuple(s["command"])))
        return rows

    def service_names(self) -> list[str]:
        return list(self.engine.services)

    @property
    def redis_ready(self) -> bool:
        redis = self.engine.services.get("redis")
        return self.engine.endpoint is not None and redis is not None and redis.state == State.READY

    # ----- commands --------------------------------------------------------------------------------
    async def restart(self, names: list[str]) -> None:
        await self.engine.restart(names)

    async def stop(self, names: list[str]) -> None:
        await self.engine.stop(names)

    async def start_services(self, names: list[str]) -> None:
        await self.engine.start_services(names)

    async def set_solo(self, on: bool | None = None) -> bool:
        return await self.engine.set_solo(on)

    async def requeue(self) -> int:
        """Messages returned from `unacked` to their queues; DevstackError while a worker generation drains."""
        return await self.engine.requeue_unacked()

    def send_input(self, name: str, text: str) -> bool:
        return self.engine.send_input(name, text)

    # ----- Redis and the broker (blocking: thread workers only) ----------------------------------
    def _client(self, db: int, *, raw_info: bool = False):
        # Keyed by address too: behind sentinels the endpoint moves from the sentinel to the master found.
        kwargs = self.engine.endpoint.connect_kwargs(db)
        key = (db, kwargs["host"], kwargs["port"], raw_info)
        client = self._clients.get(key)
        if client is None:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            # no retries: with redis-py's default backoff a Redis that is down would freeze the panel for seconds
            make = raw_info_client if raw_info else redis.Redis
            client = make(socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0), **kwargs)
            self._clients[key] = client
        return client

    def redis_stats(self) -> RedisStats:
        return redis_stats(self._client(0))

    def broker_poll(self) -> tuple[RedisStats, list | None]:
        """The Redis panel's stats and the queues (None when Redis failed), in two round trips (tui/broker_poll.py)."""
        client = self._client(1, raw_info=True)
        if self._poller is None or self._poller.client is not client:
            self._poller = BrokerPoller(client, self.engine.config.worker.queues)
        return self._poller.poll()

    def _inspector(self) -> QueueInspector:
        return QueueInspector(self._client(1), self.engine.config.worker.queues)

    def queues(self):
        return self._inspector().queues()

    def messages(self, queue: str):
        return self._inspector().messages(queue)

    def purge(self, queue: str) -> int:
        return self._inspector().purge(queue)

    def usage(self) -> dict[str, Usage]:
        """CPU% (since the previous call) and RSS summed over each service's process tree.

        The trees come from /proc/<pid>/task/*/children (a few small reads per process of the stack), or,
        where the kernel has no such files, from one pass over the whole process table (psutil's
        `children(recursive=True)` would read all of /proc once per service; on a desktop with hundreds of
        processes even one pass is most of the cost). The same `Process` objects are kept across calls so
        `cpu_percent` has a baseline."""
        roots = {name: service.pid for name, service in self.engine.services.items() if service.pid}
        if not roots:
            return {}
        children = self._children_reader()
        out: dict[str, Usage] = {}
        seen: dict[int, psutil.Process] = {}
        for name, root in roots.items():
            cpu, rss = 0.0, 0
            stack, tree = [root], []
            while stack:
                pid = stack.pop()
                tree.append(pid)
                stack.extend(children(pid))
            for pid in tree:
                proc = self._procs.get(pid)
                try:
                    if proc is None:
                        proc = psutil.Process(pid)
                    seen[pid] = proc
                    with proc.oneshot():
                        cpu += proc.cpu_percent(None)
                        rss += proc.memory_info().rss
                except psutil.Error:
                    pass
            out[name] = Usage(cpu, rss)
        self._procs = seen
        return out

    _proc_children: bool | None = None
    """Whether /proc/<pid>/task/<tid>/children exists (Linux with CONFIG_PROC_CHILDREN); None: not known yet."""

    def _children_reader(self) -> Callable[[int], list[int]]:
        if self._proc_children is None:
            self._proc_children = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
        if self._proc_children:
            return proc_children
        kids: dict[int, list[int]] = {}
        try:
            for pid, ppid in psutil._psplatform.ppid_map().items():  # /proc/*/stat, read once
                kids.setdefault(ppid, []).append(pid)
        except Exception:
            for proc in psutil.process_iter(["ppid"]):
                kids.setdefault(proc.info["ppid"], []).append(proc.pid)
        return lambda pid: kids.get(pid, ())

    # ----- live task events ------------------------------------------------------------------------
    async def task_events(self, on_event: Callable[[TaskEvent], None]) -> None:
        """Runs until cancelled."""
        redis_service = self.engine.services.get("redis")
        if redis_service is not None:  # behind sentinels the master is known only then
            await redis_service.wait_ready()
        await TaskEventFeed(self.engine.endpoint.direct_url(1), on_event, db=1).run()

    def now(self) -> float:
        return time.time()
