"""Broker inspection: what is waiting in the Celery queues kept in Redis, and what the workers do.

Everything here reads (and, for ``purge`` / ``requeue_unacked``, writes) the key layout kombu's
Redis transport uses (see docs / shared notes "Celery on Redis"):

* a queue is up to four LISTs, one per priority bucket: ``<queue>``, ``<queue>\\x06\\x163``,
  ``<queue>\\x06\\x166``, ``<queue>\\x06\\x169``. Producers ``LPUSH``, workers ``BRPOP``: the oldest
  message of a bucket is at index -1, and bucket 0 is drained before bucket 3, and so on;
* ``_kombu.binding.<exchange>`` SETs with members ``routing_key<sep>pattern<sep>queue`` say which
  queues exist;
* the ``unacked`` HASH (delivery tag -> JSON ``[message, exchange, routing_key]``) and the
  ``unacked_index`` ZSET (delivery tag -> delivery time) hold what workers have reserved;
* task events are published (pub/sub, nothing stored) on ``<keyprefix>/<db>.celeryev/<routing key>``,
  e.g. ``/1.celeryev/task.received``, or ``/1.celeryev/task.multi`` with a JSON list of events when
  a prefork worker batches them.

Safety rules: nothing in this module ever unpickles a message (only ``application/json`` bodies are
decoded; other payloads are shown as ``<binary payload not decoded>``), and the user's Celery app is
never imported: :func:`worker_ping` and :func:`active_queues` use a bare ``celery.Celery`` bound to the
broker URL. This module must not import ``textual`` or anything from ``tui``.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import socket
import time
from bisect import bisect
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal

import redis

log = logging.getLogger(__name__)

__all__ = [
    "QueueInfo",
    "MessageInfo",
    "QueueInspector",
    "RedisStats",
    "redis_stats",
    "describe_redis_error",
    "fast_fail_client",
    "TaskEvent",
    "TaskEventFeed",
    "worker_ping",
    "active_queues",
    "BINARY_PAYLOAD",
]

DEFAULT_SEP = "\x06\x16"
DEFAULT_PRIORITY_STEPS = (0, 3, 6, 9)
BINARY_PAYLOAD = "<binary payload not decoded>"

# Exchanges Celery uses for its own plumbing (remote control, replies, events): their bindings
# are not work queues, and stale members stay behind after a worker is SIGKILLed.
_INTERNAL_EXCHANGES = frozenset({"celery.pidbox", "reply.celery.pidbox", "celeryev"})


def _internal_queue(name: str) -> bool:
    return name.endswith(".celery.pidbox") or name.startswith("celeryev.") or name == "celeryev"


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _loads(raw: Any) -> Any:
    """JSON-decode a stored value; None when it is not JSON (never anything else)."""
    try:
        return json.loads(_text(raw))
    except (ValueError, TypeError):
        return None


def _is_json(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "application/json"


def _decode_body(payload: dict) -> tuple[Any, bool]:
    """Decode a kombu message body, but only an ``application/json`` one.

    Returns ``(value, True)`` on success and ``(None, False)`` for anything else (pickle, yaml,
    msgpack, broken base64...): the caller shows it as a binary payload.
    """
    if not _is_json(str(payload.get("content-type") or "")):
        return None, False
    body = payload.get("body")
    props = payload.get("properties") or {}
    if not isinstance(props, dict):
        props = {}
    try:
        if props.get("body_encoding") == "base64":
            body = base64.b64decode(body)
        if isinstance(body, bytes):
            body = body.decode(str(payload.get("content-encoding") or "utf-8"))
        if isinstance(body, str):
            return json.loads(body), True
        return body, True  # already structured (very old producers)
    except (binascii.Error, ValueError, TypeError, LookupError):
        return None, False


def _message_priority(payload: dict) -> int:
    """The message priority as kombu computes it for the Redis transport (clamped to 0..9)."""
    try:
        return max(min(int(payload["properties"]["priority"]), 9), 0)
    except (TypeError, ValueError, KeyError):
        return 0


def _timestamp_of(payload: dict) -> float | None:
    """A publish timestamp, if the producer stored one (Celery does not by default)."""
    headers = payload.get("headers") or {}
    props = payload.get("properties") or {}
    for source in (props, headers):
        if not isinstance(source, dict):
            continue
        for key in ("timestamp", "sent_at", "published_at"):
            value = source.get(key)
            if isinstance(value, (int, float)) and value > 0:
                # Some producers use milliseconds.
                return float(value) / 1000.0 if value > 1e11 else float(value)
    return None


# ---------------------------------------------------------------------------------------------
# Queue inspection
# ---------------------------------------------------------------------------------------------


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


@dataclass
class MessageInfo:
    """One message, decoded for display (reprs only: never the live objects)."""

    task: str | None
    id: str | None
    args: str
    kwargs: str
    eta: str | None
    priority: int | None
    retries: int | None
    queue: str
    state: Literal["ready", "reserved"]
    raw_content_type: str


def _message_info(payload: Any, queue: str, state: str) -> MessageInfo:
    if not isinstance(payload, dict):
        return MessageInfo(None, None, BINARY_PAYLOAD, "", None, None, None, queue, state, "")
    ctype = str(payload.get("content-type") or "")
    headers = payload.get("headers") or {}
    if not isinstance(headers, dict):
        headers = {}
    props = payload.get("properties") or {}
    if not isinstance(props, dict):
        props = {}
    priority = props.get("priority")
    priority = priority if isinstance(priority, int) else None

    if "task" in headers:  # protocol 2
        task = headers.get("task")
        task_id = headers.get("id")
        eta = headers.get("eta")
        retries = headers.get("retries")
        args_repr = headers.get("argsrepr")
        kwargs_repr = headers.get("kwargsrepr")
        if not _is_json(ctype):
            # Not JSON (pickle, msgpack, yaml...): the body is never decoded, so show no args.
            args_repr, kwargs_repr = BINARY_PAYLOAD, ""
        elif args_repr is None or kwargs_repr is None:
            body, ok = _decode_body(payload)
            if not ok:
                args_repr = args_repr if args_repr is not None else BINARY_PAYLOAD
                kwargs_repr = kwargs_repr if kwargs_repr is not None else ""
            else:
                b_args, b_kwargs = (), {}
                if isinstance(body, list) and len(body) >= 2:
                    b_args, b_kwargs = body[0], body[1]
                if args_repr is None:
                    args_repr = repr(tuple(b_args) if isinstance(b_args, list) else b_args)
                if kwargs_repr is None:
                    kwargs_repr = repr(b_kwargs)
    else:  # protocol 1: everything is in the body
        body, ok = _decode_body(payload)
        if not ok or not isinstance(body, dict):
            return MessageInfo(
                task=headers.get("task") if isinstance(headers.get("task"), str) else None,
                id=props.get("correlation_id") if isinstance(props.get("correlation_id"), str) else None,
                args=BINARY_PAYLOAD,
                kwargs="",
                eta=None,
                priority=priority,
                retries=None,
                queue=queue,
                state=state,  # type: ignore[arg-type]
                raw_content_type=ctype,
            )
        task = body.get("task")
        task_id = body.get("id")
        eta = body.get("eta")
        retries = body.get("retries")
        b_args = body.get("args", ())
        args_repr = repr(tuple(b_args) if isinstance(b_args, list) else b_args)
        kwargs_repr = repr(body.get("kwargs", {}))

    return MessageInfo(
        task=str(task) if task is not None else None,
        id=str(task_id) if task_id is not None else None,
        args=str(args_repr),
        kwargs=str(kwargs_repr),
        eta=str(eta) if eta is not None else None,
        priority=priority,
        retries=retries if isinstance(retries, int) else None,
        queue=queue,
        state=state,  # type: ignore[arg-type]
        raw_content_type=ctype,
    )


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
    ) -> None:
        self.client = client
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
    def _bindings(self) -> list[tuple[str, str, str, str]]:
        """All ``(exchange, routing_key, pattern, queue)`` bindings found in Redis."""
        prefix = self._k("_kombu.binding.")
        keys = sorted({_text(k) for k in self.client.scan_iter(match=_escape_glob(prefix) + "*", count=500)})
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
                parts = _text(member).split(self.sep)
                if len(parts) != 3:
                    continue
                routing_key, pattern, queue = parts
                result.append((exchange, routing_key, pattern, queue))
        return result

    @staticmethod
    def _is_internal(exchange: str, queue: str) -> bool:
        return exchange in _INTERNAL_EXCHANGES or _internal_queue(queue)

    def queue_names(self) -> list[str]:
        """Queues bound in Redis plus the configured ones, without Celery's internal ones; sorted."""
        names = {q for ex, _rk, _p, q in self._bindings() if q and not self._is_internal(ex, q)}
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
            data = _loads(value)
            payload, exchange, routing_key = None, "", ""
            if isinstance(data, list) and len(data) >= 3:
                payload, exchange, routing_key = data[0], _text(data[1] or ""), _text(data[2] or "")
            elif isinstance(data, dict):
                payload = data
                info = (data.get("properties") or {}).get("delivery_info") or {}
                exchange, routing_key = _text(info.get("exchange") or ""), _text(info.get("routing_key") or "")
            else:
                continue
            for queue in self._route(bindings, exchange, routing_key):
                out.append((_text(tag), 0.0, queue, payload if isinstance(payload, dict) else None))
        return out

    # -- reading ---------------------------------------------------------------------------
    def queues(self) -> list[QueueInfo]:
        """Counts for every queue, read in one pipelined round trip (after queue discovery)."""
        bindings = self._bindings()
        names = sorted(
            {q for ex, _rk, _p, q in bindings if q and not self._is_internal(ex, q)}
            | set(self.configured_queues)
        )
        steps = self.priority_steps
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            for step in steps:
                key = self.bucket_key(name, step)
                pipe.llen(key)
                pipe.lindex(key, -1)
        pipe.hgetall(self.unacked_key)
        replies = pipe.execute(raise_on_error=False)
        unacked_raw = replies[-1] if isinstance(replies[-1], dict) else {}

        reserved: dict[str, int] = {}
        for _tag, _t, queue, _payload in self._unacked_entries(unacked_raw, bindings):
            reserved[queue] = reserved.get(queue, 0) + 1

        now = time.time()
        infos: list[QueueInfo] = []
        i = 0
        for name in names:
            buckets: dict[int, int] = {}
            oldest: float | None = None
            for step in steps:
                length, tail = replies[i], replies[i + 1]
                i += 2
                buckets[step] = length if isinstance(length, int) else 0
                if tail is not None and not isinstance(tail, Exception):
                    payload = _loads(tail)
                    ts = _timestamp_of(payload) if isinstance(payload, dict) else None
                    if ts is not None:
                        oldest = ts if oldest is None else min(oldest, ts)
            infos.append(
                QueueInfo(
                    name=name,
                    ready=sum(buckets.values()),
                    reserved=reserved.get(name, 0),
                    oldest_age=max(0.0, now - oldest) if oldest is not None else None,
                    buckets=buckets,
                )
            )
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
                out.append(_message_info(_loads(raw), queue, "ready"))
                if len(out) >= limit:
                    return out

        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.unacked_key)
        pipe.zrange(self.unacked_index_key, 0, -1, withscores=True)
        raw_unacked, index = pipe.execute()
        if not raw_unacked:
            return out
        delivered = {_text(tag): score for tag, score in (index or [])}
        entries = [
            (tag, delivered.get(tag, float("inf")), q, payload)
            for tag, _t, q, payload in self._unacked_entries(raw_unacked, self._bindings())
            if q == queue
        ]
        entries.sort(key=lambda e: e[1])
        for _tag, _t, _q, payload in entries:
            out.append(_message_info(payload, queue, "reserved"))
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
        bindings = self._bindings()
        raw = self.client.hgetall(self.unacked_key)
        if not raw:
            return 0
        delivered = {
            _text(tag): score
            for tag, score in self.client.zrange(self.unacked_index_key, 0, -1, withscores=True)
        }
        tags = sorted((_text(t) for t in raw), key=lambda t: delivered.get(t, 0.0), reverse=True)
        # Newest first: each RPUSH lands at the head, so the oldest delivery ends up taken first.
        count = 0
        for tag in tags:
            count += self._requeue_one(tag, bindings, wanted)
        return count

    def _requeue_one(self, tag: str, bindings, wanted: set[str] | None) -> int:
        def restore(pipe: redis.client.Pipeline) -> int:
            value = pipe.hget(self.unacked_key, tag)
            if value is None:
                pipe.multi()
                return 0  # acked or restored meanwhile
            data = _loads(value)
            if not (isinstance(data, list) and len(data) >= 3 and isinstance(data[0], dict)):
                pipe.multi()
                return 0  # not something we understand: leave it alone
            payload, exchange, routing_key = data[0], _text(data[1] or ""), _text(data[2] or "")
            targets = self._route(bindings, exchange, routing_key)
            if wanted is not None and not (set(targets) & wanted):
                pipe.multi()
                return 0
            try:  # what kombu's _do_restore_message sets
                payload["headers"]["redelivered"] = True
                payload["properties"]["delivery_info"]["redelivered"] = True
            except (KeyError, TypeError):
                pass
            bucket = self._bucket_for(_message_priority(payload))
            body = json.dumps(payload)
            pipe.multi()
            pipe.zrem(self.unacked_index_key, tag)
            pipe.hdel(self.unacked_key, tag)
            for queue in targets:
                pipe.rpush(self.bucket_key(queue, bucket), body)
            return 1

        return self.client.transaction(restore, self.unacked_key, value_from_callable=True)


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


