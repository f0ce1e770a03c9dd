"""Where the TUI's data comes from: the `Source` protocol, which `devstack.api.Stack` (the running
stack) and the snapshot tests' deterministic stub both implement.

The app and its panels talk only to a Source, never to the engine directly. Methods marked
"blocking" do network I/O and are called from the poll thread or thread workers, never on the UI loop.
"""
from __future__ import annotations

from typing import Callable, Protocol

from devstack.api import HeaderInfo, MessageInfo, QueueInfo, RedisStats, ServiceRow, TaskEvent, TopologyState, Usage

__all__ = ["Source", "HeaderInfo", "ServiceRow", "Usage"]


class Source(Protocol):
    poll_seconds: float
    """How long after one Redis/queue poll finished the next one starts."""
    usage_seconds: float
    """How often the process list samples CPU and memory."""

    @property
    def redis_ready(self) -> bool: ...

    def subscribe(self, callback: Callable[[object], None]) -> Callable[[], None]: ...
    async def start(self, request_shutdown: Callable[[], None]) -> None: ...
    async def shutdown(self) -> None: ...

    def header(self) -> HeaderInfo: ...
    def services(self) -> list[ServiceRow]: ...
    def usage(self) -> dict[str, Usage]: ...
    def now(self) -> float: ...

    async def restart(self, names: list[str]) -> object: ...
    async def stop(self, names: list[str]) -> object: ...
    async def start_services(self, names: list[str]) -> object: ...
    async def set_solo(self, on: bool | None = None) -> bool: ...
    async def set_debug(self, name: str, on: bool, port: int | None = None) -> dict: ...
    async def requeue(self) -> int: ...
    async def failover(self) -> dict: ...
    def send_input(self, name: str, text: str) -> bool: ...

    def broker_poll(self) -> tuple[RedisStats, list[QueueInfo] | None]:
        """Blocking."""
    def messages(self, queue: str) -> list[MessageInfo]:
        """Blocking."""
    def purge(self, queue: str) -> int:
        """Blocking."""
    def redis_topology(self) -> TopologyState | None:
        """Blocking: a sentinel group's or cluster's state (None: one Redis server)."""

    async def task_events(self, on_event: Callable[[TaskEvent], None]) -> None:
        """Runs until cancelled."""

    def task(self, task_id: str) -> dict:
        """Blocking: the task's history row with `where` and `where_detail`."""
    def replay(self, task_id: str, queue: str | None = None) -> dict:
        """Blocking: the task sent again; the new id in `id`."""
    def revoke(self, task_id: str, terminate: bool = False, signal: str = "TERM") -> dict:
        """Blocking."""

    def beat(self) -> dict:
        """Blocking: beat's schedule, {"entries": [...], "file", "file_error"}."""
    def beat_run(self, name: str) -> dict:
        """Blocking: the entry's task sent now; the new id in `id`."""
