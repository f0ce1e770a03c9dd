"""Helpers for functional tests: a devstack.toml running the bundled demo app on free ports, and
what a test needs to see the processes a running devstack started from outside."""
from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

import psutil


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free loopback port, never one handed out before in this process: once the first socket is closed the
    kernel may give the same port to the next bind (CI: one demo config got it for both Redis and the API)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def write_demo_config(folder: Path, *, extra: str = "", worker: str = "", api: str = "", redis: str = "",
                      beat: str = "") -> Path:
    """Write folder/devstack.toml for the demo app with free Redis and API ports; returns its path.

    `extra` is appended verbatim (e.g. "[env]\\nFOO = \\"1\\""); the other strings are added inside
    their table. The redis and api ports are chosen here; read them back with tomllib if needed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    mode = "" if "mode" in redis else 'mode = "auto"'
    text = f"""
[project]
name = "testdemo"

[redis]
{mode}
port = {free_port()}
{redis}

[api]
app = "devstack.demo.app:app"
port = {free_port()}
{api}

[worker]
app = "devstack.demo.app:celery"
queues = ["celery", "dataset", "generation", "mail"]
concurrency = 2
{worker}

[beat]
app = "devstack.demo.app:celery"
{beat}

{extra}
"""
    path = folder / "devstack.toml"
    path.write_text(text)
    return path


def pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def started_by(pid: int) -> dict[int, psutil.Process]:
    """Every process devstack (`pid`) started: its descendants plus every member of their process groups
    (a service that left its parent is still in its group)."""
    found = {p.pid: p for p in psutil.Process(pid).children(recursive=True)}
    groups = {g for g in (pgid(p) for p in found) if g and g != pid}
    for p in psutil.process_iter():
        if p.pid not in found and p.pid != pid and pgid(p.pid) in groups:
            found[p.pid] = p
    return found


def http_get(url: str, timeout: float = 2) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
        return None


def stack_ready_from_logs(logs: Path, api_url: str) -> bool:
    """Readiness seen from outside (the TUI prints no ready line): log markers plus the API answering."""
    def has(name: str, marker: str) -> bool:
        path = logs / f"{name}.log"
        return path.exists() and marker in path.read_text(errors="replace")

    return (has("redis", "Ready to accept connections") and has("worker", " ready.")
            and has("beat", "beat: Starting...") and http_get(api_url) is not None)

