"""The client side of the control socket, stdlib only (no asyncio, no psutil): what `devstack status`,
`restart`, `logs -f`, ... need to reach a running stack, cheap enough to answer at once."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from .errors import DevstackError
from .lockfiles import running_run

SOCKET = "control.sock"


def socket_path(state_dir: Path) -> Path:
    """The control socket; AF_UNIX paths are limited to ~107 bytes, so long state paths go to /tmp."""
    path = Path(state_dir).resolve() / SOCKET
    if len(str(path)) < 100:
        return path
    import hashlib

    short = Path(f"/tmp/devstack-{os.getuid()}")
    short.mkdir(mode=0o700, exist_ok=True)
    return short / (hashlib.sha1(str(path).encode()).hexdigest()[:16] + ".sock")


def request(state_dir: Path, cmd: str, args: list[str] | None = None, timeout: float = 120) -> object:
    """Send one command to the running stack; return its result or raise DevstackError."""
    with connect(state_dir, timeout) as sock:
        sock.sendall(json.dumps({"cmd": cmd, "args": args or []}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    try:
        reply = json.loads(data)
    except ValueError:
        raise DevstackError("the running devstack closed the control connection without answering", 1)
    if not reply.get("ok"):
        raise DevstackError(reply.get("error", "unknown error"), 1)
    return reply.get("result")


def connect(state_dir: Path, timeout: float | None = 120) -> socket.socket:
    path = socket_path(state_dir)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        if (run := running_run(state_dir)) is not None:
            raise DevstackError(f"No stack is running: `devstack run` (pid {run[0]}) holds this project for `{run[1]}` "
                                "(a setup step does not run beside the services). Fix: wait until it has finished, "
                                "then `devstack up`.", 1)
        raise DevstackError(f"No devstack stack is running for this project (no control socket at {path}). "
                            "Start it with `devstack up`.", 1)
    return sock
