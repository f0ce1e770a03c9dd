"""What the Redis panel and the queues panel show, fetched in two round trips a second.

The engine's `redis_stats` (PING, then INFO parsed by redis-py into ~150 fields) and
`QueueInspector.queues` (SCAN for kombu's bindings, SMEMBERS for each, then LLEN and LINDEX of every
priority bucket of every queue and the unacked hash) took five round trips and about 1.3 ms of
devstack's CPU a second, the largest part of an idle TUI's polling. Here:

- PING alone: its round trip is the latency shown;
- one pipeline: INFO (the few fields shown are read from its text), LLEN of every bucket, the unacked hash;
- LINDEX (the oldest message's age) only for buckets that are not empty, in a second pipeline then;
- kombu's bindings (which queues exist beyond the configured ones) read again every BINDINGS_SECONDS.

The results are the engine's own `RedisStats` and `QueueInfo`, computed as `redis_stats` and
`QueueInspector.queues` compute them (tests compare both on a real redis-server).
"""
from __future__ import annotations

import re
import time

import redis

from devstack.broker import (
    DEFAULT_DB_ROLES,
    QueueInfo,
    QueueInspector,
    RedisStats,
    _loads,
    _timestamp_of,
    describe_redis_error,
)

BINDINGS_SECONDS = 5.0
"""How long kombu's bindings are reused: a queue that appears (beyond the configured ones) shows within this."""

_INFO_FIELD = re.compile(r"^(redis_version|uptime_in_seconds|used_memory|used_memory_peak|connected_clients|"
                         r"instantaneous_ops_per_sec|db\d+):([^\r\n]*)", re.M)
_DB_KEYS = re.compile(r"(?:^|,)keys=(\d+)")


def raw_info_client(**kwargs) -> redis.Redis:
    """A client whose INFO reply is left as text (redis-py would parse every field into a dict)."""
    client = redis.Redis(**kwargs)
    client.set_response_callback("INFO", lambda response, **options: response)
    return client


def stats_from_info(raw, latency_ms: float, roles: dict[int, str]) -> RedisStats:
    """`broker.redis_stats`'s RedisStats from the text of INFO."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    fields = dict(_INFO_FIELD.findall(text))
    keys: dict[int, int] = {}
    for name, value in fields.items():
        if name.startswith("db") and name[2:].isdigit():
            m = _DB_KEYS.search(value)
            keys[int(name[2:])] = int(m.group(1)) if m else 0
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


class BrokerPoller(QueueInspector):
    """`client`: a `raw_info_client` on the broker's database (INFO is server-wide)."""

    def __init__(self, client: redis.Redis, configured_queues=(), *, db_roles: dict[int, str] | None = None,
                 **kwargs) -> None:
        super().__init__(client, configured_queues, **kwargs)
        self.roles = dict(DEFAULT_DB_ROLES if db_roles is None else db_roles)
        self._bindings_cache: list | None = None
        self._bindings_at = 0.0

    def _bindings(self):
        now = time.monotonic()
        if self._bindings_cache is None or now - self._bindings_at >= BINDINGS_SECONDS:
            self._bindings_cache = super()._bindings()
            self._bindings_at = now
        return self._bindings_cache

    def poll(self) -> tuple[RedisStats, list[QueueInfo] | None]:
        """(stats, queues); on a Redis error `stats.ok` is False (the error in words) and queues is None."""
        roles = dict(self.roles)
        try:
            start = time.perf_counter()
            self.client.ping()
            latency = (time.perf_counter() - start) * 1000.0
            bindings = self._bindings()
            names = sorted({q for ex, _rk, _p, q in bindings if q and not self._is_internal(ex, q)}
                           | set(self.configured_queues))
            keys = [(name, step, self.bucket_key(name, step)) for name in names for step in self.priority_steps]
            pipe = self.client.pipeline(transaction=False)
            pipe.info()
            for _name, _step, key in keys:
                pipe.llen(key)
            pipe.hgetall(self.unacked_key)
            replies = pipe.execute(raise_on_error=False)
        except (redis.exceptions.RedisError, OSError) as exc:
            return RedisStats(ok=False, error=describe_redis_error(exc), db_roles=roles), None
        if isinstance(replies[0], Exception):
            return RedisStats(ok=False, error=describe_redis_error(replies[0]), db_roles=roles), None
        stats = stats_from_info(replies[0], latency, roles)

        lengths = replies[1:-1]
        unacked_raw = replies[-1] if isinstance(replies[-1], dict) else {}
        tails: dict[str, object] = {}
        filled = [key for (_n, _s, key), length in zip(keys, lengths) if isinstance(length, int) and length > 0]
        if filled:
            try:
                pipe = self.client.pipeline(transaction=False)
                for key in filled:
                    pipe.lindex(key, -1)
                tails = dict(zip(filled, pipe.execute(raise_on_error=False)))
            except (redis.exceptions.RedisError, OSError):
                tails = {}  # the counts stand; the oldest ages wait for the next poll

        reserved: dict[str, int] = {}
        for _tag, _t, queue, _payload in self._unacked_entries(unacked_raw, bindings):
            reserved[queue] = reserved.get(queue, 0) + 1
        now = time.time()
        infos: list[QueueInfo] = []
        i = 0
        for name in names:
            buckets: dict[int, int] = {}
            oldest: float | None = None
            for step in self.priority_steps:
                length, key = lengths[i], keys[i][2]
                i += 1
                buckets[step] = length if isinstance(length, int) else 0
                tail = tails.get(key)
                if tail is not None and not isinstance(tail, Exception):
                    payload = _loads(tail)
                    ts = _timestamp_of(payload) if isinstance(payload, dict) else None
                    if ts is not None:
                        oldest = ts if oldest is None else min(oldest, ts)
            infos.append(QueueInfo(name=name, ready=sum(buckets.values()), reserved=reserved.get(name, 0),
                                   oldest_age=max(0.0, now - oldest) if oldest is not None else None,
                                   buckets=buckets))
        return stats, infos