# ---------------------------------------------------------------------------------------------
# Redis server stats
# ---------------------------------------------------------------------------------------------

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


def fast_fail_client(url: str, *, timeout: float = 2.0, **kwargs: Any) -> redis.Redis:
    """A client for probes and panels: no retries, short timeouts.

    redis-py 6+ retries connection errors (authentication errors included) three times with a
    backoff by default, so a wrong password takes seconds to report. Pass such a client to
    :func:`redis_stats` (or a :class:`QueueInspector`) when an answer is wanted now.
    """
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    kwargs.setdefault("socket_connect_timeout", timeout)
    kwargs.setdefault("socket_timeout", timeout)
    return redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **kwargs)


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
    keys: dict[int, int] = {}
    for name, value in info.items():
        if isinstance(name, str) and name.startswith("db") and name[2:].isdigit() and isinstance(value, dict):
            keys[int(name[2:])] = int(value.get("keys", 0))
    for db in roles:
        keys.setdefault(db, 0)

    def num(key: str) -> int | None:
        value = info.get(key)
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    return RedisStats(
        ok=True,
        latency_ms=round(latency, 3),
        version=str(info.get("redis_version")) if info.get("redis_version") is not None else None,
        uptime_s=num("uptime_in_seconds"),
        used_memory=num("used_memory"),
        peak_memory=num("used_memory_peak"),
        clients=num("connected_clients"),
        ops_per_sec=num("instantaneous_ops_per_sec"),
        keys_per_db=dict(sorted(keys.items())),
        db_roles=roles,
    )


