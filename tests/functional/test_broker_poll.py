"""devstack.broker.BrokerPoller (the panels' once-a-second Redis and queues poll) answers what the engine's `redis_stats` and
`QueueInspector.queues` answer, on a real redis-server with kombu's keys."""
from __future__ import annotations

import json
import time

import redis

from devstack.broker import DEFAULT_SEP, QueueInspector, redis_stats
from devstack.broker import poll as broker_poll
from devstack.broker import BrokerPoller, raw_info_client

QUEUES = ["celery", "dataset", "generation", "mail"]


def message(task: str, *, priority: int = 0, timestamp: float | None = None, queue: str = "celery") -> str:
    properties = {"priority": priority, "delivery_info": {"exchange": queue, "routing_key": queue},
                  "body_encoding": "base64", "delivery_tag": task}
    if timestamp is not None:
        properties["timestamp"] = timestamp
    return json.dumps({"body": "W10=", "content-type": "application/json", "content-encoding": "utf-8",
                       "headers": {"task": task, "id": task}, "properties": properties})


def fill(r1: redis.Redis, r0: redis.Redis) -> None:
    for q in QUEUES + ["extra"]:  # "extra": bound in Redis only, not configured
        r1.sadd(f"_kombu.binding.{q}", f"{q}{DEFAULT_SEP}{DEFAULT_SEP}{q}")
    r1.sadd("_kombu.binding.celeryev", f"worker.#{DEFAULT_SEP}{DEFAULT_SEP}celeryev.1234")
    r1.sadd("_kombu.binding.celery.pidbox", f"{DEFAULT_SEP}{DEFAULT_SEP}w@h.celery.pidbox")
    now = time.time()
    r1.lpush("mail", message("m1", timestamp=now - 30, queue="mail"), message("m2", timestamp=now - 5, queue="mail"))
    r1.lpush(f"mail{DEFAULT_SEP}6", message("m3", priority=6, timestamp=now - 90, queue="mail"))
    r1.lpush("celery", message("c1"), message("c2"))
    r1.lpush("extra", message("e1", queue="extra"))
    r1.set("generation", "not a list")  # WRONGTYPE for LLEN: counted as 0, as the engine does
    r1.hset("unacked", "tag-1", json.dumps([json.loads(message("u1", queue="dataset")), "dataset", "dataset"]))
    r1.hset("unacked", "tag-2", json.dumps([json.loads(message("u2", queue="mail")), "mail", "mail"]))
    r1.set("celery-task-meta-x", "{}")
    r0.set("cache-key", "1")


def test_poll_matches_the_engine(redis_server):
    r0, r1 = redis_server.client(0), redis_server.client(1)
    fill(r1, r0)
    raw = raw_info_client(host=redis_server.host, port=redis_server.port, password=redis_server.password, db=1)
    stats, queues = BrokerPoller(raw, QUEUES).poll()
    expected_stats = redis_stats(r0)
    expected_queues = QueueInspector(r1, QUEUES).queues()

    assert stats.ok and expected_stats.ok
    for field in ("version", "keys_per_db", "db_roles", "peak_memory"):
        assert getattr(stats, field) == getattr(expected_stats, field), field
    for field in ("uptime_s", "used_memory", "clients", "ops_per_sec"):  # live figures: same kind, close values
        assert isinstance(getattr(stats, field), int), field
    assert abs(stats.uptime_s - expected_stats.uptime_s) <= 1
    assert abs(stats.clients - expected_stats.clients) <= 2
    assert stats.latency_ms > 0
    assert stats.keys_per_db[0] == 1 and stats.keys_per_db[1] >= 10

    assert [q.name for q in queues] == [q.name for q in expected_queues] == sorted(QUEUES + ["extra"])
    for got, want in zip(queues, expected_queues):
        assert (got.ready, got.reserved, got.buckets) == (want.ready, want.reserved, want.buckets), got.name
        if want.oldest_age is None:
            assert got.oldest_age is None, got.name
        else:
            assert abs(got.oldest_age - want.oldest_age) < 2, got.name
    mail = next(q for q in queues if q.name == "mail")
    assert (mail.ready, mail.reserved) == (3, 1) and 89 <= mail.oldest_age < 100


def test_bindings_are_read_again_after_a_while(redis_server, monkeypatch):
    r1 = redis_server.client(1)
    raw = raw_info_client(host=redis_server.host, port=redis_server.port, password=redis_server.password, db=1)
    poller = BrokerPoller(raw, ["celery"])
    assert [q.name for q in poller.poll()[1]] == ["celery"]
    r1.sadd("_kombu.binding.late", f"late{DEFAULT_SEP}{DEFAULT_SEP}late")
    assert [q.name for q in poller.poll()[1]] == ["celery"]  # within BINDINGS_SECONDS: not read again
    monkeypatch.setattr(broker_poll, "BINDINGS_SECONDS", 0.0)
    assert [q.name for q in poller.poll()[1]] == ["celery", "late"]


def test_an_unreachable_redis_is_described(redis_server):
    raw = raw_info_client(host=redis_server.host, port=redis_server.port, password="wrong", db=1,
                          socket_timeout=2, socket_connect_timeout=2)
    stats, queues = BrokerPoller(raw, QUEUES).poll()
    assert not stats.ok and "WRONGPASS" in stats.error and queues is None
    assert stats.error == redis_stats(redis_server.client(0).__class__(
        host=redis_server.host, port=redis_server.port, password="wrong")).error
