"""The task history and per-task commands (`devstack tasks/task/replay/revoke`) against a real stack:
devstack up --no-tui with Redis, the demo's Flask API and a Celery worker."""
from __future__ import annotations

import json
import time

import pytest

from tests.functional.test_cli import run_cli, stack  # noqa: F401  (stack: the fixture)
from tests.waiting import wait_until
from tests.stack import write_demo_config

pytestmark = pytest.mark.functional


def task_json(s, task_id: str) -> dict:
    res = s.cli("task", task_id, "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def wait_where(s, task_id: str, where: str, timeout: float = 30, **fields) -> dict:
    def check():
        detail = task_json(s, task_id)
        return detail if detail["where"] == where and all(detail.get(k) == v for k, v in fields.items()) else None

    return wait_until(check, timeout, f"{task_id} {where} {fields}", interval=0.3)


def send_task(tmp_path, settings, name: str, args, queue: str) -> str:
    """Publish a task as an app would, with a bare Celery app (the demo's routing is not used)."""
    from celery import Celery

    password = (tmp_path / ".devstack" / "redis.password").read_text().strip()
    app = Celery("sender", broker=f"redis://:{password}@127.0.0.1:{settings['redis']['port']}/1",
                 set_as_current=False)
    try:
        return app.send_task(name, args=args, queue=queue).id
    finally:
        app.close()


def test_failed_task_replay_revoke_where_and_history_across_restarts(stack, tmp_path):
    config = write_demo_config(tmp_path)
    s = stack(config)
    s.wait_ready()

    # a failed task: its traceback is in the detail
    failed = s.api("/tasks/fail?message=kaboom")["id"]
    detail = wait_where(s, failed, "done", state="failed")
    assert "ValueError: kaboom" in detail["traceback"], detail
    assert detail["name"] == "demo.fail" and detail["args"] == "('kaboom',)"
    log = "\n".join(detail["log"])  # the worker's lines about it: received, then the error with its traceback
    assert f"demo.fail[{failed}] received" in log and f"demo.fail[{failed}] raised unexpected" in log, log
    assert "Traceback (most recent call last)" in log and "ValueError: kaboom" in log, log
    assert "worker log:" in s.cli("task", failed).stdout

    # worker stopped: queued, and a revoked queued task never runs
    assert s.cli("stop", "worker").returncode == 0
    wait_until(lambda: s.status()["services"]["worker"]["state"] == "stopped", 30, "worker stopped")
    added = s.api("/tasks/add?x=20&y=22")["id"]
    doomed = s.api("/tasks/add?x=3&y=4")["id"]
    queued = task_json(s, added)
    assert queued["where"] == "queued" and queued["where_detail"]["queue"] == "celery", queued
    behind = task_json(s, doomed)["where_detail"]  # beat's demo.tick may queue up too: positions are relative
    assert behind["position"] == queued["where_detail"]["position"] + 1 and behind["total"] >= 2, behind
    assert f"position {behind['position']} of {behind['total']}" in behind["detail"]
    res = s.cli("revoke", doomed)
    assert res.returncode == 0, res.stderr
    assert "removed from queue celery" in res.stdout
    assert s.cli("start", "worker").returncode == 0
    wait_where(s, added, "done", state="succeeded")
    time.sleep(2)  # time enough for the doomed task to run, were it still queued
    gone = task_json(s, doomed)
    assert gone["state"] == "revoked" and "succeeded" not in gone["times"], gone

    # replay: same task and args again, under a new id linked to the old one; its result is seen
    res = s.cli("replay", added[:8])
    assert res.returncode == 0, res.stderr
    assert "rebuilt" not in res.stderr  # the message was captured while it was queued: an exact replay
    new_id = res.stdout.strip()
    assert new_id != added and len(new_id) == 36
    again = wait_where(s, new_id, "done", state="succeeded")
    assert again["result"] == "42" and again["args"] == "(20, 22)" and again["replay_of"] == added
    assert again["queue"] == "celery"

    # a queue no worker consumes: unknown, naming the queue and the worker's -Q
    orphan = send_task(tmp_path, s.settings, "demo.add", (1, 1), "nobody")
    lost = task_json(s, orphan)
    assert lost["where"] == "unknown" and lost["where_detail"]["reason"] == "no-consumer", lost
    assert "no worker consumes nobody" in lost["where_detail"]["detail"]
    assert "-Q celery,dataset,generation,mail" in lost["where_detail"]["detail"]

    # the history survives devstack's stop (read from the file) and its restart
    s.stop()
    offline = json.loads(run_cli("task", failed, "--json", "--config", str(config), cwd=tmp_path).stdout)
    assert offline["where"] == "done" and "ValueError: kaboom" in offline["traceback"]
    s2 = stack(config)
    s2.wait_ready()
    res = s2.cli("tasks", "--state", "failed", "--json")
    assert res.returncode == 0, res.stderr
    assert failed in [row["id"] for row in json.loads(res.stdout)]
    listing = s2.cli("tasks").stdout
    assert added[:8] in listing and new_id[:8] in listing

    # and `tasks clear` empties it
    assert s2.cli("tasks", "clear").returncode == 0
    assert json.loads(s2.cli("tasks", "--json").stdout) == []


async def test_capture_reads_only_new_delivery_tags(redis_server, tmp_path):
    """The message of a received task is captured from `unacked` by its delivery tag: `unacked_index` is read from
    about the newest delivery time seen and only unseen tags are fetched (HMGET), never the whole hash. Stale
    entries present before, and an entry whose delivery time lands behind the newest read, are handled."""
    import asyncio

    from devstack.broker import TaskEvent
    from devstack.tasks import TaskTracker
    from tests.waiting import wait_until_async

    client = redis_server.client(1)

    def deliver(task_id: str, tag: str, at: float) -> None:  # as kombu's Redis transport does (one MULTI)
        message = {"body": "W1tdLCB7fSwge31d", "content-type": "application/json", "headers": {"id": task_id,
                   "task": "demo.add"}, "properties": {"body_encoding": "base64", "delivery_tag": tag}}
        pipe = client.pipeline()
        pipe.zadd("unacked_index", {tag: at}).hset("unacked", tag, json.dumps([message, "", "celery"])).execute()

    now = time.time()
    for n in range(300):  # a dead worker's leftovers, delivered a while ago
        deliver(f"stale-{n}", f"tag-stale-{n}", now - 600 + n)
    tracker = TaskTracker(tmp_path, 1000, client_for=redis_server.client, broker_url=lambda: redis_server.url(1),
                          queues=lambda: ["celery"], worker_queues=["celery"])
    feed = asyncio.create_task(tracker.run(redis_server.url(1)))
    try:
        client.config_resetstat()

        def captured(task_id: str) -> bool:
            tracker.store.flush()
            rows = tracker.history.matches(task_id)
            return bool(rows) and rows[0]["message_captured"]

        for task_id, at in (("first", now), ("late", now - 1.0)):  # "late": behind the newest time already read
            tracker.on_event(TaskEvent("received", task_id, "demo.add", "w@h", time.time()))
            await asyncio.sleep(0.1)  # the capture polls the index meanwhile
            deliver(task_id, f"tag-{task_id}", at)
            await wait_until_async(lambda: captured(task_id), 5, f"{task_id}'s message captured")
        stats = client.info("commandstats")
        assert "cmdstat_hgetall" not in stats, stats
        assert stats["cmdstat_hmget"]["calls"] >= 2
        assert not captured("stale-0")  # never asked for: present, but not a task received meanwhile
    finally:
        feed.cancel()
        await asyncio.gather(feed, return_exceptions=True)
        await asyncio.to_thread(tracker.close)
