"""devstack.broker against a real redis-server and real Celery worker processes."""
from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import redis

from devstack.broker import (
    BINARY_PAYLOAD,
    QueueInspector,
    TaskEvent,
    TaskEventFeed,
    active_queues,
    describe_redis_error,
    fast_fail_client,
    redis_stats,
    worker_ping,
)
from tests.conftest import free_port
from tests.waiting import wait_until, wait_until_async

pytestmark = pytest.mark.functional

CELERY = str(Path(sys.executable).with_name("celery"))
SEP = "\x06\x16"

TASK_MODULE = '''
import os, time
from celery import Celery

app = Celery("tapp", broker=os.environ["TAPP_BROKER"], backend=os.environ.get("TAPP_BACKEND") or None)
app.conf.task_routes = {
    "tapp.add": {"queue": "dataset"},
    "tapp.slow": {"queue": "dataset"},
    "tapp.fail": {"queue": "mail"},
}
app.conf.worker_prefetch_multiplier = 4
app.conf.broker_connection_retry_on_startup = True


@app.task(name="tapp.add")
def add(x, y):
    return x + y


@app.task(name="tapp.slow", acks_late=True)
def slow(seconds):
    if os.environ.get("TAPP_FAST"):
        return 0
    time.sleep(seconds)
    return seconds


@app.task(name="tapp.fail")
def fail(message):
    raise ValueError(message)
'''


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture
def tapp(tmp_path, redis_server, monkeypatch):
    """The throwaway Celery app: written to tmp_path, imported here under a unique name."""
    (tmp_path / "tapp.py").write_text(TASK_MODULE)
    monkeypatch.setenv("TAPP_BROKER", redis_server.url(1))
    monkeypatch.setenv("TAPP_BACKEND", redis_server.url(2))
    name = f"tapp_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, tmp_path / "tapp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    import gc

    gc.collect()  # AsyncResults first, while the backend connection still works
    module.app.close()


class Worker:
    """A real `celery worker` subprocess in its own process group; always killed by the test."""

    def __init__(self, cwd: Path, redis_server, pool: str, queues: str, *, concurrency: int = 1,
                 name: str = "t1@%h", extra_env: dict | None = None):
        env = dict(os.environ)
        env.update(TAPP_BROKER=redis_server.url(1), TAPP_BACKEND=redis_server.url(2), PYTHONUNBUFFERED="1")
        env.update(extra_env or {})
        cmd = [CELERY, "-A", "tapp", "worker", "-P", pool, "-Q", queues, "--without-mingle",
               "--without-gossip", "-E", "-n", name, "-l", "info"]
        if pool == "prefork":
            cmd += ["-c", str(concurrency)]
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if " ready." in line:
                self._ready.set()

    def wait_ready(self, timeout: float = 20.0):
        if not self._ready.wait(timeout):
            self.kill()
            raise AssertionError("worker not ready:\n" + "\n".join(self.lines[-40:]))

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)


def by_name(infos):
    return {q.name: q for q in infos}


# --------------------------------------------------------------------------------------------
# queue inspection: counts, decoding, purge
# --------------------------------------------------------------------------------------------