# ---------------------------------------------------------------------------------------------
# Live task events
# ---------------------------------------------------------------------------------------------


@dataclass
class TaskEvent:
    kind: str  # "received", "started", "succeeded", "failed", "retried", "revoked", ...
    uuid: str | None
    name: str | None
    hostname: str | None
    timestamp: float
    runtime: float | None = None
    exception: str | None = None
    args: str | None = None
    kwargs: str | None = None


def event_channel_pattern(db: int = 1, keyprefix: str = "") -> str:
    """The PSUBSCRIBE pattern for Celery events on a Redis broker (kombu fanout with patterns)."""
    return f"{keyprefix}/{db}.celeryev/*"


class TaskEventFeed:
    """Celery task events (worker started with ``-E``) from Redis pub/sub, via ``redis.asyncio``.

    ``on_event`` is called in the event loop for each task event. ``run()`` returns only when
    cancelled; connection errors are retried after ``reconnect_delay`` seconds (events sent
    meanwhile are lost: that is pub/sub). ``subscribed`` is set while subscribed.
    """

    def __init__(
        self,
        url: str,
        on_event: Callable[[TaskEvent], None],
        *,
        db: int = 1,
        keyprefix: str = "",
        reconnect_delay: float = 0.5,
        max_names: int = 10_000,
    ) -> None:
        self.url = url
        self.on_event = on_event
        self.db = db
        self.pattern = event_channel_pattern(db, keyprefix)
        self.reconnect_delay = reconnect_delay
        self.last_error: str | None = None
        self.subscribed = asyncio.Event()
        self._names: OrderedDict[str, str] = OrderedDict()
        self._max_names = max_names

    async def run(self) -> None:
        import redis.asyncio as aredis

        while True:
            client = aredis.Redis.from_url(self.url, socket_connect_timeout=5, health_check_interval=10)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(self.pattern)
                self.subscribed.set()
                self.last_error = None
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message.get("type") not in ("pmessage", "message"):
                        continue
                    self.handle_raw(message.get("data"))
            except asyncio.CancelledError:
                raise
            except (redis.exceptions.RedisError, OSError) as exc:
                self.last_error = describe_redis_error(exc)
                log.debug("event feed: %s; reconnecting", self.last_error)
            finally:
                self.subscribed.clear()
                await _aclose(pubsub, client)  # swallows errors, lets a cancellation through
            await asyncio.sleep(self.reconnect_delay)

    def handle_raw(self, data: Any) -> None:
        """Decode one published kombu message (JSON envelope, base64 JSON body) and dispatch."""
        envelope = _loads(data)
        if not isinstance(envelope, dict):
            return
        body, ok = _decode_body(envelope)
        if not ok:
            return
        events = body if isinstance(body, list) else [body]
        for raw in events:
            if not isinstance(raw, dict):
                continue
            event = self._to_event(raw)
            if event is None:
                continue
            try:
                self.on_event(event)
            except Exception:  # a broken callback must not kill the feed
                log.exception("TaskEventFeed callback failed")

    def _to_event(self, raw: dict) -> TaskEvent | None:
        etype = raw.get("type")
        if not isinstance(etype, str) or not etype.startswith("task-"):
            return None
        uuid = raw.get("uuid")
        uuid = str(uuid) if uuid is not None else None
        name = raw.get("name") if isinstance(raw.get("name"), str) else None
        if uuid:
            if name:
                self._names[uuid] = name
                self._names.move_to_end(uuid)
                while len(self._names) > self._max_names:
                    self._names.popitem(last=False)
            else:
                name = self._names.get(uuid)

        def opt_str(key: str) -> str | None:
            value = raw.get(key)
            return None if value is None else str(value)

        runtime = raw.get("runtime")
        ts = raw.get("timestamp")
        return TaskEvent(
            kind=etype[len("task-"):],
            uuid=uuid,
            name=name,
            hostname=opt_str("hostname"),
            timestamp=float(ts) if isinstance(ts, (int, float)) else time.time(),
            runtime=float(runtime) if isinstance(runtime, (int, float)) else None,
            exception=opt_str("exception"),
            args=opt_str("args"),
            kwargs=opt_str("kwargs"),
        )


