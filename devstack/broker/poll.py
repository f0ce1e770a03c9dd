"""What the Redis panel and the queues panel show, fetched in two round trips a second.

`redis_stats` (PING, then INFO parsed by redis-py into ~150 fields) and `QueueInspector.queues`
(SCAN for kombu's bindings, SMEMBERS for each, then LLEN and LINDEX of every priority bucket of every
queue and the unacked hash) took five round trips and about 1.3 ms of devstack's CPU a second, the
largest part of an idle TUI's polling. Here:

- PING alone: its round trip is the latency shown;
- one pipeline: INFO (the few fields shown are read from its text), LLEN of every bucket, the unacked hash;
- LINDEX (the oldest message's age) only for buckets that are not empty, in a second pipeline then;
- kombu's bindings (which queues exist beyond the configured ones) read again every BINDINGS_SECONDS.

The results are the same `RedisStats` and `QueueInfo` (tests compare both on a real redis-server).
"""
from __future__ import annotations

import time
from typing import Iterable

import redis

from .queues import QueueInfo, QueueInspector
from .redis_info import DEFAULT_DB_ROLES, RedisStats, describe_redis_error, stats_from_info

BINDINGS_SECONDS = 5.0
"""How long kombu's bindings are reused: a queue that appears (beyond the configured ones) shows within this."""


class BrokerPoller:
    """`client`: a `raw_info_client` (or `fast_fail_client(raw_info=True)`) on the broker's database
    (INFO is server-wide)."""

    def __init__(self, client: redis.Redis, configured_queues: Iterable[str] = (), *,
                 db_roles: dict[int, str] | None = None, **layout) -> None:
        self.client = client
        self.inspector = QueueInspector(client, configured_queues, bindings_ttl=BINDINGS_SECONDS, **layout)
        self.roles = dict(DEFAULT_DB_ROLES if db_roles is None else db_roles)

    def poll(self) -> tuple[RedisStats, list[QueueInfo] | None]:
        """(stats, queues); on a Redis error `stats.ok` is False (the error in words) and queues is None."""
        roles = dict(self.roles)
        inspector = self.inspector
        inspector.bindings_ttl = BINDINGS_SECONDS
        try:
            start = time.perf_counter()
            self.client.ping()
            latency = (time.perf_counter() - start) * 1000.0
            bindings = inspector.bindings()
            names = inspector.queue_names(bindings)
            keys = inspector.bucket_keys(names)
            pipe = self.client.pipeline(transaction=False)
            pipe.info()
            for key in keys:
                pipe.llen(key)
            pipe.hgetall(inspector.unacked_key)
            replies = pipe.execute(raise_on_error=False)
        except (redis.exceptions.RedisError, OSError) as exc:
            return RedisStats(ok=False, error=describe_redis_error(exc), db_roles=roles), None
        if isinstance(replies[0], Exception):
            return RedisStats(ok=False, error=describe_redis_error(replies[0]), db_roles=roles), None
        stats = stats_from_info(replies[0], latency, roles)
        lengths = replies[1:-1]
        filled = [key for key, length in zip(keys, lengths) if isinstance(length, int) and length > 0]
        tails: dict[str, object] = {}
        if filled:
            try:
                pipe = self.client.pipeline(transaction=False)
                for key in filled:
                    pipe.lindex(key, -1)
                tails = dict(zip(filled, pipe.execute(raise_on_error=False)))
            except (redis.exceptions.RedisError, OSError):
                tails = {}  # the counts stand; the oldest ages wait for the next poll
        return stats, inspector.assemble(names, lengths, tails, replies[-1], bindings)
