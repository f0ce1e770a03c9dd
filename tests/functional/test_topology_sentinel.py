"""[redis] topology = "sentinel": a real master, replica and three sentinels (redis-server processes), the
demo app wired through them, `devstack failover` and `devstack kill`, and no orphan after `kill -9`."""
from __future__ import annotations

import json
import time

import pytest
import redis

from tests.functional.test_orphans import KILL_WAIT, DevstackRun, alive, describe, kill_and_count_survivors
from tests.stack import free_port, http_get, write_demo_config
from tests.waiting import wait_until

pytestmark = pytest.mark.functional

NODES = ("redis", "redis-replica", "sentinel-1", "sentinel-2", "sentinel-3")


def sentinel_config(tmp_path):
    return write_demo_config(tmp_path, redis=f'topology = "sentinel"\nsentinel_port = {free_port()}')


def env_of(run: DevstackRun, service: str = "worker") -> dict:
    res = run.cli("env", service, "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def status_of(run: DevstackRun) -> dict:
    return json.loads(run.cli("status", "--json").stdout)


def sentinel_clients(run: DevstackRun) -> list[redis.Redis]:
    password = (run.state_dir / "redis-sentinel.password").read_text().strip()
    ports = status_of(run)["redis"]["sentinels"]
    return [redis.Redis(port=p, password=password, socket_timeout=2) for p in ports]


def named_masters(run: DevstackRun) -> set[int]:
    return {int(c.execute_command("SENTINEL", "get-master-addr-by-name", "mymaster")[1]) for c in sentinel_clients(run)}


def result(run: DevstackRun, task_id: str) -> dict | None:
    answer = http_get(run.api_url(f"/tasks/{task_id}"))
    return answer if answer and answer.get("state") in ("SUCCESS", "FAILURE") else None


def log_tails(run: DevstackRun, *services: str, lines: int = 40) -> str:
    """What each service logged last, appended to a timeout's message (CI only shows the assertion)."""
    return "".join(f"\n--- devstack logs {name} -n {lines}\n" + run.cli("logs", name, "-n", str(lines)).stdout
                   for name in services)


def send(run: DevstackRun, path: str) -> str:
    return http_get(run.api_url(path))["id"]


def test_env_json_shows_the_sentinel_variables_masked(tmp_path):
    run = DevstackRun(sentinel_config(tmp_path))
    env = env_of(run)
    assert env["REDIS_USE_SENTINEL"] == "true" and env["CELERY_USE_SENTINEL"] == "true"
    assert env["REDIS_SENTINEL_SERVICE_NAME"] == env["CELERY_SENTINEL_MASTER_NAME"] == "mymaster"
    assert len(env["REDIS_SENTINELS"].split(",")) == 3
    assert env["REDIS_SENTINEL_PASSWORD"] == env["CELERY_SENTINEL_PASSWORD"] == env["REDIS_PASSWORD"] == "***"
    parts = env["CELERY_BROKER_URL"].split(";")
    assert len(parts) == 3 and all(p.startswith("sentinel://:***@127.0.0.1:") and p.endswith("/1") for p in parts)
    secret = (run.state_dir / "redis-sentinel.password").read_text().strip()
    assert secret not in json.dumps(env) and secret != (run.state_dir / "redis.password").read_text().strip()


def test_sentinel_stack_runs_the_demo_and_survives_a_failover(tmp_path):
    run = DevstackRun(sentinel_config(tmp_path)).start()
    try:
        run.wait_ready(60)
        status = status_of(run)
        assert all(status["services"][n]["state"] == "ready" for n in NODES), status["services"]
        first = send(run, "/tasks/add?x=20&y=22")
        assert wait_until(lambda: result(run, first), 20, "a task through the sentinels")["result"] == 42
        before = named_masters(run)
        assert before == {status["redis"]["port"]}  # every sentinel names the `redis` node

        in_flight = [send(run, "/tasks/sleep?seconds=0.3") for _ in range(10)]
        res = run.cli("failover")
        assert res.returncode == 0, res.stderr
        assert "redis (127.0.0.1:" in res.stdout and "-> redis-replica (127.0.0.1:" in res.stdout, res.stdout
        after = named_masters(run)
        assert len(after) == 1 and after != before, f"the sentinels name {after} after the failover"

        new = [send(run, f"/tasks/add?x={i}&y=1") for i in range(5)]
        assert wait_until(lambda: all(result(run, t) for t in new), 30,
                          lambda: "tasks sent after the failover" + log_tails(run, "worker", "api", "redis-replica"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(result(run, t) for t in in_flight):
            time.sleep(0.2)
        done = sum(1 for t in in_flight if result(run, t))
        print(f"tasks sent before the failover that completed: {done} of {len(in_flight)}")
        assert done == len(in_flight), f"only {done} of {len(in_flight)} tasks sent before the failover completed"
    finally:
        run.stop()


def test_kill_restarts_a_node_unless_held(tmp_path):
    run = DevstackRun(sentinel_config(tmp_path)).start()
    try:
        run.wait_ready(60)
        res = run.cli("kill", "sentinel-2")
        assert res.returncode == 0 and "supervision restarts it" in res.stdout, res.stderr
        wait_until(lambda: (s := status_of(run)["services"]["sentinel-2"])["restarts"] >= 1
                   and s["state"] == "ready", 20, "sentinel-2 restarted")
        held = run.cli("kill", "redis-replica", "--hold")
        assert held.returncode == 0, held.stderr
        time.sleep(2.5)  # longer than the first restart backoff (1 s)
        assert status_of(run)["services"]["redis-replica"]["state"] not in ("ready", "starting")
        wrong = run.cli("kill", "api")
        assert wrong.returncode == 1 and "redis-replica" in wrong.stderr and "Traceback" not in wrong.stderr
    finally:
        run.stop()


def test_no_node_survives_kill_9_of_devstack(tmp_path):
    run = DevstackRun(sentinel_config(tmp_path)).start()
    try:
        run.wait_ready(60)
        survivors = kill_and_count_survivors(run, 2 * len(NODES) + 8)  # nodes and guards, apps and guards
        assert not survivors, f"{len(survivors)} process(es) outlived devstack by {KILL_WAIT} s:\n{describe(survivors)}"
    finally:
        run.stop()