async def _aclose(pubsub: Any, client: Any) -> None:
    for obj in (pubsub, client):
        closer = getattr(obj, "aclose", None) or getattr(obj, "close", None)
        if closer is None:
            continue
        try:
            result = closer()
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            pass


# ---------------------------------------------------------------------------------------------
# Worker remote control (without the user's app)
# ---------------------------------------------------------------------------------------------


def _bare_app(broker_url: str, timeout: float):
    """A bare Celery app (never the user's) and a private broker connection.

    Everything goes over that one connection: the mailbox's producer pool is switched off, so
    kombu's process-wide pools (shared by every app with the same URL) are never used, and
    closing the connection afterwards cannot break another caller.
    """
    from celery import Celery

    app = Celery("devstack-probe", broker=broker_url, set_as_current=False)
    app.conf.update(
        broker_connection_retry=False,
        broker_connection_retry_on_startup=False,
        broker_connection_max_retries=0,
        broker_connection_timeout=max(timeout, 0.5),
        broker_transport_options={
            "socket_connect_timeout": max(timeout, 0.5),
            "socket_timeout": max(timeout, 0.5) + 2,
            "max_retries": 0,
        },
    )
    app.control.mailbox.producer_pool = None
    return app, app.connection_for_write()


def warm_up(broker_url: str) -> None:
    """Do, without touching the network, the one-off work of the first `worker_ping`: importing
    celery's app, control and kombu's Redis transport, and building a bare app. Run in a thread while
    the worker imports, it takes ~70 ms off the moment the worker is confirmed ready."""
    app, conn = _bare_app(broker_url, 1.0)
    try:
        conn.transport  # imports kombu.transport.redis and its channel classes
        app.control.mailbox  # celery.app.control, kombu.pidbox
    finally:
        _close_app(app, conn)


