"""The client side of the control socket, stdlib only (no asyncio, no psutil): what `devstack status`,
`restart`, `logs -f`, ... need to reach a running stack, cheap enough to answer at once."""
from __future__ import annotations

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


RENDERED = b"OK\n"
"""How a reply rendered by the stack begins (``render`` in the request): the text follows, up to the close."""


def request(state_dir: str | os.PathLike, cmd: str, args: list[str] | None = None, timeout: float = 120) -> object:
    """Send one command to the running stack; return its result or raise DevstackError."""
    import json

    return _result(_exchange(state_dir, json.dumps({"cmd": cmd, "args": args or []}).encode(), timeout))


def request_rendered(state_dir: str | os.PathLike, cmd: str, render: str, timeout: float = 120) -> object:
    """A command without arguments whose result the stack renders itself (``render``: "json" or "text",
    control.RENDERERS): the text to print, as it came, so this client needs no json module (the largest
    import of a control command: bench/control_bench.py). A stack that does not render (older) gives its
    result, decoded, as request() does; an error is raised as DevstackError."""
    data = _exchange(state_dir, b'{"cmd": "%s", "args": [], "render": "%s"}' % (cmd.encode(), render.encode()),
                     timeout)
    if data.startswith(RENDERED):
        return data[len(RENDERED):].decode()
    return _result(data)


def _exchange(state_dir: str | os.PathLike, line: bytes, timeout: float) -> bytes:
    """One request line out, the whole reply back (the stack closes the connection after it)."""
    with connect(state_dir, timeout) as sock:
        sock.sendall(line + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _result(data: bytes) -> object:
    import json

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
