"""Broker inspection: what is waiting in the Celery queues kept in Redis, and what the workers do.

One module a concept: `layout` (kombu's keys and decoding), `messages` (a message for display),
`queues` (counts, purge, requeue), `redis_info` (the Redis panel's figures, errors in words, no-retry
clients), `poll` (the panels' once-a-second poll), `events` (live task events), `remote` (worker
ping and queues through Celery's remote control). Key layout: docs / shared notes "Celery on Redis".

Safety rules: nothing here ever unpickles a message (only ``application/json`` bodies are decoded),
and the user's Celery app is never imported. This package must not import ``textual`` or ``tui``.
"""
from .events import TaskEvent, TaskEventFeed, event_channel_pattern
from .layout import BINARY_PAYLOAD, DEFAULT_PRIORITY_STEPS, DEFAULT_SEP
from .messages import MessageInfo
from .poll import BINDINGS_SECONDS, BrokerPoller
from .queues import QueueInfo, QueueInspector
from .redis_info import (DEFAULT_DB_ROLES, RedisStats, describe_redis_error, fast_fail_client, raw_info_client,
                         redis_stats, stats_from_info)
from .remote import active_queues, warm_up, worker_ping

__all__ = [
    "QueueInfo", "MessageInfo", "QueueInspector", "RedisStats", "redis_stats", "describe_redis_error",
    "fast_fail_client", "raw_info_client", "stats_from_info", "BrokerPoller", "BINDINGS_SECONDS",
    "TaskEvent", "TaskEventFeed", "event_channel_pattern", "worker_ping", "active_queues", "warm_up",
    "BINARY_PAYLOAD", "DEFAULT_SEP", "DEFAULT_PRIORITY_STEPS", "DEFAULT_DB_ROLES",
]
