"""[redis] topology = "cluster": three (or six) real cluster nodes formed by devstack, redis-py's RedisCluster
working from the variables the apps get, a task round trip on the separate standalone broker, no orphan."""
from __future__ import annotations

import json

import pytest
from redis.cluster import ClusterNode, RedisCluster

from tests.functional.test_orphans import KILL_WAIT, DevstackRun, describe, kill_and_count_survivors
from tests.stack import http_get, write_demo_config
from tests.waiting import wait_until

pytestmark = pytest.mark.functional


def cluster_config(tmp_path, replicas: int = 0):
    return write_demo_config(tmp_path, redis=f'topology = "cluster"\ncluster_port = {17300 + 20 * replicas}\nreplicas = {replicas}')


@pytest.mark.parametrize("replicas", [0, 1])
def test_cluster_variables_work_with_redis_cluster_and_the_broker_runs_tasks(tmp_path, replicas):
    run = DevstackRun(cluster_config(tmp_path, replicas)).start()
    try:
        run.wait_ready(60)
        env = json.loads(run.cli("env", "api", "--json", "--show-secrets").stdout)
        masked = json.loads(run.cli("env", "api", "--json").stdout)
        assert env["REDIS_USE_CLUSTERS"] == "true" and masked["REDIS_CLUSTERS_PASSWORD"] == "***"
        nodes = [n.rpartition(":") for n in env["REDIS_CLUSTERS"].split(",")]
        assert len(nodes) == 3 * (1 + replicas)
        cluster = RedisCluster(startup_nodes=[ClusterNode(h, int(p)) for h, _, p in nodes],
                               password=env["REDIS_CLUSTERS_PASSWORD"])
        keys = [f"key-{i}" for i in range(60)]
        for i, key in enumerate(keys):
            cluster.set(key, i)
        assert len({cluster.keyslot(k) for k in keys}) > 30  # across slots, hence across the three masters
        assert [int(cluster.get(k)) for k in keys] == list(range(60))
        assert len(cluster.get_primaries()) == 3 and len(cluster.get_replicas()) == 3 * replicas
        assert env["CELERY_BROKER_URL"].startswith("redis://") and "sentinel" not in env["CELERY_BROKER_URL"]
        task = http_get(run.api_url("/tasks/add?x=40&y=2"))["id"]
        done = wait_until(lambda: (r := http_get(run.api_url(f"/tasks/{task}"))) and r["state"] == "SUCCESS" and r,
                          20, "a task on the standalone broker")
        assert done["result"] == 42
        cluster.close()
        survivors = kill_and_count_survivors(run, 2 * (4 + 3 * (1 + replicas)))
        assert not survivors, f"{len(survivors)} process(es) outlived devstack by {KILL_WAIT} s:\n{describe(survivors)}"
    finally:
        run.stop()
