"""Live Celery task events (workers started with ``-E``), read from Redis pub/sub.

Events are published, nothing stored, on ``<keyprefix>/<db>.celeryev/<routing key>``, e.g.
``/1.celeryev/task.received``, or ``/1.celeryev/task.multi`` with a JSON list of events when a
prefork worker batches them.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import redis

from .layout import decode_body, loads
from .redis_info import describe_redis_error

log = logging.getLogger(__name__)


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
    fields: dict = field(default_factory=dict, repr=False)  # the raw event (traceback, result, pid, retries...)


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
        envelope = loads(data)
        if not isinstance(envelope, dict):
            return
        body, ok = decode_body(envelope)
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
            fields=raw,
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

