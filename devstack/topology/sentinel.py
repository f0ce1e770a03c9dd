"""A sentinel group devstack launches: `redis` (master), `redis-replica` and `sentinel-1..3`, each its
own supervised redis-server on loopback with a password; ready once every sentinel names one master."""
from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from urllib.parse import quote

from ..probes import RedisProbe
from ..redis_server import RedisEndpoint, quoted, resolve_mode, stored_secret
from ..resp import RedisReplyError, raw_command
from ..supervisor.spec import ServiceSpec
from .nodes import HOST, PortPicker, data_node, node_dir, node_kwargs

SENTINELS = 3
QUORUM = 2
DOWN_AFTER_MS = 1000  # a crash drill fails over in ~2 s instead of after sentinel's default 30 s
FAILOVER_TIMEOUT_MS = 5000
PASSWORD_FILE = "redis-sentinel.password"  # the sentinels' own password, 0600 in the state dir
DEFAULT_MASTER = "mymaster"
SYNC = ("repl-diskless-sync yes", "repl-diskless-sync-delay 0")  # the replica syncs at once, no dump.rdb


def plan(cfg, state_dir: Path, password: str, env: dict[str, str]) -> tuple[RedisEndpoint, list[ServiceSpec]]:
    """The endpoint the apps get (the sentinel URLs, as an external sentinel setup gives them) and the
    five nodes' specs; `redis`'s probe waits for the whole group."""
    mode, binary = resolve_mode(cfg)
    ports = PortPicker()
    master_port = ports.pick(cfg.port, "Redis", "[redis] port", "port" in cfg.model_fields_set)
    replica_port = ports.pick(master_port + 1, "the Redis replica", "[redis] port")
    sentinel_ports = [ports.pick(cfg.sentinel_port + i, f"sentinel-{i + 1}", "[redis] sentinel_port",
                                 i == 0 and "sentinel_port" in cfg.model_fields_set) for i in range(SENTINELS)]
    endpoint = sentinel_endpoint(cfg, state_dir, mode, master_port, password, sentinel_ports)
    name = endpoint.master_name
    endpoint.node_names = {master_port: "redis", replica_port: "redis-replica"}
    persist = cfg.persist
    master = data_node("redis", binary, node_dir(state_dir, "redis", persist), master_port, password, persist,
                       SYNC, env)
    master.probe = GroupProbe(endpoint)
    replica = data_node("redis-replica", binary, node_dir(state_dir, "redis-replica", persist), replica_port,
                        password, persist, (*SYNC, f"replicaof {HOST} {master_port}"), env)
    ids = [hashlib.sha1(f"{state_dir.resolve()}#sentinel-{i}".encode()).hexdigest() for i in range(SENTINELS)]
    sentinels = []
    for i, port in enumerate(sentinel_ports):
        label = f"sentinel-{i + 1}"
        folder = node_dir(state_dir, label, False)  # sentinel state is rewritten at every start
        peers = [f"sentinel known-sentinel {name} {HOST} {p} {ids[j]}" for j, p in enumerate(sentinel_ports) if j != i]
        conf = write_sentinel_conf(folder, port, ids[i], name, master_port, replica_port, password,
                                   endpoint.sentinel_password, peers)
        sentinels.append(ServiceSpec(label, [binary, str(conf), "--sentinel"], folder, env,
                                     RedisProbe(node_kwargs(port, endpoint.sentinel_password)), stop_timeout=10))
    return endpoint, [master, replica, *sentinels]


def sentinel_endpoint(cfg, state_dir: Path, mode: str, master_port: int, password: str,
                      sentinel_ports: list[int]) -> RedisEndpoint:
    """What the apps get: the sentinel URLs and names, as an external sentinel setup gives them."""
    auth = quote(password, safe="")
    return RedisEndpoint(
        mode, HOST, master_port, password, master_name=cfg.master_name or DEFAULT_MASTER,
        sentinel_password=stored_secret(state_dir, PASSWORD_FILE), sentinels=tuple((HOST, p) for p in sentinel_ports),
        url_override=";".join(f"sentinel://:{auth}@{HOST}:{p}/0" for p in sentinel_ports))


