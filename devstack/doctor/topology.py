"""doctor on a running sentinel group or cluster: do the sentinels agree on one master, is every slot served.

Asks the nodes themselves (ports from the running stack's status), so it names the node that is wrong."""
from __future__ import annotations

import asyncio
from pathlib import Path

from ..control import request
from ..errors import DevstackError
from ..redis_server import PASSWORD_FILE as REDIS_PASSWORD_FILE
from ..resp import RedisReplyError, raw_command
from ..topology.cluster import cluster_info
from ..topology.state import parse_cluster_nodes
from ..topology.nodes import node_kwargs
from ..topology.sentinel import DEFAULT_MASTER, PASSWORD_FILE
from .context import Context
from .report import FAIL, OK, WARN, Check

NAME = "redis topology"
HOST = "127.0.0.1"
SLOTS = 16384


def check_topology(ctx: Context) -> Check:
    redis_cfg = ctx.config.redis
    if redis_cfg.topology == "standalone" or redis_cfg.mode == "external":
        return Check(NAME, OK, f"{redis_cfg.topology} {redis_cfg.mode} Redis: no launched topology to check")
    state_dir = Path(ctx.config.project.state_dir)
    try:
        status = request(state_dir, "status", timeout=5)
    except DevstackError:
        return Check(NAME, OK, f"no stack is running: the {redis_cfg.topology} nodes are checked while one runs")
    except OSError as exc:
        return Check(NAME, WARN, f"the running stack did not answer ({exc})", "run `devstack status`")
    password = _secret(state_dir, REDIS_PASSWORD_FILE) if ctx.endpoint is None or not ctx.endpoint.password \
        else ctx.endpoint.password
    redis = status.get("redis", {})
    if redis_cfg.topology == "sentinel":
        ports = redis.get("sentinels") or []
        return asyncio.run(_sentinels(ports, _secret(state_dir, PASSWORD_FILE),
                                      redis_cfg.master_name or DEFAULT_MASTER))
    nodes = [int(n.rsplit(":", 1)[1]) for n in redis.get("cluster") or []]
    return asyncio.run(_cluster(nodes, password))


def _secret(state_dir: Path, filename: str) -> str | None:
    path = state_dir / filename
    return path.read_text().strip() if path.exists() else None


async def _ask(port: int, password: str | None, *command: str):
    try:
        return await raw_command({"host": HOST, "port": port, "password": password}, *command, timeout=1.0)
    except (OSError, asyncio.TimeoutError, RedisReplyError, ValueError) as exc:
        return exc


async def _sentinels(ports: list[int], password: str | None, master: str) -> Check:
    answers = await asyncio.gather(*(_ask(p, password, "SENTINEL", "get-master-addr-by-name", master) for p in ports))
    named: dict[str, str] = {}
    for i, (port, answer) in enumerate(zip(ports, answers), 1):
        node = f"sentinel-{i} (port {port})"
        if isinstance(answer, Exception) or not answer:
            why = f"does not answer ({answer})" if isinstance(answer, Exception) else f"knows no master {master!r}"
            return Check(NAME, FAIL, f"{node} {why}",
                         f"`devstack restart sentinel-{i}` (or `devstack start sentinel-{i}` if it was held)")
        named[node] = f"{answer[0]}:{answer[1]}"
    if len(set(named.values())) > 1:
        split = ", ".join(f"{n} names {m}" for n, m in named.items())
        return Check(NAME, FAIL, f"the sentinels disagree on the master: {split}",
                     "wait a few seconds if a failover is running; else restart the odd sentinel out")
    quorum = await _ask(ports[0], password, "SENTINEL", "ckquorum", master)
    if isinstance(quorum, Exception) or not str(quorum).startswith("OK"):
        return Check(NAME, FAIL, f"sentinel-1 says the quorum is not reachable: {quorum}",
                     "`devstack status`: a sentinel that is not ready must be restarted")
    return Check(NAME, OK, f"{len(ports)} sentinels agree: master {master!r} at {next(iter(named.values()))}")


async def _cluster(ports: list[int], password: str | None) -> Check:
    names = {p: f"cluster-{i + 1}" if i < 3 else f"cluster-replica-{i - 2}" for i, p in enumerate(ports)}
    infos = await asyncio.gather(*(cluster_info(node_kwargs(p, password)) for p in ports), return_exceptions=True)
    fix = ("`devstack restart {node}`; if the cluster stays `fail`, `devstack down` then `devstack up` "
           "forms it again")
    answering = [p for p, info in zip(ports, infos) if not isinstance(info, Exception)]
    if not answering:
        return Check(NAME, FAIL, f"no cluster node answers ({infos[0]})", "`devstack down` then `devstack up`")
    view = await _ask(answering[0], password, "CLUSTER", "NODES")
    nodes = {n.name: n for n in parse_cluster_nodes(view, lambda h, p: names.get(p, f"{h}:{p}"))} \
        if isinstance(view, str) else {}
    silent = [(names[p], p, info) for p, info in zip(ports, infos) if isinstance(info, Exception)]
    for name, port, info in silent:
        node = nodes.get(name)
        if node is None or node.slots:
            slots = ",".join(f"{a}-{b}" for a, b in node.slots) if node else "?"
            return Check(NAME, FAIL, f"{name} (port {port}) does not answer ({info}) and no replica took over "
                                     f"its slots {slots}", fix.format(node=name))
    for port, info in zip(ports, infos):
        if isinstance(info, Exception):
            continue
        state, assigned = info.get("cluster_state", "?").strip(), info.get("cluster_slots_assigned", "0").strip()
        if state != "ok":
            down = [n.name for n in nodes.values() if n.role == "down"]
            failing = info.get("cluster_slots_fail", "0").strip()
            culprit = down[0] if down else names[port]
            return Check(NAME, FAIL, f"{names[port]} (port {port}) reports cluster_state:{state} ({failing} slots "
                                     f"failing{'; down: ' + ', '.join(down) if down else ''})", fix.format(node=culprit))
        if assigned != str(SLOTS):
            return Check(NAME, FAIL, f"{names[port]} (port {port}) sees {assigned} of {SLOTS} slots assigned",
                         "`devstack down` then `devstack up` assigns every slot again")
    if silent:
        name, port, info = silent[0]
        return Check(NAME, WARN, f"{name} (port {port}) does not answer ({info}); the cluster serves all {SLOTS} "
                                 "slots without it (a replica took over)",
                     f"`devstack start {name}` (or `devstack restart {name}`): it rejoins as a replica")
    return Check(NAME, OK, f"cluster of {len(ports)} nodes: state ok, all {SLOTS} slots served")
