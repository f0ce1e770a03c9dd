"""What the Redis panel shows of a launched topology, read in one cheap round: the master the sentinels name,
the replica's lag and the quorum; a cluster's nodes, slot ranges, keys per node and state."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..redis_server import RedisEndpoint

POLL_TIMEOUT = 0.5  # s: a node that hangs must not hold the panel's once-a-second round for long


@dataclass
class NodeState:
    """One data node as the panel lists it."""

    name: str
    """Its service name (`redis`, `cluster-2`), or host:port for a node devstack did not launch."""
    address: str
    role: str
    """`master`, `replica`, or `down` (it does not answer, or the cluster flags it failed)."""
    master: str = ""
    """A replica: the name of the node it replicates."""
    lag_bytes: int | None = None
    """A replica of a sentinel group: how far its replication offset is behind the master's."""
    slots: tuple[tuple[int, int], ...] = ()
    keys: int | None = None
    """DBSIZE (a cluster node); None when it did not answer."""


@dataclass
class TopologyState:
    """A sentinel group or a cluster at one instant: plain values, never a connection."""

    kind: str
    """`sentinel` or `cluster`."""
    nodes: list[NodeState] = field(default_factory=list)
    master: str | None = None
    """Sentinel: the node every agreeing sentinel names (by role, whatever its service name)."""
    agree: int = 0
    """Sentinel: how many sentinels name that master."""
    sentinels: int = 0
    quorum: int = 0
    """Sentinel: how many must agree to fail over (`SENTINEL MASTER`'s quorum)."""
    state: str = ""
    """Cluster: `ok` or `fail`, as a node that answers reports it."""
    slots_covered: int = 0
    error: str | None = None
    """What could not be read, in words (the rest of the state may still be filled)."""


