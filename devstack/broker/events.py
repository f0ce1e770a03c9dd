"""Live Celery task events (workers started with ``-E``), read from Redis pub/sub.

Events are published, nothing stored, on ``<keyprefix>/<db>.celeryev/<routing key>``, e.g.
``/1.celeryev/task.received``, or ``/1.celeryev/task.multi`` with a JSON list of events when a
prefork worker batches them.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
import uuid
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


BATCH_EVERY = 0.05
"""Seconds between two hand-offs of decoded events to the event loop (one `call_soon_threadsafe` per batch)."""
IDLE_WAIT = 30.0
"""Seconds the thread waits for a message while it holds none. A stop does not wait for it: the feed publishes on a
channel of its own (WAKE_PREFIX + an id) that the thread also listens to. An idle feed used to wake 4 times a
second to look at its stop flag: 0.1% of a core, a tenth of the idle TUI's."""
WAKE_PREFIX = "devstack.task-events.wake."
"""A plain pub/sub channel, outside Celery's event channels (`/<db>.celeryev/...`): no event consumer sees it."""
THREAD_NAME = "devstack-task-events"


def event_channel_pattern(db: int = 1, keyprefix: str = "") -> str:
    """The PSUBSCRIBE pattern for Celery events on a Redis broker (kombu fanout with patterns)."""
    return f"{keyprefix}/{db}.celeryev/*"


class TaskEventFeed:
    """Celery task events (worker started with ``-E``) from Redis pub/sub.

    A thread of its own reads and decodes the messages (a flood is thousands of JSON events a second) and hands
    them to the event loop in batches, at most every BATCH_EVERY seconds, in the order published: ``on_event`` is
    called in the event loop for each task event. ``run()`` returns only when cancelled, and stops the thread
    then; connection errors are retried after ``reconnect_delay`` seconds (events sent meanwhile are lost: that is
    pub/sub). ``subscribed`` is set while subscribed.
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
        self.wake_channel = WAKE_PREFIX + uuid.uuid4().hex

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        # The callbacks run in the context of run()'s caller, not the thread's: a Textual app's timers, set from
        # on_event, need its context variables (active_app).
        context = contextvars.copy_context()
        thread = threading.Thread(target=self._read, args=(loop, stop, context), name=THREAD_NAME, daemon=True)
        thread.start()
        try:
            await loop.create_future()  # until cancelled
        finally:
            stop.set()
            self.subscribed.clear()
            # The thread may be waiting for a message (up to IDLE_WAIT): one on its wake channel ends the wait. From
            # a thread of its own: a Redis that stopped answering must not hold the loop (its timeout is 1 s).
            threading.Thread(target=self._wake, args=(thread,), name=f"{THREAD_NAME}-wake", daemon=True).start()
            deadline = time.monotonic() + 6
            while thread.is_alive() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)

    def _wake(self, thread: threading.Thread) -> None:
        """Publish on the wake channel until the thread has ended (a wake published while its subscription was
        still on the way is lost), for at most as long as run() waits for it."""
        deadline = time.monotonic() + 6
        try:
            with redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1) as client:
                while thread.is_alive() and time.monotonic() < deadline:
                    client.publish(self.wake_channel, b"stop")
                    thread.join(0.25)
        except (redis.exceptions.RedisError, OSError):
            pass  # no Redis: the thread's own connection has failed too, or will within IDLE_WAIT

    def _read(self, loop: asyncio.AbstractEventLoop, stop: threading.Event, context: contextvars.Context) -> None:
        """The thread: subscribe, decode, hand batches to the loop; reconnect on errors until `stop`."""
        def call(callback, *args) -> bool:
            try:
                loop.call_soon_threadsafe(callback, *args, context=context.copy())
                return True
            except RuntimeError:  # the loop is closed
                stop.set()
                return False

        while not stop.is_set():
            client = redis.Redis.from_url(self.url, socket_connect_timeout=5, health_check_interval=10)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.psubscribe(self.pattern)
                pubsub.subscribe(self.wake_channel)
                self.last_error = None
                call(self.subscribed.set)
                pending: list[TaskEvent] = []
                handed_at = float("-inf")
                while not stop.is_set():
                    wait = IDLE_WAIT if not pending else max(0.0, handed_at + BATCH_EVERY - time.monotonic())
                    message = pubsub.get_message(timeout=wait)
                    if message is not None and message.get("type") == "pmessage":
                        pending.extend(self.decode_raw(message.get("data")))
                    if pending and time.monotonic() - handed_at >= BATCH_EVERY:
                        batch, pending = pending, []
                        handed_at = time.monotonic()
                        call(self._deliver, batch)
            except (redis.exceptions.RedisError, OSError) as exc:
                self.last_error = describe_redis_error(exc)
                log.debug("event feed: %s; reconnecting", self.last_error)
            except Exception:  # never let the thread die silently: retry as after a connection error
                log.exception("event feed failed; reconnecting")
            finally:
                if not stop.is_set():
                    call(self.subscribed.clear)
                for obj in (pubsub, client):
                    try:
                        obj.close()
                    except Exception:
                        pass
            stop.wait(self.reconnect_delay)

    def _deliver(self, batch: list[TaskEvent]) -> None:
        """In the event loop: one batch, in order."""
        for event in batch:
            try:
                self.on_event(event)
            except Exception:  # a broken callback must not kill the feed
                log.exception("TaskEventFeed callback failed")

    def handle_raw(self, data: Any) -> None:
        """Decode one published kombu message and dispatch its task events at once."""
        self._deliver(self.decode_raw(data))

    def decode_raw(self, data: Any) -> list[TaskEvent]:
        """The task events of one published kombu message (JSON envelope, base64 JSON body; a prefork worker's
        `task.multi` is a list of them)."""
        envelope = loads(data)
        if not isinstance(envelope, dict):
            return []
        body, ok = decode_body(envelope)
        if not ok:
            return []
        events = body if isinstance(body, list) else [body]
        return [event for event in map(self._to_event, (raw for raw in events if isinstance(raw, dict)))
                if event is not None]

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
