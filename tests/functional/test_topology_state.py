"""`Stack.redis_topology()` over a real cluster with replicas (six redis-server nodes formed by devstack): three
masters serving all 16384 slots, keys per node; the kill drill on a master shows `fail`, then `ok` once its
replica is promoted, in that call and in `devstack doctor`, and the killed node rejoins as a replica."""
from __future__ import annotations

import asyncio
import time

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from devstack.api import Stack
from devstack.config import load_config
from tests.functional.test_orphans import DevstackRun
from tests.functional.test_topology_doctor import topology_line
from tests.stack import free_port, write_demo_config

pytestmark = pytest.mark.functional

MASTERS = ["cluster-1", "cluster-2", "cluster-3"]


async def _until(stack: Stack, condition, timeout: float, what: str, seen: list):
    """The first state `condition` accepts, polling as the panel does (faster); every state seen is kept."""
    deadline = time.monotonic() + timeout
    while True:
        state = await asyncio.to_thread(stack.redis_topology)
        seen.append(state)
        if condition(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s; last state: {state}")
        await asyncio.sleep(0.05)


def _roles(state) -> dict[str, str]:
    return {n.name: n.role if n.role != "replica" else f"replica of {n.master}" for n in state.nodes}


async def _redis_only(tmp_path, redis_settings: str):
    """(config path, its CLI, a started Stack) for a topology with no app service: the nodes alone."""
    path = write_demo_config(tmp_path, redis=redis_settings, api="enabled = false", worker="enabled = false",
                             beat="enabled = false")
    stack = Stack.from_config(load_config(path))
    try:
        await stack.start(lambda: None)
    except BaseException:
        await stack.shutdown()  # what it started before failing
        raise
    return path, DevstackRun(path).cli, stack


async def test_cluster_state_and_a_killed_master_failing_then_ok_after_its_replica_took_over(tmp_path):
    began = time.monotonic()
    path, cli, stack = await _redis_only(tmp_path, 'topology = "cluster"\ncluster_port = 17460\nreplicas = 1')
    try:
        assert await stack.wait_all_ready(60)
        seen: list = []
        state = await asyncio.to_thread(stack.redis_topology)
        assert (state.kind, state.state, state.slots_covered) == ("cluster", "ok", 16384), state
        assert _roles(state) == {**{m: "master" for m in MASTERS},
                                 **{f"cluster-replica-{i}": f"replica of cluster-{i}" for i in (1, 2, 3)}}
        endpoint = stack.engine.endpoint
        cluster = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in endpoint.cluster],
                               password=endpoint.password)
        for i in range(30):
            cluster.set(f"key-{i}", i)
        cluster.close()
        state = await _until(stack, lambda s: all(n.keys is not None for n in s.nodes)
                             and sum(n.keys for n in s.nodes if n.role == "master") == 30
                             and sum(n.keys for n in s.nodes if n.role == "replica") == 30, 5, "30 keys on each side", seen)
        assert all(n.keys for n in state.nodes if n.role == "master"), state.nodes  # spread over the three
        assert "OK" in await asyncio.to_thread(topology_line, DevstackRun(path))

        # The replica waits to be let go, so the `fail` window lasts as long as the test needs (doctor included),
        # instead of the ~1 s Redis leaves between flagging the master failed and electing its replica.
        replica = redis.Redis(port=endpoint.cluster[3][1], password=endpoint.password)
        replica.config_set("cluster-replica-no-failover", "yes")
        killed = await asyncio.to_thread(cli, "kill", "cluster-1", "--hold")
        assert killed.returncode == 0, killed.stderr
        failed = await _until(stack, lambda s: s.state == "fail", 15, "cluster_state:fail after the kill", seen)
        assert _roles(failed)["cluster-1"] == "down" and failed.slots_covered == 16384 - 5461, failed
        line = await asyncio.to_thread(topology_line, DevstackRun(path))
        assert "FAIL" in line and "cluster-1" in line, line

        replica.config_set("cluster-replica-no-failover", "no")
        replica.close()
        promoted = await _until(stack, lambda s: s.state == "ok", 15, "cluster_state:ok after the promotion", seen)
        assert _roles(promoted)["cluster-replica-1"] == "master" and promoted.slots_covered == 16384, promoted
        line = await asyncio.to_thread(topology_line, DevstackRun(path))
        assert "WARN" in line and "cluster-1" in line and "serves all 16384 slots without it" in line, line

        started = await asyncio.to_thread(cli, "start", "cluster-1")
        assert started.returncode == 0, started.stderr
        await _until(stack, lambda s: _roles(s)["cluster-1"] == "replica of cluster-replica-1", 20,
                     "cluster-1 back as the replica of its old replica", seen)
        line = await asyncio.to_thread(topology_line, DevstackRun(path))
        assert "OK" in line and "all 16384 slots" in line, line
    finally:
        await stack.shutdown()
    print(f"cluster state test: {time.monotonic() - began:.1f} s")


async def test_a_crashed_master_the_sentinels_replace_moves_devstacks_own_clients(tmp_path):
    """No `devstack failover`: the master is killed and held down, the sentinels promote its replica by
    themselves (down-after 1 s); the panel names the new master and devstack's Redis figures come from it."""
    _, cli, stack = await _redis_only(tmp_path, f'topology = "sentinel"\nsentinel_port = {free_port()}')
    try:
        assert await stack.wait_all_ready(60)
        seen: list = []
        state = await _until(stack, lambda s: s.master == "redis" and s.agree == 3, 10, "the sentinels on redis", seen)
        old = stack.engine.endpoint.master
        killed = await asyncio.to_thread(cli, "kill", "redis", "--hold")
        assert killed.returncode == 0, killed.stderr
        state = await _until(stack, lambda s: s.master == "redis-replica" and s.agree >= s.quorum
                             and s.nodes and s.nodes[0].role == "master", 30, "the replica promoted", seen)
        assert stack.engine.endpoint.master != old, (old, state)
        stats, _ = await asyncio.to_thread(stack.broker_poll)
        assert stats.ok, stats.error
    finally:
        await stack.shutdown()
