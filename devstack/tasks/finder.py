"""Find one task's message in the broker by id without decoding every message.

Inside Redis, a small Lua script walks a queue's LIST in `LRANGE` chunks and tests each raw message
for the id's bytes (a plain substring find, no JSON), returning only the first hit: one message crosses
the network instead of the whole queue. Only that hit is decoded, to confirm the id is the message's own
and not a child's `root_id`/`parent_id` (then the scan goes on after it). Where scripting is refused
(ACLs), the same scan runs here over `LRANGE` chunks. The `unacked` hash (reserved messages) is small:
read whole.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis

from devstack.broker.layout import DEFAULT_PRIORITY_STEPS, DEFAULT_SEP, as_text, loads

FIND_SCRIPT = """
local n = redis.call('LLEN', KEYS[1])
local i = tonumber(ARGV[2])
local step = tonumber(ARGV[3])
while i < n do
  local items = redis.call('LRANGE', KEYS[1], i, i + step - 1)
  for k, raw in ipairs(items) do
    if string.find(raw, ARGV[1], 1, true) then return {i + k - 1, raw} end
  end
  if #items == 0 then return nil end
  i = i + #items
end
return nil
"""

CHUNK = 5000
"""Messages per `LRANGE`: large enough that 100,000 messages take 20 round trips, small enough that one
reply stays a few MB."""


@dataclass
class Located:
    """Where a message is: `queued` in a priority bucket of a queue, or `reserved` (in `unacked`)."""

    place: str  # "queued" or "reserved"
    queue: str
    raw: bytes  # the stored message, byte for byte (what LREM needs to remove it)
    payload: dict  # kombu's envelope, decoded
    bucket: int = 0
    position: int = 0  # 1 = the next message a worker takes from this queue
    total: int = 0  # messages waiting in this queue (every bucket)
    delivery_tag: str | None = None
    since: float | None = None  # when it was reserved (`unacked_index`)

    @property
    def headers(self) -> dict:
        headers = self.payload.get("headers")
        return headers if isinstance(headers, dict) else {}


def message_id(payload: object) -> str | None:
    """The task id of a kombu envelope (protocol 2 header, or protocol 1's correlation id)."""
    if not isinstance(payload, dict):
        return None
    headers = payload.get("headers") if isinstance(payload.get("headers"), dict) else {}
    props = payload.get("properties") if isinstance(payload.get("properties"), dict) else {}
    found = headers.get("id") or props.get("correlation_id")
    return str(found) if found else None


class MessageFinder:
    """Looks a task id up in the queue LISTs and the `unacked` hash of one broker database.

    `client` must return bytes (no `decode_responses`), as `devstack.broker.fast_fail_client` does.
    """

    def __init__(self, client, *, sep: str = DEFAULT_SEP, priority_steps=DEFAULT_PRIORITY_STEPS,
                 keyprefix: str = "", chunk: int = CHUNK):
        self.client = client
        self.sep = sep
        self.steps = tuple(sorted(priority_steps)) or (0,)
        self.keyprefix = keyprefix
        self.chunk = chunk
        self._script = None

    def bucket_key(self, queue: str, step: int) -> str:
        return self.keyprefix + (f"{queue}{self.sep}{step}" if step else queue)

    def in_queues(self, task_id: str, queues: list[str]) -> Located | None:
        needle = task_id.encode()
        for queue in queues:
            keys = [self.bucket_key(queue, step) for step in self.steps]
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.llen(key)
            lengths = [n if isinstance(n, int) else 0 for n in pipe.execute(raise_on_error=False)]
            ahead = 0  # messages of earlier (drained first) buckets
            for step, key, length in zip(self.steps, keys, lengths):
                index = self._scan(key, length, needle, task_id)
                if index is not None:
                    raw = index[1]
                    # index -1 is the oldest, the next one out: position counts from there
                    return Located("queued", queue, raw, loads(raw), bucket=step,
                                   position=ahead + (length - index[0]), total=sum(lengths))
                ahead += length
        return None

    def _scan(self, key: str, length: int, needle: bytes, task_id: str) -> tuple[int, bytes] | None:
        if self._script is not False:
            try:
                return self._scan_in_redis(key, needle, task_id)
            except redis.exceptions.ResponseError:  # NOSCRIPT/NOPERM: scripting is not allowed here
                self._script = False
        return self._scan_here(key, length, needle, task_id)

    def _scan_in_redis(self, key: str, needle: bytes, task_id: str) -> tuple[int, bytes] | None:
        if self._script is None:
            self._script = self.client.register_script(FIND_SCRIPT)
        start = 0
        while True:
            hit = self._script(keys=[key], args=[needle, start, self.chunk])
            if not hit:
                return None
            index, raw = int(hit[0]), hit[1]
            if message_id(loads(raw)) == task_id:
                return index, raw
            start = index + 1  # the id was a child's root_id/parent_id: look further

    def _scan_here(self, key: str, length: int, needle: bytes, task_id: str) -> tuple[int, bytes] | None:
        start = 0
        while start < length:
            items = self.client.lrange(key, start, start + self.chunk - 1)
            if not items:
                return None
            for offset, raw in enumerate(items):
                if needle in raw and message_id(loads(raw)) == task_id:
                    return start + offset, raw
            start += len(items)
        return None

    def in_unacked(self, task_id: str) -> Located | None:
        needle = task_id.encode()
        unacked = self.keyprefix + "unacked"
        for tag, value in (self.client.hgetall(unacked) or {}).items():
            if needle not in value:
                continue
            data = loads(value)
            payload, exchange, routing_key = (data[0], data[1], data[2]) if isinstance(data, list) and len(data) >= 3 \
                else (data, "", "")
            if message_id(payload) != task_id:
                continue
            since = self.client.zscore(self.keyprefix + "unacked_index", tag)
            raw = value if isinstance(value, bytes) else str(value).encode()
            return Located("reserved", as_text(routing_key or exchange or "?"), raw, payload,
                           delivery_tag=as_text(tag), since=since)
        return None

    def remove(self, located: Located) -> bool:
        """Delete a queued message (exactly these bytes) from its list; False if a worker took it first."""
        return bool(self.client.lrem(self.bucket_key(located.queue, located.bucket), 1, located.raw))
