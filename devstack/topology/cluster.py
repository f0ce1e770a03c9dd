"""A Redis Cluster devstack launches for the apps' cache: `cluster-1..3` masters (and `cluster-replica-1..3`
with replicas = 1), slots assigned and nodes met by devstack itself, plus `redis`, the standalone broker."""
from __future__ import annotations

import asyncio
from pathlib import Path

from ..probes import RedisProbe
from ..redis_server import RedisEndpoint, plan_redis, resolve_mode
from ..resp import RedisReplyError, raw_command
from ..supervisor.spec import ServiceSpec
from .nodes import HOST, PortPicker, data_node, node_dir, node_kwargs
from .state import parse_cluster_nodes

MASTERS = 3
SLOTS = 16384
NODE_TIMEOUT_MS = 2000  # a killed master's replica takes over within ~3 s instead of 15


def plan(cfg, state_dir: Path, password: str, env: dict[str, str]) -> tuple[RedisEndpoint, list[ServiceSpec]]:
    """`redis` (the broker, launched as usual) and the cluster's nodes; `redis`'s probe forms the cluster."""
    if cfg.mode == "external":
        return cluster_endpoint(cfg, "external", 0, password, None), []
    endpoint, broker = plan_redis(cfg, state_dir, password, env)
    _mode, binary = resolve_mode(cfg)
    ports = PortPicker()
    ports.taken.add(endpoint.port)
    count = MASTERS * (1 + cfg.replicas)
    node_ports = [ports.pick(cfg.cluster_port + i, f"cluster node {i + 1}", "[redis] cluster_port",
                             i == 0 and "cluster_port" in cfg.model_fields_set) for i in range(count)]
    names = [f"cluster-{i + 1}" for i in range(MASTERS)] + [f"cluster-replica-{i + 1}" for i in range(count - MASTERS)]
    endpoint.cluster = tuple((HOST, p) for p in node_ports)
    endpoint.node_names = dict(zip(node_ports, names))
    nodes = []
    for name, port in zip(names, node_ports):
        folder = node_dir(state_dir, name, cfg.persist)
        (folder / "nodes.conf").unlink(missing_ok=True)  # ports may differ from the last run: devstack re-forms it
        nodes.append(data_node(name, binary, folder, port, password, cfg.persist,
                               ("cluster-enabled yes", "cluster-config-file nodes.conf",
                                f"cluster-node-timeout {NODE_TIMEOUT_MS}", "cluster-require-full-coverage yes"), env))
    broker.probe = ClusterProbe(endpoint, broker.probe)
    return endpoint, [broker, *nodes]


def cluster_endpoint(cfg, mode: str, port: int, password: str, running: list[str] | None) -> RedisEndpoint:
    """External: the broker from [redis] url, the cluster from cluster_nodes; launched: ports from the stack."""
    from ..redis_server import external_endpoint

    endpoint = external_endpoint(cfg) if mode == "external" else RedisEndpoint(mode, HOST, port or cfg.port, password)
    listed = running or (cfg.cluster_nodes if mode == "external" else
                         [f"{HOST}:{cfg.cluster_port + i}" for i in range(MASTERS * (1 + cfg.replicas))])
    endpoint.cluster = tuple((h, int(p)) for h, _, p in (n.rpartition(":") for n in listed))
    return endpoint


def slot_ranges(masters: int = MASTERS) -> list[tuple[int, int]]:
    """The slots of each master, as `redis-cli --cluster create` splits them."""
    step = SLOTS / masters
    return [(round(i * step), round((i + 1) * step) - 1) for i in range(masters)]


async def cluster_info(kwargs: dict) -> dict[str, str]:
    text = await raw_command(kwargs, "CLUSTER", "INFO", timeout=1.0)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


async def form_cluster(endpoint: RedisEndpoint) -> None:
    """Assign the slots, MEET every node, make the replicas replicate; a node that already knows its
    cluster (a restart) is left alone."""
    kw = [node_kwargs(p, endpoint.password) for _h, p in endpoint.cluster]
    masters, replicas = kw[:MASTERS], kw[MASTERS:]
    ids = [await raw_command(k, "CLUSTER", "MYID") for k in kw]
    for k, (first, last) in zip(masters, slot_ranges()):
        try:  # ADDSLOTSRANGE is 7.0+: the embedded server is 6.2
            await raw_command(k, "CLUSTER", "ADDSLOTS", *map(str, range(first, last + 1)), timeout=5.0)
        except RedisReplyError as exc:
            if "busy" not in str(exc).lower():
                raise
    for k in kw[1:]:
        await raw_command(kw[0], "CLUSTER", "MEET", HOST, str(k["port"]))
    for k in replicas:  # a replica can only replicate a master it knows
        while len((await raw_command(k, "CLUSTER", "NODES")).splitlines()) < len(kw):
            await asyncio.sleep(0.05)
    for k, master_id in zip(replicas, ids):
        await raw_command(k, "CLUSTER", "REPLICATE", master_id)


class ClusterProbe(RedisProbe):
    """The broker answers PING and every cluster node says cluster_state:ok; the first time the nodes
    answer, devstack forms the cluster."""

    def __init__(self, endpoint: RedisEndpoint, broker: RedisProbe, interval: float = 0.02):
        super().__init__(broker.connect_kwargs, interval)
        self.endpoint = endpoint
        self.formed = False

    async def ping(self) -> bool:
        if not await super().ping():
            return False
        try:
            states = [await cluster_info(node_kwargs(p, self.endpoint.password)) for _h, p in self.endpoint.cluster]
            if not self.formed and all(s.get("cluster_slots_assigned") == "0" for s in states):
                await form_cluster(self.endpoint)
            self.formed = True
        except (RedisReplyError, OSError, asyncio.TimeoutError, ValueError) as exc:
            self.last_error = f"cluster: {exc}"
            return False
        bad = [s for s in states if s.get("cluster_state") != "ok"]
        self.last_error = f"{len(bad)} cluster node(s) not in cluster_state:ok yet" if bad else None
        return not bad and await self._replicas_known()

    async def _replicas_known(self) -> bool:
        """Every replica is one in the first node's view (where the panel and a client's first startup node
        look): REPLICATE is answered at once, but the other nodes learn of it by gossip up to ~1 s later."""
        wanted = len(self.endpoint.cluster) - MASTERS
        if not wanted:
            return True
        try:
            text = await raw_command(node_kwargs(self.endpoint.cluster[0][1], self.endpoint.password), "CLUSTER", "NODES")
        except (RedisReplyError, OSError, asyncio.TimeoutError, ValueError) as exc:
            self.last_error = f"cluster: {exc}"
            return False
        known = sum(1 for n in parse_cluster_nodes(text, lambda h, p: f"{h}:{p}") if n.role == "replica")
        self.last_error = None if known == wanted else f"cluster-1 knows {known} of {wanted} replicas yet"
        return known == wanted
