"""Readiness probes: when is a started service actually usable?

A probe is an object with `async wait()` that returns once the service is ready (or raises
ProbeFailed). Log-based probes are fed the service's lines; the others poll quickly (20-50 ms) because
start-up time is what a developer feels many times a day.
"""
from __future__ import annotations

import asyncio
import re
from typing import Callable

from .resp import RedisReplyError, raw_command


class ProbeFailed(Exception):
    pass


class Probe:
    """Ready as soon as the process runs (no probe configured)."""

    def feed(self, line: str) -> None:
        pass

    def reset(self) -> None:
        pass

    async def wait(self) -> None:
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

    async def wait(self) -> None:
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

    async def wait(self) -> None:
        while True:
            status = await self.check()
            if status is not None and status < 500:
                return
            await asyncio.sleep(self.interval)


class RedisProbe(Probe):
    """Ready only when an authenticated PING answers PONG.

    A plain-TCP Redis (every Redis devstack launches) is probed with two RESP commands on a raw socket:
    importing redis-py's asyncio client costs ~45 ms on the start-up path, longer than redis-server
    takes to listen. TLS endpoints go through redis-py.
    """

    def __init__(self, connect_kwargs: dict, interval: float = 0.01):
        self.connect_kwargs = connect_kwargs
        self.interval = interval
        self.last_error: str | None = None

    async def ping(self) -> bool:
        if self.connect_kwargs.get("ssl"):
            return await self._ping_redis_py()
        return await self._ping_raw()

    async def _ping_raw(self) -> bool:
        try:
            reply = await raw_command(self.connect_kwargs, "PING")
        except RedisReplyError as exc:  # LOADING while the AOF loads, NOAUTH, WRONGPASS
            self.last_error = str(exc)
            return False
        except (OSError, asyncio.TimeoutError, ValueError) as exc:
            self.last_error = _connect_error(exc)
            return False
        if reply == "PONG":
            return True
        self.last_error = f"unexpected answer to PING: {reply[:80]!r}"
        return False

    async def _ping_redis_py(self) -> bool:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # no retries: redis-py's default backoff turns one refused connection into seconds of waiting
        client = aioredis.Redis(socket_connect_timeout=1, socket_timeout=2, retry=Retry(NoBackoff(), 0),
                                **self.connect_kwargs)
        try:
            return bool(await client.ping())
        except Exception as exc:  # connection refused while it boots, LOADING while AOF loads
            self.last_error = str(exc)
            return False
        finally:
            await client.aclose()

    async def wait(self) -> None:
        while not await self.ping():
            await asyncio.sleep(self.interval)


class SentinelProbe(RedisProbe):
    """Behind sentinels: ask them, in order, which master serves `master_name`; ready when that master
    answers an authenticated PING. The master found becomes `endpoint.master`, where devstack's own
    connections go; the apps get the sentinel URL and find the master themselves."""

    def __init__(self, endpoint, interval: float = 0.05):
        super().__init__(endpoint.connect_kwargs(), interval)
        self.endpoint = endpoint

    async def ping(self) -> bool:
        master = await self.ask_sentinels()
        if master is None:
            return False
        self.endpoint.master = master
        self.connect_kwargs = self.endpoint.connect_kwargs()
        return await super().ping()

    async def ask_sentinels(self) -> tuple[str, int] | None:
        errors = []
        for host, port in self.endpoint.sentinels:
            try:
                auth = {"host": host, "port": port, "password": self.endpoint.sentinel_password}
                reply = await raw_command(auth, "SENTINEL", "get-master-addr-by-name",
                                          self.endpoint.master_name or "", timeout=1.0)
            except RedisReplyError as exc:
                errors.append(f"sentinel {host}:{port}: {exc}")
                continue
            except (OSError, asyncio.TimeoutError, ValueError) as exc:
                errors.append(f"sentinel {host}:{port}: {_connect_error(exc)}")
                continue
            if isinstance(reply, list) and len(reply) == 2 and str(reply[1]).isdigit():
                return str(reply[0]), int(reply[1])
            errors.append(f"sentinel {host}:{port} knows no master named {self.endpoint.master_name!r}")
        self.last_error = "; ".join(errors) or "no sentinel configured"
        return None


def _connect_error(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def http_probe_from_url(url: str) -> HttpProbe:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return HttpProbe(parts.hostname or "127.0.0.1", parts.port or 80, path)