def test_queues_messages_and_purge(tapp, redis_server):
    r1 = redis_server.client(1)
    inspector = QueueInspector(r1, configured_queues=["priority_dataset", "dataset"])

    a = tapp.add.apply_async((1, 2))                                     # dataset, bucket 0
    b = tapp.add.apply_async((3, 4), priority=5, countdown=120)          # dataset, bucket 3, eta
    c = tapp.app.send_task("tapp.add", args=(5, 6), kwargs={"z": 1}, queue="dataset", priority=9)
    d = tapp.fail.apply_async(("boom",))                                 # mail
    e = tapp.add.apply_async((7, 8), priority=7)                         # dataset, bucket 6

    assert inspector.queue_names() == ["dataset", "mail", "priority_dataset"]

    qs = by_name(inspector.queues())
    assert qs["dataset"].buckets == {0: 1, 3: 1, 6: 1, 9: 1}
    assert qs["dataset"].ready == 4 == sum(qs["dataset"].buckets.values())
    assert qs["dataset"].reserved == 0
    assert qs["mail"].ready == 1 and qs["mail"].buckets[0] == 1
    assert qs["priority_dataset"].ready == 0  # configured but empty: no key at all
    assert qs["dataset"].oldest_age is None   # Celery stores no publish timestamp

    msgs = inspector.messages("dataset")
    assert [m.id for m in msgs] == [a.id, b.id, e.id, c.id]  # bucket 0 first, as a worker takes them
    assert all(m.state == "ready" and m.queue == "dataset" for m in msgs)
    assert all(m.raw_content_type == "application/json" for m in msgs)
    first, with_eta, _, pri9 = msgs
    assert first.task == "tapp.add" and first.args == "(1, 2)" and first.kwargs == "{}"
    assert first.eta is None and first.retries == 0
    assert with_eta.priority == 5
    assert with_eta.eta and datetime.fromisoformat(with_eta.eta) > datetime.now(datetime.fromisoformat(with_eta.eta).tzinfo)
    assert pri9.priority == 9 and pri9.args == "(5, 6)" and pri9.kwargs == "{'z': 1}"
    assert inspector.messages("dataset", limit=2) == msgs[:2]
    mail = inspector.messages("mail")
    assert [(m.task, m.id, m.args) for m in mail] == [("tapp.fail", d.id, "('boom',)")]

    # A pickled message (never unpickled) and a protocol 1 message, both produced by Celery.
    tapp.add.apply_async((9, 9), queue="mail", serializer="pickle")
    tapp.app.conf.task_protocol = 1
    p1 = tapp.add.apply_async((10, 11), queue="mail", countdown=60)
    tapp.app.conf.task_protocol = 2
    mail = inspector.messages("mail")
    assert len(mail) == 3
    pickled, proto1 = mail[1], mail[2]
    assert pickled.task == "tapp.add" and pickled.args == BINARY_PAYLOAD
    assert pickled.raw_content_type == "application/x-python-serialize"
    assert (proto1.task, proto1.id, proto1.args) == ("tapp.add", p1.id, "(10, 11)")
    assert proto1.eta is not None

    # Garbage in a queue does not break anything.
    r1.lpush("mail", b"\x80\x04not json")
    assert inspector.messages("mail")[-1].args == BINARY_PAYLOAD

    assert inspector.purge("dataset") == 4
    assert inspector.purge("dataset") == 0
    qs = by_name(inspector.queues())
    assert qs["dataset"].ready == 0 and qs["mail"].ready == 4
    assert not any(r1.exists(k) for k in ("dataset", f"dataset{SEP}3", f"dataset{SEP}6", f"dataset{SEP}9"))


def test_keyprefix_sep_and_internal_bindings(redis_server):
    r = redis_server.client(1)
    # Stale internal bindings a SIGKILLed worker leaves behind must not show up as queues.
    r.sadd("_kombu.binding.celery.pidbox", f"{SEP}{SEP}t1@host.celery.pidbox")
    r.sadd("_kombu.binding.celeryev", f"worker.#{SEP}{SEP}celeryev.{uuid.uuid4()}")
    r.sadd("_kombu.binding.reply.celery.pidbox", f"abc{SEP}{SEP}abc.reply.celery.pidbox")
    r.sadd("_kombu.binding.celery", f"celery{SEP}{SEP}celery")
    r.sadd("app1:_kombu.binding.jobs", "jobs::jobs")
    r.lpush("app1:jobs:5", json.dumps({"body": base64.b64encode(b"[[1], {}, {}]").decode(),
                                       "content-type": "application/json", "headers": {"task": "t", "id": "x"},
                                       "properties": {"priority": 5, "body_encoding": "base64"}}))
    assert QueueInspector(r).queue_names() == ["celery"]
    prefixed = QueueInspector(r, sep=":", priority_steps=(0, 5), keyprefix="app1:")
    assert prefixed.queue_names() == ["jobs"]
    (jobs,) = prefixed.queues()
    assert jobs.buckets == {0: 0, 5: 1} and jobs.ready == 1
    assert prefixed.messages("jobs")[0].args == "(1,)"
    assert jobs.oldest_age is None
    # A producer that stores a publish timestamp gets an age.
    r.lpush("app1:jobs", json.dumps({"body": "", "content-type": "application/json", "headers": {"task": "t"},
                                     "properties": {"timestamp": time.time() - 30}}))
    (jobs,) = prefixed.queues()
    assert jobs.ready == 2 and 29 <= jobs.oldest_age < 40


