"""Readiness probes: when is a started service actually usable?

A probe is an object with `async wait(service)` that returns once the service is ready (or raises
ProbeFailed). Log-based probes are fed the service's lines; the others poll quickly (20-50 ms) because
start-up time is what a developer feels many times a day.
"""
from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .supervisor import Service


class ProbeFailed(Exception):
    pass


class Probe:
    """Ready as soon as the process runs (no probe configured)."""

    def feed(self, line: str) -> None:
        pass

    def reset(self) -> None:
        pass

    async def wait(self, service: "Service") -> None:
        return None


class LogProbe(Probe):
    """Ready when a line matches `pattern`; then optionally confirmed by `confirm(match)`."""

    def __init__(self, pattern: str, confirm: Callable[[re.Match], "asyncio.Future | None"] | None = None):
        self.pattern = re.compile(pattern)
        self.confirm = confirm
        self._matched: asyncio.Future | None = None

    def reset(self) -> None:
        self._matched = asyncio.get_running_loop().create_future()

    def feed(self, line: str) -> None:
        if self._matched is not None and not self._matched.done():
            m = self.pattern.search(line)
            if m:
                self._matched.set_result(m)

    async def wait(self, service: "Service") -> None:
        if self._matched is None:
            self.reset()
        match = await self._matched
        if self.confirm is not None:
            await self.confirm(match)


class HttpProbe(Probe):
    """Ready when an HTTP GET answers with any status below 500 (a 404 still means "serving")."""

    def __init__(self, host: str, port: int, path: str = "/", interval: float = 0.03):
        self.host, self.port, self.path, self.interval = host, port, path, interval

    async def check(self) -> int | None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 1)
        except (OSError, asyncio.TimeoutError):
            return None
        try:
            writer.write(f"GET {self.path} HTTP/1.0\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 5)
            parts = status_line.split()
            return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
        except (OSError, asyncio.TimeoutError, ValueError):
            return None
        finally:
            writer.close()

    async def wait(self, service: "Service") -> None:
        while True:
            status = await self.check()
            if status is not None and status < 500:
                return
            await asyncio.sleep(self.interval)


class RedisProbe(Probe):
    """Ready only when an authenticated PING answers PONG."""

    def __init__(self, connect_kwargs: dict, interval: float = 0.02):
        self.connect_kwargs = connect_kwargs
        self.interval = interval
        self.last_error: str | None = None

    async def ping(self) -> bool:
        import redis.asyncio as aioredis

        client = aioredis.Redis(socket_connect_timeout=1, socket_timeout=2, **self.connect_kwargs)
        try:
            return bool(await client.ping())
        except Exception as exc:  # connection refused while it boots, LOADING while AOF loads
            self.last_error = str(exc)
            return False
        finally:
            await client.aclose()

    async def wait(self, service: "Service") -> None:
        while not await self.ping():
            await asyncio.sleep(self.interval)


def http_probe_from_url(url: str) -> HttpProbe:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return HttpProbe(parts.hostname or "127.0.0.1", parts.port or 80, path)
