"""Readiness probes against real servers: the raw RESP Redis probe and the HTTP probe."""
from __future__ import annotations

import asyncio
import socket

from devstack.probes import RedisProbe
from tests.conftest import free_port


def _ping(**kwargs) -> tuple[bool, str | None]:
    probe = RedisProbe(kwargs)
    ok = asyncio.run(probe.ping())
    return ok, probe.last_error


def test_redis_probe_pong_with_the_password(redis_server):
    ok, error = _ping(host=redis_server.host, port=redis_server.port, password=redis_server.password, db=0)
    assert ok and error is None


def test_redis_probe_wrong_password_is_not_ready_and_says_why(redis_server):
    ok, error = _ping(host=redis_server.host, port=redis_server.port, password="wrong", db=0)
    assert not ok
    assert "WRONGPASS" in error or "invalid password" in error
    assert "wrong" not in error.replace("WRONGPASS", "")


def test_redis_probe_without_a_password_gets_noauth(redis_server):
    ok, error = _ping(host=redis_server.host, port=redis_server.port, password=None, db=0)
    assert not ok and error.startswith("NOAUTH")


def test_redis_probe_nothing_listening():
    ok, error = _ping(host="127.0.0.1", port=free_port(), password="x", db=0)
    assert not ok and "refused" in error


def test_redis_probe_not_redis_is_not_ready():
    """Something else on the port (here a server that closes at once) is never taken for Redis."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    async def run() -> tuple[bool, str | None]:
        loop = asyncio.get_running_loop()

        def accept_and_close():
            conn, _ = server.accept()
            conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
            conn.close()

        fut = loop.run_in_executor(None, accept_and_close)
        probe = RedisProbe({"host": "127.0.0.1", "port": port, "password": "x"})
        ok = await probe.ping()
        await fut
        return ok, probe.last_error

    try:
        ok, error = asyncio.run(run())
    finally:
        server.close()
    assert not ok and error


def test_raw_command_reads_bulk_replies(redis_server):
    from devstack.resp import raw_command

    kwargs = dict(host=redis_server.host, port=redis_server.port, password=redis_server.password)
    info = asyncio.run(raw_command(kwargs, "INFO", "server"))
    version = redis_server.client().info("server")["redis_version"]
    assert f"redis_version:{version}" in info.splitlines()
    redis_server.client().set("k", "")
    assert asyncio.run(raw_command(kwargs, "GET", "k")) == ""
    assert asyncio.run(raw_command(kwargs, "GET", "missing")) is None
    assert asyncio.run(raw_command(kwargs, "RPUSH", "l", "a", "b")) == "2"
    assert asyncio.run(raw_command(kwargs, "LRANGE", "l", "0", "-1")) == ["a", "b"]