# --------------------------------------------------------------------------------------------
# reserved messages of a SIGKILLed worker, and their requeue
# --------------------------------------------------------------------------------------------


def test_reserved_and_requeue_after_sigkill(tapp, redis_server, tmp_path):
    r1 = redis_server.client(1)
    inspector = QueueInspector(r1)
    # The solo pool runs the task inside the consumer and prefetches nothing, so the
    # "prefetched messages stuck in unacked" case needs prefork: -c 1 with prefetch 4.
    slow = tapp.slow.apply_async((30,))        # acks_late: stays in unacked while it runs
    adds = [tapp.add.apply_async((i, i)) for i in range(6)]
    worker = Worker(tmp_path, redis_server, "prefork", "dataset", concurrency=1)
    try:
        worker.wait_ready()
        wait_until(lambda: (q := by_name(inspector.queues())["dataset"]).reserved == 4 and q.ready == 3, 10,
                   "4 reserved and 3 ready messages in 'dataset'")
        time.sleep(0.3)  # nothing more gets fetched while the pool is busy
        q = by_name(inspector.queues())["dataset"]
        assert (q.ready, q.reserved) == (3, 4)
        reserved = [m for m in inspector.messages("dataset") if m.state == "reserved"]
        assert [m.id for m in reserved] == [slow.id] + [a.id for a in adds[:3]]
        assert reserved[0].task == "tapp.slow" and reserved[0].args == "(30,)"
    finally:
        worker.kill()

    # The kill leaves them in unacked (until the 1 h visibility timeout).
    assert r1.hlen("unacked") == 4
    assert by_name(inspector.queues())["dataset"].reserved == 4
    assert inspector.requeue_unacked(queues=["mail"]) == 0
    assert inspector.requeue_unacked() == 4
    assert r1.hlen("unacked") == 0 and r1.zcard("unacked_index") == 0
    q = by_name(inspector.queues())["dataset"]
    assert (q.ready, q.reserved) == (7, 0)
    ids = [m.id for m in inspector.messages("dataset")]
    # Requeued at the head, in their original order, before the never-fetched ones.
    assert ids == [slow.id] + [a.id for a in adds]

    # A new worker runs all of them: the restored messages are valid kombu messages.
    worker = Worker(tmp_path, redis_server, "prefork", "dataset", concurrency=1, name="t2@%h",
                    extra_env={"TAPP_FAST": "1"})
    try:
        worker.wait_ready()
        assert slow.get(timeout=15) == 0
        assert [a.get(timeout=15) for a in adds] == [2 * i for i in range(6)]
        # acks_late: the ack (HDEL unacked) follows the stored result; a kill in between would leave it.
        wait_until(lambda: r1.hlen("unacked") == 0, 10, "the last ack")
    finally:
        worker.kill()
    assert inspector.requeue_unacked() == 0


# --------------------------------------------------------------------------------------------
# live task events, ping, active queues
# --------------------------------------------------------------------------------------------


