"""How long `devstack task ID` takes to find one message among 100,000 queued ones.

Starts a throwaway redis-server (password, loopback), LPUSHes N protocol-2 messages shaped like
Celery's (headers with id/argsrepr, base64 JSON body: ~900 bytes each) onto one queue, then times
`MessageFinder.in_queues` for the message a worker takes next (index -1), the newest (index 0, the
last one scanned), the middle, and an id that is not there (a full scan). Median of 5 runs each.

    .venv/bin/python bench/task_where_bench.py [--messages 100000]
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

from devstack.tasks import MessageFinder, TaskTracker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message(task_id: str, i: int) -> bytes:
    body = base64.b64encode(json.dumps([[i, i + 1], {"user": "someone@example.com"}, {
        "callbacks": None, "errbacks": None, "chain": None, "chord": None}]).encode()).decode()
    return json.dumps({"body": body, "content-encoding": "utf-8", "content-type": "application/json",
                       "headers": {"lang": "py", "task": "demo.add", "id": task_id, "shadow": None, "eta": None,
                                   "expires": None, "group": None, "group_index": None, "retries": 0,
                                   "timelimit": [None, None], "root_id": task_id, "parent_id": None,
                                   "argsrepr": f"({i}, {i + 1})", "kwargsrepr": "{'user': 'someone@example.com'}",
                                   "origin": "gen1234@laptop", "ignore_result": False},
                       "properties": {"correlation_id": task_id, "reply_to": str(uuid.uuid4()),
                                      "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "dataset"},
                                      "priority": 0, "body_encoding": "base64", "delivery_tag": str(uuid.uuid4())}
                       }).encode()


def timed(fn, runs: int = 5) -> float:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    n = parser.parse_args().messages
    folder = tempfile.mkdtemp()
    port, password = free_port(), os.urandom(8).hex()
    proc = subprocess.Popen([shutil.which("redis-server") or str(Path(sys.executable).with_name("redis-server")), "--port", str(port), "--bind",
                             "127.0.0.1", "--requirepass", password, "--save", "", "--dir", folder],
                            stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, password=password, db=1)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        ids = [str(uuid.uuid4()) for _ in range(n)]
        pipe = client.pipeline(transaction=False)
        for i, task_id in enumerate(ids):
            pipe.lpush("dataset", message(task_id, i))
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()
        size = client.memory_usage("dataset") or 0
        finder = MessageFinder(client)
        found = finder.in_queues(ids[n // 2], ["dataset"])
        assert found is not None and found.position == n // 2 + 1, found
        print(f"{n} messages in one queue ({size / 1e6:.0f} MB in Redis); find one by id, median of 5:")
        for label, task_id in (("next out (index -1)", ids[0]), ("middle", ids[n // 2]),
                               ("newest (index 0)", ids[-1]), ("absent (full scan)", str(uuid.uuid4()))):
            print(f"  {label:<22} {timed(lambda: finder.in_queues(task_id, ['dataset'])):7.1f} ms")
        # The whole answer behind `devstack task ID` (history, broker, result backend; without the CLI's
        # start-up and the control socket): one scan per id, the result backend asked first.
        tracker = TaskTracker(Path(folder), 100, client_for=lambda db: client, broker_url=lambda: "redis://",
                              queues=lambda: ["dataset"], worker_queues=["dataset"], backend_db=1)
        try:
            print("  the whole `devstack task ID` answer (TaskTracker.detail), median of 5:")
            for label, task_id in (("next out (index -1)", ids[0]), ("absent", str(uuid.uuid4()))):
                print(f"  {label:<22} {timed(lambda: tracker.detail(task_id)):7.1f} ms")
        finally:
            tracker.close()
    finally:
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
