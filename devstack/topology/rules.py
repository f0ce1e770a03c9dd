"""The [redis] topology keys checked together: which topology goes with which mode, and what each needs."""
from __future__ import annotations

from typing import Callable

def topology_rules(redis, error: Callable[[str, str], Exception]) -> None:
    """Raise ``error(key, text)`` for a [redis] table whose topology keys do not fit together."""
    topology, mode = redis.topology, redis.mode
    if topology == "sentinel" and mode == "external" and not redis.is_sentinel:
        raise error("topology", 'topology = "sentinel" with mode = "external" attaches to your sentinels, so url '
                    'must list them. Fix: url = "sentinel://:<password>@h1:26379;sentinel://:<password>@h2:26379" '
                    'with master_name, or remove mode = "external" to let devstack launch a sentinel group.')
    if topology != "standalone" and mode == "docker":
        raise error("topology", f'topology = "{topology}" is launched from redis-server processes, not Docker. '
                    'Fix: use mode = "auto" (or "embedded"/"binary"), or topology = "standalone".')
    if topology == "cluster" and mode == "external":
        if not redis.cluster_nodes:
            raise error("cluster_nodes", 'topology = "cluster" with mode = "external" needs the cluster\'s nodes. '
                        'Fix: cluster_nodes = ["10.0.0.1:7000", "10.0.0.2:7000"] (url stays the Celery broker).')
    if redis.cluster_nodes and not (topology == "cluster" and mode == "external"):
        raise error("cluster_nodes", 'cluster_nodes lists an external cluster, so it needs topology = "cluster" and '
                    'mode = "external". Fix: add both, or remove cluster_nodes to let devstack launch the cluster.')
    if redis.replicas and topology != "cluster":
        raise error("replicas", 'replicas applies to topology = "cluster" (a sentinel group always has one replica). '
                    'Fix: remove it, or set topology = "cluster".')