async def _collect_events(tapp, redis_server, tmp_path, pool: str, concurrency: int = 1):
    """Run a worker + a TaskEventFeed; return (events, channels seen by a raw subscriber, ids)."""
    events: list[TaskEvent] = []
    channels: set[str] = set()
    feed = TaskEventFeed(redis_server.url(1), events.append, db=1)
    feed_task = asyncio.create_task(feed.run())
    raw = redis_server.client(1).pubsub()
    raw.psubscribe("/1.celeryev/*")
    worker = await asyncio.to_thread(Worker, tmp_path, redis_server, pool, "dataset,mail", concurrency=concurrency)
    try:
        await asyncio.wait_for(feed.subscribed.wait(), 10)
        await asyncio.to_thread(worker.wait_ready)
        ok = tapp.add.apply_async((2, 3))
        bad = tapp.fail.apply_async(("kaput",))

        def done():
            kinds = {(e.uuid, e.kind) for e in events}
            return (ok.id, "succeeded") in kinds and (bad.id, "failed") in kinds

        await wait_until_async(done, 15, lambda: f"a succeeded and a failed task; events so far: {events}")
        while (m := raw.get_message(timeout=0.05)) is not None:
            if m["type"] == "pmessage":
                channels.add(m["channel"].decode())
        return events, channels, ok.id, bad.id, worker
    finally:
        feed_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await feed_task
        assert not feed_threads()  # cancelling the feed stopped its reader thread
        raw.close()
        await asyncio.to_thread(worker.kill)


def feed_threads() -> list[threading.Thread]:
    from devstack.broker.events import THREAD_NAME

    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def _check_events(events, ok_id, bad_id):
    mine = [e for e in events if e.uuid in (ok_id, bad_id)]
    kinds = {(e.uuid, e.kind) for e in mine}
    for task_id in (ok_id, bad_id):
        assert (task_id, "received") in kinds and (task_id, "started") in kinds
    # Names are remembered from task-received and carried by later events.
    assert {e.name for e in mine if e.uuid == ok_id} == {"tapp.add"}
    assert {e.name for e in mine if e.uuid == bad_id} == {"tapp.fail"}
    received = next(e for e in mine if e.uuid == ok_id and e.kind == "received")
    assert received.args == "(2, 3)" and received.kwargs == "{}"
    succeeded = next(e for e in mine if e.uuid == ok_id and e.kind == "succeeded")
    assert succeeded.runtime is not None and succeeded.runtime >= 0
    failed = next(e for e in mine if e.uuid == bad_id and e.kind == "failed")
    assert "kaput" in failed.exception and "ValueError" in failed.exception
    assert all(e.hostname and e.hostname.startswith("t1@") and e.timestamp > 0 for e in mine)


async def test_event_feed_prefork_task_multi(tapp, redis_server, tmp_path):
    events, channels, ok_id, bad_id, _ = await _collect_events(tapp, redis_server, tmp_path, "prefork", 2)
    _check_events(events, ok_id, bad_id)
    assert "/1.celeryev/task.multi" in channels      # prefork batches task events
    assert "/1.celeryev/worker.heartbeat" in channels or "/1.celeryev/worker.online" in channels


async def test_event_feed_solo(tapp, redis_server, tmp_path):
    # The solo pool runs the worker's event loop too, so task events are batched there as well.
    events, channels, ok_id, bad_id, _ = await _collect_events(tapp, redis_server, tmp_path, "solo")
    _check_events(events, ok_id, bad_id)
    assert "/1.celeryev/task.multi" in channels


async def test_event_feed_gevent_single_events(tapp, redis_server, tmp_path):
    # Green pools have no event loop hub: one event per message, on task.<kind> channels.
    pytest.importorskip("gevent")
    events, channels, ok_id, bad_id, _ = await _collect_events(tapp, redis_server, tmp_path, "gevent")
    _check_events(events, ok_id, bad_id)
    assert {"/1.celeryev/task.received", "/1.celeryev/task.started", "/1.celeryev/task.succeeded",
            "/1.celeryev/task.failed"} <= channels
    assert "/1.celeryev/task.multi" not in channels


def test_worker_ping_and_active_queues(tapp, redis_server, tmp_path):
    worker = Worker(tmp_path, redis_server, "solo", "dataset,mail")
    try:
        worker.wait_ready()
        pong = worker_ping(redis_server.url(1), timeout=1.0)
        (node,) = pong
        assert node.startswith("t1@") and pong[node] is True
        assert worker_ping(redis_server.url(1), [node, "ghost@nowhere"], timeout=1.0) == {
            node: True, "ghost@nowhere": False}
        assert active_queues(redis_server.url(1), timeout=1.0) == {node: ["dataset", "mail"]}
        # The control plumbing is not listed as queues.
        assert QueueInspector(redis_server.client(1)).queue_names() == ["dataset", "mail"]
    finally:
        worker.kill()
    t0 = time.monotonic()
    assert worker_ping(redis_server.url(1), [node], timeout=0.5) == {node: False}
    dead = f"redis://127.0.0.1:{free_port()}/1"
    assert worker_ping(dead, ["x@y"], timeout=0.5) == {"x@y": False}
    assert active_queues(dead, timeout=0.5) == {}
    assert time.monotonic() - t0 < 10