class TopologyPoller:
    """Reads a topology's state with one connection per node kept across rounds (the panel polls every second)."""

    def __init__(self, endpoint: RedisEndpoint, clients: dict) -> None:
        """`clients`: where the node connections are kept, by (host, port); their owner closes them."""
        self.endpoint = endpoint
        self._clients = clients

    def _client(self, host: str, port: int, password: str | None):
        client = self._clients.get((host, port))
        if client is None:
            from ..broker import fast_fail_client

            client = fast_fail_client(host=host, port=port, password=password, decode_responses=True,
                                      timeout=POLL_TIMEOUT)
            self._clients[(host, port)] = client
        return client

    def _name(self, host: str, port: int) -> str:
        return self.endpoint.node_names.get(port) or f"{host}:{port}"

    def poll(self) -> TopologyState | None:
        """The state now (blocking); None for a standalone Redis."""
        if self.endpoint.is_sentinel and self.endpoint.sentinels:
            return self._sentinel()
        if self.endpoint.cluster:
            return self._cluster()
        return None

    def _ask(self, host: str, port: int, password: str | None, *commands: tuple[str, ...]):
        """The replies to `commands` in one round trip, or the exception in words."""
        from redis import RedisError

        try:
            pipe = self._client(host, port, password).pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            return pipe.execute()
        except (RedisError, OSError) as exc:
            return f"{self._name(host, port)} ({host}:{port}) does not answer: {exc}"

    def _sentinel(self) -> TopologyState:
        endpoint = self.endpoint
        name = endpoint.master_name or ""
        state = TopologyState("sentinel", sentinels=len(endpoint.sentinels))
        named: list[tuple[str, int]] = []
        for i, (host, port) in enumerate(endpoint.sentinels):
            commands = [("SENTINEL", "get-master-addr-by-name", name)]
            if not state.quorum:
                commands.append(("SENTINEL", "MASTER", name))
            replies = self._ask(host, port, endpoint.sentinel_password, *commands)
            if isinstance(replies, str):
                state.error = state.error or replies
                continue
            if isinstance(replies[0], list) and len(replies[0]) == 2:
                named.append((replies[0][0], int(replies[0][1])))
            if len(replies) > 1:  # redis-py parses SENTINEL MASTER into a dict; a flat list otherwise
                fields = replies[1] if isinstance(replies[1], dict) else dict(zip(replies[1][::2], replies[1][1::2]))
                state.quorum = int(fields.get("quorum") or 0)
        if not named:
            state.error = state.error or f"no sentinel names a master {name!r}"
            return state
        master = max(set(named), key=named.count)
        state.agree = named.count(master)
        state.master = self._name(*master)
        self._replication(state, master)
        if state.nodes and state.nodes[0].role == "master" and state.agree >= max(state.quorum, 1):
            # The sentinels may have failed over by themselves (a crashed master): devstack's own clients
            # (the Redis panel's figures, the next `devstack failover`) follow them.
            endpoint.master = master
        return state

    def _replication(self, state: TopologyState, master: tuple[str, int]) -> None:
        """The master's own INFO: its role (a failover may be half done) and each replica's offset lag."""
        replies = self._ask(*master, self.endpoint.password, ("INFO", "replication"))
        if isinstance(replies, str):
            state.nodes.append(NodeState(state.master, f"{master[0]}:{master[1]}", "down"))
            state.error = replies
            return
        info = replies[0]
        state.nodes.append(NodeState(state.master, f"{master[0]}:{master[1]}", str(info.get("role", "?")).replace(
            "slave", "replica")))
        offset = int(info.get("master_repl_offset") or 0)
        for key, replica in sorted(info.items()):
            if key.startswith("slave") and key[5:].isdigit() and isinstance(replica, dict):
                host, port = str(replica.get("ip")), int(replica.get("port") or 0)
                state.nodes.append(NodeState(self._name(host, port), f"{host}:{port}", "replica", state.master,
                                             max(0, offset - int(replica.get("offset") or 0))))

    def _cluster(self) -> TopologyState:
        """CLUSTER INFO and NODES from the first node that answers, then DBSIZE on each node."""
        endpoint = self.endpoint
        state = TopologyState("cluster")
        for host, port in endpoint.cluster:
            replies = self._ask(host, port, endpoint.password, ("CLUSTER", "INFO"), ("CLUSTER", "NODES"))
            if isinstance(replies, str):
                state.error = state.error or replies
                continue
            info = dict(line.split(":", 1) for line in replies[0].splitlines() if ":" in line)
            state.state = info.get("cluster_state", "?").strip()
            state.nodes = parse_cluster_nodes(replies[1], self._name)
            break
        else:
            state.state = "fail"
            return state
        state.slots_covered = sum(last - first + 1 for n in state.nodes if n.role == "master" for first, last in n.slots)
        for node in state.nodes:
            if node.role != "down":
                host, _, port = node.address.rpartition(":")
                replies = self._ask(host, int(port), endpoint.password, ("DBSIZE",))
                node.keys = None if isinstance(replies, str) else int(replies[0])
        return state


def parse_cluster_nodes(text: str, name_of: Callable[[str, int], str]) -> list[NodeState]:
    """CLUSTER NODES (`<id> <ip:port@cport> <flags> <master id> <ping> <pong> <epoch> <link> <slot>...`), by name;
    a node the cluster flags `fail` is `down`."""
    rows = [line.split() for line in text.splitlines() if line.strip()]
    names = {}
    for row in rows:
        host, _, port = row[1].split("@")[0].rpartition(":")
        names[row[0]] = (name_of(host, int(port)), f"{host}:{port}")
    nodes = []
    for row in rows:
        flags = row[2].split(",")
        role = "down" if "fail" in flags or "noaddr" in flags else "master" if "master" in flags else "replica"
        slots = tuple(_slot_range(s) for s in row[8:] if not s.startswith("["))
        nodes.append(NodeState(*names[row[0]], role, names.get(row[3], ("", ""))[0], slots=slots))
    return sorted(nodes, key=lambda n: n.name)


def _slot_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    return int(first), int(last or first)
