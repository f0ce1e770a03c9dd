"""The drills run on a launched topology: a sentinel failover, timed, and SIGKILL to one Redis node."""
from __future__ import annotations

import asyncio
import os
import signal
import time

from ..errors import DevstackError
from ..redis_server import RedisEndpoint
from ..resp import RedisReplyError, encode_command, raw_command, read_reply
from .sentinel import agreed_master, masters_named, sentinel_answers

FAILOVER_PATIENCE = 30.0  # seconds for the sentinels to agree on the new master
REFUSALS = ("NOGOODSLAVE", "NOGOODREPLICA")  # no replica fit to promote yet (it is still syncing)


async def failover(endpoint: RedisEndpoint) -> dict:
    """`SENTINEL FAILOVER`, then wait until every sentinel names another master and it takes a write."""
    if not endpoint.is_sentinel or endpoint.mode == "external":
        raise DevstackError('`devstack failover` drills the sentinel group devstack launches. Fix: set [redis] '
                            'topology = "sentinel" (without mode = "external") and restart the stack.', 2)
    node_at = endpoint.node_names
    old = await agreed_master(endpoint) or endpoint.master  # fresh: the sentinels may have moved it by themselves
    began = time.monotonic()
    deadline = began + FAILOVER_PATIENCE
    await _quiesce(endpoint, old)
    await _ask_for_failover(endpoint, deadline)
    while True:
        named = await masters_named(endpoint)
        new = named[0]
        if new is not None and new != old and all(m == new for m in named):
            break
        if time.monotonic() > deadline:
            raise DevstackError(f"the sentinels did not agree on a new master within {FAILOVER_PATIENCE:.0f} s "
                                f"(they name {', '.join(_where(m, node_at) for m in named)}). Fix: see "
                                "`devstack logs sentinel-1` (and -2, -3) for the reason.", 1)
        await asyncio.sleep(0.02)
    agreed = time.monotonic() - began
    await _demote(endpoint, old, new, deadline)
    await _first_write(endpoint, new, deadline)
    endpoint.master = new
    return {"old": _where(old, node_at), "new": _where(new, node_at), "agreed_seconds": round(agreed, 3),
            "writable_seconds": round(time.monotonic() - began, 3)}


PAUSE_MS = 10_000  # the old master's writes wait at most this long (the pause lifts itself after it)


async def _quiesce(endpoint: RedisEndpoint, old: tuple[str, int] | None) -> None:
    """Hold the old master's writes (they wait, they do not fail) and let the replica catch up first, so
    the promoted replica has every message and result: what Redis' own FAILOVER command does, and what
    SENTINEL FAILOVER does not (writes taken between the two are lost when the old master resyncs)."""
    if old is None:
        return
    kwargs = {"host": old[0], "port": old[1], "password": endpoint.password}
    try:
        await raw_command(kwargs, "CLIENT", "PAUSE", str(PAUSE_MS), "WRITE", timeout=1.0)
    except (RedisReplyError, OSError, asyncio.TimeoutError):
        return  # no pause (gone, or older than 6.2): the failover goes on as sentinel does it
    until = time.monotonic() + 2.0
    while time.monotonic() < until:
        try:
            info = await raw_command(kwargs, "INFO", "replication", timeout=1.0)
        except (RedisReplyError, OSError, asyncio.TimeoutError):
            return
        fields = dict(line.split(":", 1) for line in str(info).splitlines() if ":" in line)
        offset = fields.get("master_repl_offset", "").strip()
        replicas = [v for k, v in fields.items() if k.startswith("slave") and k[5:].isdigit()]
        if replicas and all(f"offset={offset}," in v + "," for v in replicas):
            return
        await asyncio.sleep(0.01)