async def test_event_feed_reconnects_and_cancels(redis_server):
    port = free_port()
    feed = TaskEventFeed(f"redis://127.0.0.1:{port}/1", lambda e: None, reconnect_delay=0.05)
    task = asyncio.create_task(feed.run())
    await wait_until_async(lambda: feed.last_error, 2, "the feed's first connection error")
    assert feed.last_error == "connection refused"
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not feed_threads()

    # handle_raw: a single event, a task.multi list, and junk.
    got: list[TaskEvent] = []
    feed = TaskEventFeed(redis_server.url(1), got.append)

    def envelope(body):
        return json.dumps({"body": base64.b64encode(json.dumps(body).encode()).decode(),
                           "content-type": "application/json", "content-encoding": "utf-8",
                           "properties": {"body_encoding": "base64"}, "headers": {}})

    feed.handle_raw(envelope({"type": "task-received", "uuid": "u1", "name": "n1", "hostname": "h",
                              "timestamp": 1.5, "args": "()", "kwargs": "{}"}))
    feed.handle_raw(envelope([{"type": "task-started", "uuid": "u1", "hostname": "h", "timestamp": 2.0},
                              {"type": "worker-heartbeat", "hostname": "h", "timestamp": 2.0},
                              {"type": "task-succeeded", "uuid": "u1", "runtime": 0.25, "timestamp": 3.0}]))
    feed.handle_raw(b"not json")
    feed.handle_raw(json.dumps({"body": "gASV", "content-type": "application/x-python-serialize"}))
    assert [(e.kind, e.name) for e in got] == [("received", "n1"), ("started", "n1"), ("succeeded", "n1")]
    assert got[-1].runtime == 0.25


async def test_event_feed_decodes_off_the_loop_and_hands_batches_in_order(redis_server):
    """Events published in a burst arrive on the loop's thread, all of them and in order, in a few batches (one
    hand-off per BATCH_EVERY at most), not one loop callback per message."""
    from devstack.broker.events import BATCH_EVERY

    loop = asyncio.get_running_loop()
    got: list[str] = []
    threads: set[int] = set()
    batches = [0]
    in_batch = [False]

    def on_event(event):
        got.append(event.uuid)
        threads.add(threading.get_ident())
        contexts.add(caller.get(None))
        if not in_batch[0]:  # the first event of a hand-off: the next loop turn ends it
            in_batch[0] = True
            batches[0] += 1
            loop.call_soon(in_batch.__setitem__, 0, False)

    import contextvars

    caller = contextvars.ContextVar("caller")
    contexts: set = set()
    caller.set("the task that runs the feed")  # a Textual app's active_app, say: its timers need it
    feed = TaskEventFeed(redis_server.url(1), on_event, db=1)
    task = asyncio.create_task(feed.run())
    try:
        await asyncio.wait_for(feed.subscribed.wait(), 10)
        client = redis_server.client(1)

        def envelope(body):
            return json.dumps({"body": base64.b64encode(json.dumps(body).encode()).decode(),
                               "content-type": "application/json", "content-encoding": "utf-8",
                               "properties": {"body_encoding": "base64"}, "headers": {}})

        def publish() -> float:
            began = time.monotonic()
            for n in range(0, 2000, 4):  # task.multi lists of 4, as a prefork worker sends them
                client.publish("/1.celeryev/task.multi", envelope(
                    [{"type": "task-received", "uuid": f"u{m}", "name": "n", "timestamp": 1.0} for m in range(n, n + 4)]))
            return time.monotonic() - began

        took = await asyncio.to_thread(publish)
        await wait_until_async(lambda: len(got) == 2000, 10, "the 2,000 events")
        assert got == [f"u{m}" for m in range(2000)]
        assert threads == {threading.get_ident()}  # handed to the loop's thread
        assert contexts == {"the task that runs the feed"}  # in the context of run()'s caller
        assert batches[0] <= took / BATCH_EVERY + 5, (batches[0], took)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not feed_threads()


