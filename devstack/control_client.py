"""The client side of the control socket, stdlib only (no asyncio, no psutil): what `devstack status`,
`restart`, `logs -f`, ... need to reach a running stack, cheap enough to answer at once."""
from __future__ import annotations

import json
import os
import socket

from .errors import DevstackError
from .lockfiles import running_run

SOCKET = "control.sock"


def socket_file(state_dir: str | os.PathLike) -> str:
    """The control socket; AF_UNIX paths are limited to ~107 bytes, so long state paths go to /tmp.
    A str (no pathlib: its import is a third of a control command's own time)."""
    path = os.path.join(os.path.realpath(state_dir), SOCKET)
    if len(path) < 100:
        return path
    import hashlib

    short = f"/tmp/devstack-{os.getuid()}"
    os.makedirs(short, mode=0o700, exist_ok=True)
    return os.path.join(short, hashlib.sha1(path.encode()).hexdigest()[:16] + ".sock")


def socket_path(state_dir: str | os.PathLike):
    """socket_file() as a Path, for the engine's side."""
    from pathlib import Path

    return Path(socket_file(state_dir))


def request(state_dir: str | os.PathLike, cmd: str, args: list[str] | None = None, timeout: float = 120) -> object:
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


def connect(state_dir: str | os.PathLike, timeout: float | None = 120) -> socket.socket:
    path = socket_file(state_dir)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        if (run := running_run(state_dir)) is not None:
            raise DevstackError(f"No stack is running: `devstack run` (pid {run[0]}) holds this project for `{run[1]}` "
                                "(a setup step does not run beside the services). Fix: wait until it has finished, "
                                "then `devstack up`.", 1)
        raise DevstackError(f"No devstack stack is running for this project (no control socket at {path}). "
                            "Start it with `devstack up`.", 1)
    return sock
