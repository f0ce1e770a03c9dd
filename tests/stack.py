"""Helpers for functional tests: a devstack.toml running the bundled demo app on free ports."""
from __future__ import annotations

import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
