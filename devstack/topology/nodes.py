"""What every node of a launched topology shares: its folder, a free port of its own, its readiness probe."""
from __future__ import annotations

import shutil
from pathlib import Path

from ..ports import choose_port
from ..probes import RedisProbe
from ..redis_server import RedisEndpoint, loopback_bind, quoted, write_conf
from ..supervisor.spec import ServiceSpec

HOST = "127.0.0.1"


class PortPicker:
    """Free loopback ports for a topology's nodes, never the same one twice (none listens yet)."""

    def __init__(self) -> None:
        self.taken: set[int] = set()

    def pick(self, base: int, what: str, key: str, explicit: bool = False) -> int:
        port = choose_port(base, explicit=explicit, what=what, key=key)
        while port in self.taken:
            port = choose_port(port + 1, explicit=False, what=what, key=key)
        self.taken.add(port)
        return port


def node_dir(state_dir: Path, name: str, persist: bool) -> Path:
    """.devstack/redis/<node>/ (0700); emptied first when nothing is to be kept."""
    folder = state_dir / "redis" / name
    if not persist and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def data_node(name: str, binary: str, folder: Path, port: int, password: str, persist: bool,
              extra: tuple[str, ...], env: dict[str, str]) -> ServiceSpec:
    """A redis-server data node (master, replica, cluster node) as a supervised service."""
    conf = folder / "redis.conf"
    write_conf(conf, port=port, password=password, data_dir=folder, persist=persist, bind=loopback_bind(),
               extra=("masterauth " + quoted(password), *extra))
    return ServiceSpec(name, [binary, str(conf)], folder, env, RedisProbe(node_kwargs(port, password)),
                       stop_timeout=10)


def node_kwargs(port: int, password: str | None) -> dict:
    return {"host": HOST, "port": port, "password": password}


def endpoint_for(mode: str, port: int, password: str, **topology) -> RedisEndpoint:
    return RedisEndpoint(mode, HOST, port, password, **topology)