def worker_ping(broker_url: str, nodenames: list[str] | None = None, timeout: float = 1.0) -> dict[str, bool]:
    """Which workers answer a remote-control ping within ``timeout`` seconds.

    With ``nodenames``, every asked node is in the result (True/False); without, the nodes that
    answered. Broker errors give all-False (the caller checks Redis separately).
    """
    result: dict[str, bool] = {n: False for n in nodenames or []}
    app, conn = _bare_app(broker_url, timeout)
    try:
        replies = app.control.ping(
            destination=list(nodenames) if nodenames else None, timeout=timeout, connection=conn
        ) or []
        for reply in replies:
            for node, answer in (reply or {}).items():
                result[node] = isinstance(answer, dict) and answer.get("ok") == "pong"
    except Exception as exc:  # broker down, auth error...
        log.debug("worker_ping failed: %s", exc)
    finally:
        _close_app(app, conn)
    return result


def active_queues(broker_url: str, timeout: float = 1.0) -> dict[str, list[str]]:
    """nodename -> names of the queues that worker consumes ({} if none answered)."""
    app, conn = _bare_app(broker_url, timeout)
    try:
        replies = app.control.inspect(timeout=timeout, connection=conn).active_queues() or {}
        return {
            node: sorted(q.get("name") for q in (queues or []) if isinstance(q, dict) and q.get("name"))
            for node, queues in replies.items()
        }
    except Exception as exc:
        log.debug("active_queues failed: %s", exc)
        return {}
    finally:
        _close_app(app, conn)


def _close_app(app: Any, conn: Any) -> None:
    try:
        conn.close()
    except Exception:
        pass
    try:
        app.close()
    except Exception:
        pass