# --------------------------------------------------------------------------------------------
# Redis stats and error words
# --------------------------------------------------------------------------------------------


def test_redis_stats_ok_and_errors(redis_server):
    redis_server.client(0).set("k", "v")
    redis_server.client(1).lpush("dataset", "x")
    redis_server.client(1).set("y", "1")
    stats = redis_stats(redis_server.client(1))
    assert stats.ok and stats.error is None
    assert stats.version and stats.version[0].isdigit()
    assert stats.keys_per_db[0] == 1 and stats.keys_per_db[1] == 2
    assert stats.db_roles == {0: "cache", 1: "broker/results"}
    assert stats.latency_ms is not None and stats.latency_ms < 1000
    assert stats.used_memory > 0 and stats.peak_memory >= stats.used_memory * 0.5
    assert stats.clients >= 1 and stats.uptime_s >= 0 and stats.ops_per_sec >= 0
    assert redis_stats(redis_server.client(1), {1: "broker"}).db_roles == {1: "broker"}

    assert redis_stats(fast_fail_client(redis_server.url(1))).ok

    base = f"{redis_server.host}:{redis_server.port}"
    t0 = time.monotonic()
    wrong = redis_stats(fast_fail_client(f"redis://:wrong@{base}/1"))
    assert not wrong.ok and wrong.error.startswith("WRONGPASS")
    missing = redis_stats(fast_fail_client(f"redis://{base}/1"))
    assert not missing.ok and missing.error == "NOAUTH: password required"
    refused = redis_stats(fast_fail_client(f"redis://127.0.0.1:{free_port()}/1"))
    assert not refused.ok and refused.error == "connection refused"
    assert time.monotonic() - t0 < 2  # no retry backoff with fast_fail_client
    # A default redis-py client retries (slowly) but reports the same words.
    assert redis_stats(redis.Redis(host=redis_server.host, port=redis_server.port, password="wrong")).error == (
        wrong.error)

    assert describe_redis_error(redis.exceptions.TimeoutError("Timeout reading from socket")) == "timeout"
    assert describe_redis_error(redis.exceptions.AuthenticationError("Authentication required.")) == (
        "NOAUTH: password required")
    assert describe_redis_error(ConnectionRefusedError(111, "Connection refused")) == "connection refused"


@pytest.mark.parametrize("idle_for", [0.0, 1.0])
async def test_an_idle_event_feed_stops_at_once(redis_server, idle_for):
    """An idle feed waits IDLE_WAIT (30 s) for a message instead of waking 4 times a second; a cancel ends its
    thread at once through the feed's wake channel, even right after it subscribed (a wake published before the
    subscription reached Redis is lost: it is published again). Events keep arriving after a long wait."""
    from devstack.broker.events import IDLE_WAIT

    assert IDLE_WAIT >= 10
    got: list[TaskEvent] = []
    feed = TaskEventFeed(redis_server.url(1), got.append, db=1)
    task = asyncio.create_task(feed.run())
    await asyncio.wait_for(feed.subscribed.wait(), 10)
    if idle_for:
        await asyncio.sleep(idle_for)
        body = {"type": "task-received", "uuid": "u1", "name": "n", "timestamp": 1.0}
        redis_server.client(1).publish("/1.celeryev/task.received", json.dumps({
            "body": base64.b64encode(json.dumps(body).encode()).decode(), "content-type": "application/json",
            "content-encoding": "utf-8", "properties": {"body_encoding": "base64"}, "headers": {}}))
        await wait_until_async(lambda: got, 5, "the event sent after an idle second")
    began = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - began < 2
    assert not feed_threads()