def write_sentinel_conf(folder: Path, port: int, myid: str, name: str, master_port: int, replica_port: int,
                        password: str, sentinel_password: str, peers: list[str]) -> Path:
    """A sentinel's config, with its peers and the replica already known: without them the sentinels find
    each other through hello messages sent every 2 s, and the quorum holds only seconds later."""
    lines = [
        "# Written by devstack at every start; sentinel rewrites it while it runs.",
        f"port {port}", f"bind {HOST}", f"dir {folder}", "daemonize no", 'logfile ""',
        f"sentinel myid {myid}",
        f"requirepass {quoted(sentinel_password)}",
        f"sentinel sentinel-pass {quoted(sentinel_password)}",  # how the sentinels log in to each other
        f"sentinel monitor {name} {HOST} {master_port} {QUORUM}",
        f"sentinel auth-pass {name} {quoted(password)}",
        f"sentinel down-after-milliseconds {name} {DOWN_AFTER_MS}",
        f"sentinel failover-timeout {name} {FAILOVER_TIMEOUT_MS}",
        f"sentinel parallel-syncs {name} 1",
        f"sentinel known-replica {name} {HOST} {replica_port}",
        *peers,
    ]
    conf = folder / "sentinel.conf"
    conf.touch(mode=0o600)
    conf.chmod(0o600)
    conf.write_text("\n".join(lines) + "\n")
    return conf


async def sentinel_answers(endpoint: RedisEndpoint, *command: str) -> list:
    """Each sentinel's reply to `command` (an exception where it failed), in the order of `endpoint.sentinels`."""
    async def ask(host: str, port: int):
        try:
            return await raw_command({"host": host, "port": port, "password": endpoint.sentinel_password},
                                     *command, timeout=1.0)
        except (RedisReplyError, OSError, asyncio.TimeoutError, ValueError) as exc:
            return exc

    return list(await asyncio.gather(*(ask(h, p) for h, p in endpoint.sentinels)))


async def masters_named(endpoint: RedisEndpoint) -> list[tuple[str, int] | None]:
    """The master each sentinel names for `endpoint.master_name` (None: it does not answer or knows none)."""
    replies = await sentinel_answers(endpoint, "SENTINEL", "get-master-addr-by-name", endpoint.master_name or "")
    return [(str(r[0]), int(r[1])) if isinstance(r, list) and len(r) == 2 else None for r in replies]


async def agreed_master(endpoint: RedisEndpoint) -> tuple[str, int] | None:
    named = await masters_named(endpoint)
    return named[0] if named and named[0] is not None and all(m == named[0] for m in named) else None


class GroupProbe(RedisProbe):
    """Ready when every sentinel names the same master, `SENTINEL ckquorum` holds and that master answers
    an authenticated PING; the master found becomes `endpoint.master`, where devstack connects."""

    def __init__(self, endpoint: RedisEndpoint, interval: float = 0.02):
        super().__init__({"host": endpoint.host, "port": endpoint.port, "password": endpoint.password}, interval)
        self.endpoint = endpoint

    async def ping(self) -> bool:
        master = await agreed_master(self.endpoint)
        if master is None:
            self.last_error = "the sentinels do not agree on a master yet"
            return False
        quorum = (await sentinel_answers(self.endpoint, "SENTINEL", "ckquorum", self.endpoint.master_name or ""))[0]
        if isinstance(quorum, Exception):
            self.last_error = f"sentinel quorum: {quorum}"
            return False
        self.connect_kwargs = {**self.connect_kwargs, "host": master[0], "port": master[1]}
        if not await super().ping():
            return False
        self.endpoint.master = master
        return True
