"""Safe by default: a launched Redis demands a password and listens on loopback only; the state is
private (0700/0600); the password appears in no output, log, record or command line of a full run."""
from __future__ import annotations

import json
import socket
import stat
import subprocess
import urllib.request
from urllib.parse import quote

import psutil
import pytest

from devstack.state import socket_path
from tests.functional.test_orphans import DevstackRun
from tests.stack import http_get
from tests.stack import write_demo_config

pytestmark = pytest.mark.functional


@pytest.fixture
def stack(tmp_path):
    run = DevstackRun(write_demo_config(tmp_path)).start()
    try:
        run.wait_ready()
        yield run
    finally:
        run.stop()


def _redis_port(run: DevstackRun) -> int:
    return run.settings()["redis"]["port"]


def _password(run: DevstackRun) -> str:
    return (run.state_dir / "redis.password").read_text().strip()


def test_unauthenticated_ping_gets_noauth(stack):
    with socket.create_connection(("127.0.0.1", _redis_port(stack)), timeout=5) as s:
        s.sendall(b"PING\r\n")
        reply = s.recv(256)
    assert reply.startswith(b"-NOAUTH"), reply


def _non_loopback_addresses() -> list[tuple[int, str]]:
    found = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                found.append((socket.AF_INET, a.address))
            elif a.family == socket.AF_INET6 and a.address != "::1" and "%" not in a.address:
                found.append((socket.AF_INET6, a.address))  # link-local (%iface) needs a scope: skipped
    return found


def test_redis_port_refuses_non_loopback_addresses(stack):
    addresses = _non_loopback_addresses()
    if not addresses:
        pytest.skip("this machine has no non-loopback address to try")
    port = _redis_port(stack)
    for family, address in addresses:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(3)
            with pytest.raises(ConnectionRefusedError):
                s.connect((address, port))
    # and loopback does answer, so the refusals above are not a dead server
    socket.create_connection(("127.0.0.1", port), timeout=3).close()


def test_state_permissions(stack):
    mode = lambda path: stat.S_IMODE(path.stat().st_mode)  # noqa: E731
    assert mode(stack.state_dir) == 0o700
    assert mode(stack.state_dir / "logs") == 0o700
    assert mode(stack.state_dir / "redis.password") == 0o600
    assert mode(stack.state_dir / "redis.conf") == 0o600  # it holds requirepass
    sock = socket_path(stack.state_dir)
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert mode(sock) == 0o600


def _post(run: DevstackRun, path: str) -> dict:
    with urllib.request.urlopen(urllib.request.Request(run.api_url(path), method="POST"), timeout=5) as resp:
        return json.loads(resp.read())


def test_password_never_appears_anywhere(tmp_path):
    run = DevstackRun(write_demo_config(tmp_path)).start()
    captured: dict[str, str] = {}
    try:
        run.wait_ready()
        password = _password(run)
        assert len(password) >= 16
        secrets = {password, quote(password, safe="")}

        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        captured["ps -eo args (running)"] = ps
        redis_pid = json.loads(run.cli("status", "--json").stdout)["services"]["redis"]["pid"]
        redis_argv = psutil.Process(redis_pid).cmdline()
        assert not any("requirepass" in a for a in redis_argv), redis_argv

        add = _post(run, "/tasks/add?x=4&y=5")
        # A child that prints the password (here: the worker logging a task argument) is masked too.
        echo = _post(run, "/tasks/echo?text=" + quote(f"leak:{password}:end", safe=""))
        for task in (add, echo):
            run.wait_for(lambda: (http_get(run.api_url(f"/tasks/{task['id']}")) or {}).get("state") == "SUCCESS",
                         20, task["task"])
        run.wait_for(lambda: "leak:***:end" in run.output(), 5, "the masked echo in the output")

        for args in (("status", "--json"), ("status",), ("restart", "worker"), ("status", "--json"),
                     ("logs", "worker", "-n", "500"), ("logs", "redis", "-n", "500")):
            result = run.cli(*args)
            assert result.returncode == 0, (args, result.stderr)
            captured[" ".join(args) + " (stdout)"] = result.stdout
            captured[" ".join(args) + " (stderr)"] = result.stderr
        captured["ps -eo args (after restart)"] = subprocess.run(["ps", "-eo", "args"], capture_output=True,
                                                                 text=True).stdout
        down = run.cli("down")
        captured["down"] = down.stdout + down.stderr
        assert down.returncode == 0, down.stderr
        run.proc.wait(60)
    finally:
        run.stop()
    captured["devstack up output"] = run.output()
    for path in sorted(run.state_dir.rglob("*")):
        if path.is_file() and (path.parent.name == "logs" or path.name in ("processes.json", "devstack.lock")):
            captured[str(path.relative_to(tmp_path))] = path.read_text(errors="replace")
    assert any(name.startswith(".devstack/logs/worker.log") for name in captured), sorted(captured)
    leaks = [name for name, text in captured.items() if any(s in text for s in secrets)]
    assert not leaks, f"the Redis password appears in: {leaks}"
