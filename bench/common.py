"""What the benchmark scripts share: where things are, the demo stack's config, spawning and stopping a
launcher, the raw Redis readiness check, and writing one section of docs/benchmarks.md."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil

from tests.stack import free_port  # one free-port rule for tests and benchmarks
from tests.waiting import poll_until  # one waiting rule too

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["BIN", "DEVSTACK", "HONCHO", "LOAD_BEFORE", "PASSWORD", "ROOT", "demo_config", "free_port",
           "poll_until", "redis_answers", "spawn", "stop_tree", "update_doc"]

BIN = Path(sys.executable).parent
DEVSTACK = str(BIN / "devstack")
HONCHO = str(BIN / "honcho")
PASSWORD = "bench-" + os.urandom(8).hex()
LOAD_BEFORE = os.getloadavg()[0]  # at import, before the benchmark loads the machine itself


def demo_config(folder: Path, redis_port: int, api_port: int) -> Path:
    """folder/devstack.toml for the bundled demo app (API, prefork worker -c 2, beat) with PASSWORD."""
    path = folder / "devstack.toml"
    path.write_text(f"""
[project]
name = "bench"

[redis]
port = {redis_port}
password = "{PASSWORD}"

[api]
app = "devstack.demo.app:app"
port = {api_port}

[worker]
app = "devstack.demo.app:celery"
queues = ["celery", "dataset", "generation", "mail"]
concurrency = 2

[beat]
app = "devstack.demo.app:celery"
""")
    return path


def spawn(argv: list[str], cwd: Path, out: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A launcher in its own session, stdin closed, stdout and stderr into the file `out`."""
    with open(out, "wb") as f:
        return subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop_tree(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 60) -> None:
    """Orderly stop of the launcher, then make sure nothing it started survives into the next run."""
    try:
        tree = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _, alive = psutil.wait_procs(tree, timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def redis_answers(port: int, password: str = PASSWORD) -> bool:
    """AUTH + PING on a raw socket: redis-py's default retries would turn a refused connection into
    seconds of backoff and stall a poller."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            reply = b""
            while reply.count(b"\r\n") < 2:
                chunk = conn.recv(256)
                if not chunk:
                    return False
                reply += chunk
            return reply.split(b"\r\n")[1] == b"+PONG"
    except OSError:
        return False


def update_doc(section: str) -> Path:
    """Replace the section of docs/benchmarks.md titled like `section`'s first line, or append it."""
    doc = ROOT / "docs" / "benchmarks.md"
    doc.parent.mkdir(exist_ok=True)
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    title = section.splitlines()[0]
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.write_text(text.rstrip("\n") + "\n")
    return doc
