"""Which Redis nodes a stack runs, from [redis] topology: one server, a sentinel group or a cluster."""
from __future__ import annotations

from pathlib import Path

from ..redis_server import RedisEndpoint, external_endpoint, plan_redis
from ..supervisor.spec import ServiceSpec


def plan_topology(cfg, state_dir: Path, password: str, env: dict[str, str]) -> tuple[RedisEndpoint, list[ServiceSpec]]:
    """The endpoint the apps are wired to and the specs of every node to launch ([] when attached).
    The first spec is always `redis`, the node the apps wait for."""
    if cfg.topology == "sentinel" and cfg.mode != "external":
        from .sentinel import plan

        return plan(cfg, state_dir, password, env)
    if cfg.topology == "cluster":
        from .cluster import plan

        return plan(cfg, state_dir, password, env)
    endpoint, spec = plan_redis(cfg, state_dir, password, env)
    return endpoint, [spec] if spec is not None else []


def expected_endpoint(cfg, state_dir: Path, password: str, running: dict | None = None) -> RedisEndpoint:
    """The endpoint `devstack up` wires the apps to, without launching anything: the running stack's
    ports when ``running`` (its status "redis" entry) is given, else the configured ones."""
    if cfg.mode == "external" and cfg.topology != "cluster":
        return external_endpoint(cfg)
    running = running or {}
    port = running.get("port") or cfg.port
    if cfg.topology == "sentinel":
        from .sentinel import sentinel_endpoint

        ports = running.get("sentinels") or [cfg.sentinel_port + i for i in range(3)]
        return sentinel_endpoint(cfg, state_dir, running.get("mode") or cfg.mode, port, password, ports)
    if cfg.topology == "cluster":
        from .cluster import cluster_endpoint

        return cluster_endpoint(cfg, running.get("mode") or cfg.mode, port, password, running.get("cluster"))
    return RedisEndpoint(running.get("mode") or cfg.mode, running.get("host") or "127.0.0.1", port, password)


def node_ports(endpoint: RedisEndpoint) -> dict:
    """What `devstack status` adds about a topology's nodes, so `devstack env` can wire from it."""
    ports: dict = {}
    if endpoint.sentinels and endpoint.mode != "external":
        ports["sentinels"] = [p for _h, p in endpoint.sentinels]
    if endpoint.cluster:
        ports["cluster"] = [f"{h}:{p}" for h, p in endpoint.cluster]
    return ports
