"""What the Redis panel shows: PING latency and INFO figures, Redis errors in words, no-retry clients."""
from __future__ import annotations

import asyncio
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import redis


DEFAULT_DB_ROLES = {0: "cache", 1: "broker/results"}


@dataclass
class RedisStats:
    ok: bool
    error: str | None = None
    latency_ms: float | None = None
    version: str | None = None
    uptime_s: int | None = None
    used_memory: int | None = None
    peak_memory: int | None = None
    clients: int | None = None
    ops_per_sec: int | None = None
    keys_per_db: dict[int, int] = field(default_factory=dict)
    db_roles: dict[int, str] = field(default_factory=lambda: dict(DEFAULT_DB_ROLES))


def describe_redis_error(exc: BaseException) -> str:
    """A Redis failure in words a person acts on: "connection refused", "NOAUTH: password
    required", "WRONGPASS: wrong password (or user)", "timeout", ..."""
    code = getattr(exc, "status_code", None)
    msg = str(exc)
    low = msg.lower()
    if code == "WRONGPASS" or "wrongpass" in low or "invalid username-password" in low or "invalid password" in low:
        return "WRONGPASS: wrong password (or user) for Redis"
    if code == "NOAUTH" or "noauth" in low or "authentication required" in low or (
        "hello must be called" in low
    ):
        return "NOAUTH: password required"
    if "called without any password configured" in low or "no password is set" in low:
        return "AUTH failed: this Redis has no password configured"
    if code == "NOPERM" or isinstance(exc, getattr(redis.exceptions, "NoPermissionError", ())) or "noperm" in low:
        return f"NOPERM: user lacks permission ({msg})"
    if isinstance(exc, (redis.exceptions.TimeoutError, TimeoutError, socket.timeout, asyncio.TimeoutError)) or (
        "timed out" in low or "timeout" in low
    ):
        return "timeout"
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, ConnectionRefusedError) or isinstance(cause, ConnectionRefusedError) or (
        "connection refused" in low or "error 111 " in low or "error 61 " in low
    ):
        return "connection refused"
    if isinstance(cause, socket.gaierror) or "name or service not known" in low or "nodename nor servname" in low:
        return "unknown host"
    if "connection reset" in low or "closed by server" in low or "connection closed" in low:
        return "connection closed by server"
    if isinstance(exc, redis.exceptions.InvalidResponse) or "protocol error" in low:
        return "protocol error (is this a Redis server?)"
    if "loading" in low and "dataset" in low:
        return "loading: Redis is loading its dataset"
    if isinstance(exc, redis.exceptions.ConnectionError):
        return f"connection error: {msg}" if msg else "connection error"
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def fast_fail_client(url: str | None = None, *, timeout: float = 2.0, raw_info: bool = False,
                     **kwargs: Any) -> redis.Redis:
    """A client for probes, panels and one-off commands: no retries, short timeouts.

    redis-py 6+ retries connection errors (authentication errors included) three times with a
    backoff by default, so a wrong password or a Redis that is down takes seconds to report (one
    refused connection took 4.5 s with redis-py 8). Pass such a client to :func:`redis_stats` (or a
    :class:`QueueInspector`) when an answer is wanted now. ``url`` or redis-py's connection keywords
    (``host``, ``port``, ``password``, ``db``, ``ssl``...); ``raw_info``: see :func:`raw_info_client`.
    """
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    kwargs.setdefault("socket_connect_timeout", timeout)
    kwargs.setdefault("socket_timeout", timeout)
    kwargs.setdefault("retry", Retry(NoBackoff(), 0))
    client = redis.Redis.from_url(url, **kwargs) if url else redis.Redis(**kwargs)
    if raw_info:
        _keep_info_raw(client)
    return client


def redis_stats(client: redis.Redis, db_roles: dict[int, str] | None = None) -> RedisStats:
    """PING latency and the INFO figures of the Redis panel; never raises for Redis errors.

    Uses ``client`` as configured, retries included: see :func:`fast_fail_client`.
    """
    roles = dict(DEFAULT_DB_ROLES if db_roles is None else db_roles)
    try:
        start = time.perf_counter()
        client.ping()
        latency = (time.perf_counter() - start) * 1000.0
        info = client.info()
    except (redis.exceptions.RedisError, OSError) as exc:
        return RedisStats(ok=False, error=describe_redis_error(exc), db_roles=roles)
    keys = {int(name[2:]): int(value.get("keys", 0)) for name, value in info.items()
            if isinstance(name, str) and name.startswith("db") and name[2:].isdigit() and isinstance(value, dict)}
    fields = {name: str(value) for name, value in info.items() if not isinstance(value, dict)}
    return _stats(fields, keys, latency, roles)


_INFO_FIELD = re.compile(r"^(redis_version|uptime_in_seconds|used_memory|used_memory_peak|connected_clients|"
                         r"instantaneous_ops_per_sec|db\d+):([^\r\n]*)", re.M)
_DB_KEYS = re.compile(r"(?:^|,)keys=(\d+)")


def raw_info_client(**kwargs: Any) -> redis.Redis:
    """A client whose INFO reply is left as text (redis-py would parse every field into a dict):
    the few fields the panel shows are read from the text by :func:`stats_from_info`."""
    client = redis.Redis(**kwargs)
    _keep_info_raw(client)
    return client


def _keep_info_raw(client: redis.Redis) -> None:
    client.set_response_callback("INFO", lambda response, **options: response)


def stats_from_info(raw: Any, latency_ms: float, roles: dict[int, str]) -> RedisStats:
    """:func:`redis_stats`'s RedisStats from the text of INFO."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    fields = dict(_INFO_FIELD.findall(text))
    keys: dict[int, int] = {}
    for name, value in fields.items():
        if name.startswith("db") and name[2:].isdigit():
            m = _DB_KEYS.search(value)
            keys[int(name[2:])] = int(m.group(1)) if m else 0
    return _stats(fields, keys, latency_ms, roles)


def _stats(fields: dict[str, str], keys: dict[int, int], latency_ms: float, roles: dict[int, str]) -> RedisStats:
    for db in roles:
        keys.setdefault(db, 0)

    def num(key: str) -> int | None:
        value = fields.get(key)
        try:
            return int(value) if value is not None else None
        except ValueError:
            try:  # redis-py turns "1.0" into a float, which int() truncates
                return int(float(value))
            except ValueError:
                return None

    version = fields.get("redis_version")
    return RedisStats(
        ok=True,
        latency_ms=round(latency_ms, 3),
        version=version.strip() if version is not None else None,
        uptime_s=num("uptime_in_seconds"),
        used_memory=num("used_memory"),
        peak_memory=num("used_memory_peak"),
        clients=num("connected_clients"),
        ops_per_sec=num("instantaneous_ops_per_sec"),
        keys_per_db=dict(sorted(keys.items())),
        db_roles=roles,
    )
