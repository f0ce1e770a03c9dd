"""The Redis panel per topology: its lines from a sentinel group's or a cluster's state (plain dataclasses),
`F` (failover) offered only behind sentinels, and over a real sentinel group the master named by role."""
from __future__ import annotations

import asyncio
import time

import pytest

from devstack.api import NodeState, TopologyState
from tests.stack import free_port
from tests.waiting import wait_until_async
from tui.app import DevstackApp
from tui.redis_panel import topology_text

from .fake_source import FakeSource
from .helpers import SIZE, demo_tui

SENTINEL = TopologyState("sentinel", [NodeState("redis", "127.0.0.1:6379", "master"),
                                      NodeState("redis-replica", "127.0.0.1:6380", "replica", "redis", 2048)],
                         master="redis", agree=3, sentinels=3, quorum=2)
CLUSTER = TopologyState("cluster", [
    NodeState("cluster-1", "127.0.0.1:7000", "down", slots=((0, 5460),)),
    NodeState("cluster-2", "127.0.0.1:7001", "master", slots=((5461, 10922),), keys=4),
    NodeState("cluster-replica-1", "127.0.0.1:7003", "master", slots=((0, 5460),), keys=7),
    NodeState("cluster-replica-2", "10.0.0.2:7004", "replica", "cluster-2", keys=4),
], state="fail", slots_covered=10923, error="cluster-1 (127.0.0.1:7000) does not answer: refused")


def test_sentinel_lines_name_the_master_the_quorum_and_the_replica_lag():
    assert topology_text(SENTINEL).plain.splitlines() == [
        "master redis :6379 · sentinels 3/3 (quorum 2)",
        " redis-replica :6380 replica · lag 2048 B",
    ]
    after = TopologyState("sentinel", [NodeState("redis-replica", "127.0.0.1:37772", "master")],
                          master="redis-replica", agree=3, sentinels=3, quorum=2)
    assert len(topology_text(after).plain.splitlines()[0]) <= 58  # the left column: no wrapped line


def test_cluster_lines_give_state_slots_keys_and_the_node_that_is_down():
    assert topology_text(CLUSTER).plain.splitlines() == [
        "cluster fail · 10923/16384 slots · 2 masters",
        " cluster-1 :7000 down 0-5460",
        " cluster-2 :7001 master 5461-10922 · 4 keys",
        " cluster-replica-1 :7003 master 0-5460 · 7 keys",
        " cluster-replica-2 10.0.0.2:7004 replica of cluster-2 · 4 keys",
        "✗ cluster-1 (127.0.0.1:7000) does not answer: refused",
    ]


class SentinelSource(FakeSource):
    """FakeSource behind a sentinel group whose failover swaps the master."""

    poll_seconds = 0.1  # the state after the failover must reach the screen

    def __init__(self) -> None:
        super().__init__()
        self.state = SENTINEL
        self.failovers = 0

    def redis_topology(self):
        return self.state

    async def failover(self) -> dict:
        self.failovers += 1
        self.state = TopologyState("sentinel", [NodeState("redis-replica", "127.0.0.1:6380", "master")],
                                   master="redis-replica", agree=3, sentinels=3, quorum=2)
        return {"old": "redis (127.0.0.1:6379)", "new": "redis-replica (127.0.0.1:6380)",
                "agreed_seconds": 0.5, "writable_seconds": 0.61}


def _notes(app) -> str:
    return " | ".join(n.message for n in app._notifications)


@pytest.mark.functional  # the whole app for seconds (no child process), as in test_header.py
async def test_f_is_offered_behind_sentinels_only_and_reports_the_new_master():
    plain = DevstackApp(FakeSource())
    async with plain.run_test(size=SIZE) as pilot:
        await wait_until_async(lambda: "PONG" in str(plain.query_one("#redis-stats").render()), 5, "the panel")
        assert plain.check_action("failover", ()) is False  # one Redis server: no F in the footer
    source = SentinelSource()
    app = DevstackApp(source)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until_async(lambda: "master redis :6379 ·" in str(app.query_one("#redis-stats").render()), 5,
                               "the sentinel lines")
        assert app.check_action("failover", ()) is True
        assert "master" not in app.processes.border_title  # `redis` is the master: its name says so
        await pilot.press("F")
        await wait_until_async(lambda: "→ redis-replica" in _notes(app), 5, "the failover's result line")
        assert source.failovers == 1 and "writable after 0.61 s" in _notes(app)
        await wait_until_async(lambda: app.processes.border_title.endswith("· master redis-replica"), 5,
                               "the process list's title naming the master once it is not `redis`")


@pytest.mark.functional
async def test_real_sentinel_group_panel_names_the_master_by_role_and_f_fails_over(tmp_path):
    """A real master, replica and three sentinels under the TUI: the panel and `redis_topology()` name
    `redis` as master; after `F` they name `redis-replica` (its service name did not change, its role did)."""
    began = time.monotonic()
    async with demo_tui(tmp_path, redis=f'topology = "sentinel"\nsentinel_port = {free_port()}', api="enabled = false",
                        beat="enabled = false") as (app, pilot, engine):
        for _ in range(50):  # the replica may still be syncing when the stack is ready (seen once under CI load)
            state = await asyncio.to_thread(app.source.redis_topology)
            if any(n.role == "replica" for n in state.nodes):
                break
            await asyncio.sleep(0.2)
        assert (state.kind, state.master, state.agree, state.sentinels, state.quorum) == ("sentinel", "redis", 3, 3, 2)
        replica = next(n for n in state.nodes if n.role == "replica")
        assert replica.name == "redis-replica" and replica.master == "redis" and replica.lag_bytes is not None
        panel = app.query_one("#redis-stats")
        await wait_until_async(lambda: "master redis :" in str(panel.render()), 10, "the master in the panel")
        await wait_until_async(lambda: app.check_action("failover", ()), 5, "F offered")

        await pilot.press("F")
        await wait_until_async(lambda: "→ redis-replica" in _notes(app), 40, lambda: f"the result line: {_notes(app)}")
        state = await asyncio.to_thread(app.source.redis_topology)
        assert state.master == "redis-replica" and state.agree == 3, state

        async def old_master_replicates():
            return [n.name for n in (await asyncio.to_thread(app.source.redis_topology)).nodes if n.role == "replica"]
        deadline = time.monotonic() + 10
        while await old_master_replicates() != ["redis"] and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert await old_master_replicates() == ["redis"]
        await wait_until_async(lambda: "master redis-replica" in str(panel.render()), 10, "the new master in the panel")
        assert app.processes.border_title.endswith("· master redis-replica"), app.processes.border_title
    print(f"sentinel panel test: {time.monotonic() - began:.1f} s")