async def _ask_for_failover(endpoint: RedisEndpoint, deadline: float) -> None:
    while True:
        reply = (await sentinel_answers(endpoint, "SENTINEL", "FAILOVER", endpoint.master_name or ""))[0]
        if not isinstance(reply, Exception) or "INPROG" in str(reply):
            return
        if not any(word in str(reply) for word in REFUSALS) or time.monotonic() > deadline:
            raise DevstackError(f"sentinel-1 refused the failover: {reply}. Fix: wait until `devstack status` shows "
                                "redis-replica ready and retry; `devstack logs sentinel-1` says more.", 1)
        await asyncio.sleep(0.1)


async def _demote(endpoint: RedisEndpoint, old: tuple[str, int] | None, new: tuple[str, int],
                  deadline: float) -> None:
    """Make the old master a replica now, as the sentinels do only once they next read its INFO (seconds
    later): until then it still takes writes from clients connected to it (a Celery result backend is),
    and those are lost when it resyncs. Its clients are dropped so they ask the sentinels again. Retried
    until its ROLE says replica (a reply late under load must not leave it a master, paused for PAUSE_MS)."""
    if old is None:
        return
    kwargs = {"host": old[0], "port": old[1], "password": endpoint.password}
    while True:
        await _demote_once(endpoint, old, new)
        try:
            role = await raw_command(kwargs, "ROLE", timeout=3.0)
        except (RedisReplyError, OSError, asyncio.TimeoutError):
            return  # gone meanwhile: the sentinels convert it when it is back
        demoted = isinstance(role, list) and bool(role) and str(role[0]) in ("slave", "replica")
        if demoted or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.05)


async def _demote_once(endpoint: RedisEndpoint, old: tuple[str, int], new: tuple[str, int]) -> None:
    # One transaction, as sentinel sends it: a client blocked in BRPOP then sees its connection close
    # (kombu reconnects) instead of an UNBLOCKED error reply first (kombu's worker exits on it).
    commands = [["AUTH", endpoint.password or ""], ["MULTI"], ["REPLICAOF", new[0], str(new[1])],
                ["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"], ["EXEC"], ["CLIENT", "UNPAUSE"]]
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*old), 3.0)
    except (OSError, asyncio.TimeoutError):
        return
    try:
        writer.write(b"".join(encode_command(c) for c in commands[0 if endpoint.password else 1:]))
        await writer.drain()
        for _ in commands[0 if endpoint.password else 1:]:
            await asyncio.wait_for(read_reply(reader), 3.0)
    except (RedisReplyError, OSError, asyncio.TimeoutError, ValueError):
        pass
    finally:
        writer.close()


async def _first_write(endpoint: RedisEndpoint, master: tuple[str, int], deadline: float) -> None:
    """The new master takes writes only once it left read-only replica mode: wait for that."""
    kwargs = {"host": master[0], "port": master[1], "password": endpoint.password}
    while True:
        try:
            await raw_command(kwargs, "SET", "devstack:failover", str(time.time()), timeout=1.0)
            return
        except (RedisReplyError, OSError, asyncio.TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise DevstackError(f"the new master {master[0]}:{master[1]} refuses writes: {exc}", 1) from None
        await asyncio.sleep(0.02)


def _where(address: tuple[str, int] | None, node_at: dict[int, str]) -> str:
    if address is None:
        return "no master"
    name = node_at.get(address[1])
    return f"{name} ({address[0]}:{address[1]})" if name else f"{address[0]}:{address[1]}"


def kill_node(services: dict, nodes: tuple[str, ...], name: str, hold: bool) -> dict:
    """SIGKILL to Redis node `name` (a crash, not a stop); supervision restarts it unless ``hold``."""
    if name not in nodes:
        raise DevstackError(f"`devstack kill` takes a Redis node of this stack: {', '.join(nodes)}; "
                            f"{name!r} is not one (`devstack stop` stops the other services).", 2)
    service = services[name]
    pid = service.pid
    if not pid:
        raise DevstackError(f"{name} is not running ({service.state.value}); `devstack start {name}` starts it.", 1)
    if hold:
        service.hold()  # its exit is then final until `devstack start`
        service.held = True
    os.kill(pid, signal.SIGKILL)
    return {"node": name, "pid": pid, "held": hold}
