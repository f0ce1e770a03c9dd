"""Supervised: what the engine and the front-ends rely on in a service, launched (`Service`) or attached
(`AttachedRedis`)."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from .events import State


@runtime_checkable  # tests check both kinds against it
class Supervised(Protocol):
    """One entry of `Engine.services`."""

    name: str
    state: State
    pid: int | None
    restarts: int
    started_at: float | None
    held: bool  # stopped by a command: reloads leave it stopped

    def start(self) -> None:
        """Start; returns at once (watch `wait_ready` or the bus)."""

    async def stop(self) -> None:
        """Stop and wait until it is gone."""

    async def restart(self) -> None: ...

    def hold(self) -> None:
        """Do not restart on exit any more (the stack is shutting down)."""

    def close(self) -> None:
        """Release what outlives the process (log files) at shutdown."""

    async def wait_ready(self) -> None: ...

    async def wait_spawned(self) -> None:
        """Until its own process runs (at once when there is none to launch)."""

    def send_input(self, text: str) -> bool:
        """A line to its stdin; False when it takes no input."""

    @property
    def running(self) -> bool: ...

    def status(self) -> dict:
        """The dict behind `devstack status --json` for this service."""
