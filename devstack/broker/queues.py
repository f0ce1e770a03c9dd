"""The Celery queues kombu keeps in one Redis database: counts, messages, purge and requeue."""
from __future__ import annotations

import json
import time
from bisect import bisect
from dataclasses import dataclass, field
from typing import Iterable

import redis

from .layout import (DEFAULT_PRIORITY_STEPS, DEFAULT_SEP, INTERNAL_EXCHANGES, as_text, escape_glob,
                     internal_queue, loads, message_priority, timestamp_of)
from .messages import MessageInfo, message_info


@dataclass
class QueueInfo:
    """One Celery queue: messages waiting in its lists and messages reserved by workers."""

    name: str
    ready: int = 0  # sum of LLEN over the priority buckets
    reserved: int = 0  # entries of `unacked` that belong to this queue
    oldest_age: float | None = None  # seconds, when a timestamp is known
    buckets: dict[int, int] = field(default_factory=dict)  # priority step -> LLEN

    @property
    def backlog(self) -> int:
        return self.ready + self.reserved



class QueueInspector:
    """Read (and carefully repair) the Celery queues kombu keeps in one Redis database.

    ``client`` must be connected to the broker's database (Dify: db 1). ``sep``,
    ``priority_steps`` and ``keyprefix`` mirror kombu's ``broker_transport_options``
    (``sep``, ``priority_steps``, ``global_keyprefix``).
    """

    def __init__(
        self,
        client: redis.Redis,
        configured_queues: Iterable[str] = (),
        *,
        sep: str = DEFAULT_SEP,
        priority_steps: Iterable[int] = DEFAULT_PRIORITY_STEPS,
        keyprefix: str = "",
        bindings_ttl: float = 0.0,
    ) -> None:
        self.client = client
        self.bindings_ttl = bindings_ttl
        """Seconds kombu's bindings are reused (0: read every time); a new queue shows within this."""
        self._bindings_cache: list[tuple[str, str, str, str]] | None = None
        self._bindings_at = 0.0
        self.configured_queues = [q for q in configured_queues if q]
        self.sep = sep
        self.priority_steps = tuple(sorted(int(p) for p in priority_steps)) or (0,)
        self.keyprefix = keyprefix or ""

    # -- keys ------------------------------------------------------------------------------
    def _k(self, key: str) -> str:
        return self.keyprefix + key

    @property
    def unacked_key(self) -> str:
        return self._k("unacked")

    @property
    def unacked_index_key(self) -> str:
        return self._k("unacked_index")

    def bucket_key(self, queue: str, step: int) -> str:
        """The LIST holding ``queue``'s messages of priority bucket ``step`` (0 = the bare name)."""
        return self._k(f"{queue}{self.sep}{step}" if step else queue)

    def _bucket_for(self, priority: int) -> int:
        steps = self.priority_steps
        return steps[max(bisect(steps, priority) - 1, 0)]

    # -- bindings --------------------------------------------------------------------------
    def bindings(self) -> list[tuple[str, str, str, str]]:
        """All ``(exchange, routing_key, pattern, queue)`` bindings found in Redis (cached ``bindings_ttl``)."""
        now = time.monotonic()
        if self._bindings_cache is None or now - self._bindings_at >= self.bindings_ttl:
            self._bindings_cache = self._read_bindings()
            self._bindings_at = now
        return self._bindings_cache

    def _read_bindings(self) -> list[tuple[str, str, str, str]]:
        prefix = self._k("_kombu.binding.")
        keys = sorted({as_text(k) for k in self.client.scan_iter(match=escape_glob(prefix) + "*", count=500)})
        if not keys:
            return []
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.smembers(key)
        result: list[tuple[str, str, str, str]] = []
        for key, members in zip(keys, pipe.execute(raise_on_error=False)):
            if not isinstance(members, (set, list)):
                continue  # not a SET (WRONGTYPE): not kombu's
            exchange = key[len(prefix):]
            for member in members:
                parts = as_text(member).split(self.sep)
                if len(parts) != 3:
                    continue
                routing_key, pattern, queue = parts
                result.append((exchange, routing_key, pattern, queue))
        return result

    @staticmethod
    def _is_internal(exchange: str, queue: str) -> bool:
        return exchange in INTERNAL_EXCHANGES or internal_queue(queue)

    def queue_names(self, bindings: list[tuple[str, str, str, str]] | None = None) -> list[str]:
        """Queues bound in Redis plus the configured ones, without Celery's internal ones; sorted."""
        bound = self.bindings() if bindings is None else bindings
        names = {q for ex, _rk, _p, q in bound if q and not self._is_internal(ex, q)}
        names.update(self.configured_queues)
        return sorted(names)

    def _route(self, bindings: list[tuple[str, str, str, str]], exchange: str, routing_key: str) -> list[str]:
        """Which queue(s) a message published to (exchange, routing_key) belongs to."""
        if not exchange:
            return [routing_key]
        bound = [(rk, q) for ex, rk, _p, q in bindings if ex == exchange]
        exact = [q for rk, q in bound if rk == routing_key]
        if exact:
            return sorted(set(exact))
        if bound and all(rk == "" for rk, _q in bound):  # fanout-style binding
            return sorted({q for _rk, q in bound})
        return [routing_key or exchange]

    def _unacked_entries(self, raw: dict, bindings) -> list[tuple[str, float, str, dict | None]]:
        """(delivery tag, _, queue, payload) for every parsable entry of the unacked hash."""
        out = []
        for tag, value in raw.items():
            data = loads(value)
            payload, exchange, routing_key = None, "", ""
            if isinstance(data, list) and len(data) >= 3:
                payload, exchange, routing_key = data[0], as_text(data[1] or ""), as_text(data[2] or "")
            elif isinstance(data, dict):
                payload = data
                info = (data.get("properties") or {}).get("delivery_info") or {}
                exchange, routing_key = as_text(info.get("exchange") or ""), as_text(info.get("routing_key") or "")
            else:
                continue
            for queue in self._route(bindings, exchange, routing_key):
                out.append((as_text(tag), 0.0, queue, payload if isinstance(payload, dict) else None))
        return out

    # -- reading ---------------------------------------------------------------------------
    def queues(self) -> list[QueueInfo]:
        """Counts for every queue, read in one pipelined round trip (after queue discovery)."""
        bindings = self.bindings()
        names = self.queue_names(bindings)
        keys = self.bucket_keys(names)
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.llen(key)
            pipe.lindex(key, -1)
        pipe.hgetall(self.unacked_key)
        replies = pipe.execute(raise_on_error=False)
        return self.assemble(names, replies[0:-1:2], dict(zip(keys, replies[1:-1:2])), replies[-1], bindings)

    def bucket_keys(self, names: list[str]) -> list[str]:
        """Every priority bucket's LIST of every queue in ``names``, in the order `assemble` expects."""
        return [self.bucket_key(name, step) for name in names for step in self.priority_steps]

    def assemble(self, names: list[str], lengths: list, tails: dict[str, object], unacked_raw: object,
                 bindings: list[tuple[str, str, str, str]]) -> list[QueueInfo]:
        """QueueInfo per queue from the raw replies: LLEN of each of ``bucket_keys(names)``, the oldest
        message (LINDEX -1) of the buckets read (by key; a missing key: age unknown) and HGETALL of
        ``unacked``. Error replies count as empty."""
        reserved: dict[str, int] = {}
        entries = self._unacked_entries(unacked_raw if isinstance(unacked_raw, dict) else {}, bindings)
        for _tag, _t, queue, _payload in entries:
            reserved[queue] = reserved.get(queue, 0) + 1
        now = time.time()
        infos: list[QueueInfo] = []
        steps = iter(zip(self.bucket_keys(names), lengths))
        for name in names:
            buckets: dict[int, int] = {}
            oldest: float | None = None
            for step in self.priority_steps:
                key, length = next(steps)
                buckets[step] = length if isinstance(length, int) else 0
                ts = _oldest_timestamp(tails.get(key))
                if ts is not None:
                    oldest = ts if oldest is None else min(oldest, ts)
            infos.append(QueueInfo(name=name, ready=sum(buckets.values()), reserved=reserved.get(name, 0),
                                   oldest_age=max(0.0, now - oldest) if oldest is not None else None,
                                   buckets=buckets))
        return infos

    def messages(self, queue: str, limit: int = 200) -> list[MessageInfo]:
        """Up to ``limit`` messages of ``queue``: ready ones in the order a worker takes them
        (bucket 0 first, oldest first within a bucket), then reserved ones by delivery time."""
        if limit <= 0:
            return []
        out: list[MessageInfo] = []
        pipe = self.client.pipeline(transaction=False)
        for step in self.priority_steps:
            pipe.lrange(self.bucket_key(queue, step), -limit, -1)
        for items in pipe.execute():
            for raw in reversed(items or []):  # index -1 is the oldest
                out.append(message_info(loads(raw), queue, "ready"))
                if len(out) >= limit:
                    return out

        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.unacked_key)
        pipe.zrange(self.unacked_index_key, 0, -1, withscores=True)
        raw_unacked, index = pipe.execute()
        if not raw_unacked:
            return out
        delivered = {as_text(tag): score for tag, score in (index or [])}
        entries = [
            (tag, delivered.get(tag, float("inf")), q, payload)
            for tag, _t, q, payload in self._unacked_entries(raw_unacked, self.bindings())
            if q == queue
        ]
        entries.sort(key=lambda e: e[1])
        for _tag, _t, _q, payload in entries:
            out.append(message_info(payload, queue, "reserved"))
            if len(out) >= limit:
                break
        return out

    # -- writing ---------------------------------------------------------------------------
    def purge(self, queue: str) -> int:
        """Delete every priority bucket of ``queue``; returns how many messages were removed.

        Reserved (unacked) messages are not touched: they belong to a worker.
        """
        pipe = self.client.pipeline(transaction=True)
        for step in self.priority_steps:
            key = self.bucket_key(queue, step)
            pipe.llen(key)
            pipe.delete(key)
        replies = pipe.execute()
        return sum(n for n in replies[::2] if isinstance(n, int))

    def requeue_unacked(self, queues: Iterable[str] | None = None) -> int:
        """Put messages left in ``unacked`` back at the head of their queue (the end workers
        ``BRPOP`` from), like kombu's own restore, removing each from ``unacked`` and
        ``unacked_index`` in the same MULTI/EXEC (WATCHed, so a concurrent ack/restore wins).

        Only call this when no live worker holds those messages (e.g. after a SIGKILL),
        otherwise they would run twice. ``queues`` restricts which queues are repaired.
        Returns the number of messages requeued.
        """
        wanted = set(queues) if queues is not None else None
        bindings = self.bindings()
        raw = self.client.hgetall(self.unacked_key)
        if not raw:
            return 0
        delivered = {
            as_text(tag): score
            for tag, score in self.client.zrange(self.unacked_index_key, 0, -1, withscores=True)
        }
        tags = sorted((as_text(t) for t in raw), key=lambda t: delivered.get(t, 0.0), reverse=True)
        # Newest first: each RPUSH lands at the head, so the oldest delivery ends up taken first.
        count = 0
        for tag in tags:
            count += self._requeue_one(tag, bindings, wanted)
        return count

    def requeue_stale(self, live_since: float | None, requeue: bool = False) -> int:
        """Count (or, with ``requeue``, put back) the messages in ``unacked`` delivered before
        ``live_since``, the start of the live worker generation: after a killed generation those
        belong to no one, since the live one only holds what was delivered after it started.
        None means no worker runs, so every entry is stale."""
        held = {as_text(t) for t in self.client.hkeys(self.unacked_key)}
        delivered = self.client.zrange(self.unacked_index_key, 0, -1, withscores=True)
        tags = [tag for tag in (as_text(t) for t, when in delivered if live_since is None or when < live_since)
                if tag in held]
        if not requeue:
            return len(tags)
        if live_since is None:
            return self.requeue_unacked()
        bindings = self.bindings()
        return sum(self._requeue_one(tag, bindings, None) for tag in tags)

    def _requeue_one(self, tag: str, bindings, wanted: set[str] | None) -> int:
        def restore(pipe: redis.client.Pipeline) -> int:
            value = pipe.hget(self.unacked_key, tag)
            if value is None:
                pipe.multi()
                return 0  # acked or restored meanwhile
            data = loads(value)
            if not (isinstance(data, list) and len(data) >= 3 and isinstance(data[0], dict)):
                pipe.multi()
                return 0  # not something we understand: leave it alone
            payload, exchange, routing_key = data[0], as_text(data[1] or ""), as_text(data[2] or "")
            targets = self._route(bindings, exchange, routing_key)
            if wanted is not None and not (set(targets) & wanted):
                pipe.multi()
                return 0
            try:  # what kombu's _do_restore_message sets
                payload["headers"]["redelivered"] = True
                payload["properties"]["delivery_info"]["redelivered"] = True
            except (KeyError, TypeError):
                pass
            bucket = self._bucket_for(message_priority(payload))
            body = json.dumps(payload)
            pipe.multi()
            pipe.zrem(self.unacked_index_key, tag)
            pipe.hdel(self.unacked_key, tag)
            for queue in targets:
                pipe.rpush(self.bucket_key(queue, bucket), body)
            return 1

        return self.client.transaction(restore, self.unacked_key, value_from_callable=True)



def _oldest_timestamp(tail: object) -> float | None:
    if tail is None or isinstance(tail, Exception):
        return None
    payload = loads(tail)
    return timestamp_of(payload) if isinstance(payload, dict) else None
