"""Which Redis nodes a stack runs, from [redis] topology: one server, a sentinel group or a cluster."""
from __future__ import annotations

from pathlib import Path

from ..redis_server import RedisEndpoint, plan_redis
from ..supervisor.spec import ServiceSpec


def plan_topology(cfg, state_dir: Path, password: str, env: dict[str, str]) -> tuple[RedisEndpoint, list[ServiceSpec]]:
    """The endpoint the apps are wired to and the specs of every node to launch ([] when attached).
    The first spec is always `redis`, the node the apps wait for."""
    if cfg.topology == "sentinel" and cfg.mode != "external":
        from . import sentinel

        return sentinel.plan(cfg, state_dir, password, env)
    if cfg.topology == "cluster":
        from . import cluster

        return cluster.plan(cfg, state_dir, password, env)
    endpoint, spec = plan_redis(cfg, state_dir, password, env)
    return endpoint, [spec] if spec is not None else []
