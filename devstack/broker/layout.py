"""kombu's key layout in Redis, and decoding what is stored there (never unpickling).

* a queue is up to four LISTs, one per priority bucket: ``<queue>``, ``<queue>\\x06\\x163``,
  ``<queue>\\x06\\x166``, ``<queue>\\x06\\x169``. Producers ``LPUSH``, workers ``BRPOP``: the oldest
  message of a bucket is at index -1, and bucket 0 is drained before bucket 3, and so on;
* ``_kombu.binding.<exchange>`` SETs with members ``routing_key<sep>pattern<sep>queue`` say which
  queues exist;
* the ``unacked`` HASH (delivery tag -> JSON ``[message, exchange, routing_key]``) and the
  ``unacked_index`` ZSET (delivery tag -> delivery time) hold what workers have reserved.

Only ``application/json`` bodies are decoded; other payloads are shown as ``BINARY_PAYLOAD``.
"""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any

DEFAULT_SEP = "\x06\x16"
DEFAULT_PRIORITY_STEPS = (0, 3, 6, 9)
BINARY_PAYLOAD = "<binary payload not decoded>"

# Exchanges Celery uses for its own plumbing (remote control, replies, events): their bindings
# are not work queues, and stale members stay behind after a worker is SIGKILLed.
INTERNAL_EXCHANGES = frozenset({"celery.pidbox", "reply.celery.pidbox", "celeryev"})


def internal_queue(name: str) -> bool:
    return name.endswith(".celery.pidbox") or name.startswith("celeryev.") or name == "celeryev"


def as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def loads(raw: Any) -> Any:
    """JSON-decode a stored value; None when it is not JSON (never anything else)."""
    try:
        return json.loads(as_text(raw))
    except (ValueError, TypeError):
        return None


def is_json(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "application/json"


def decode_body(payload: dict) -> tuple[Any, bool]:
    """Decode a kombu message body, but only an ``application/json`` one.

    Returns ``(value, True)`` on success and ``(None, False)`` for anything else (pickle, yaml,
    msgpack, broken base64...): the caller shows it as a binary payload.
    """
    if not is_json(str(payload.get("content-type") or "")):
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


def message_priority(payload: dict) -> int:
    """The message priority as kombu computes it for the Redis transport (clamped to 0..9)."""
    try:
        return max(min(int(payload["properties"]["priority"]), 9), 0)
    except (TypeError, ValueError, KeyError):
        return 0


def timestamp_of(payload: dict) -> float | None:
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



def escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)

