"""Ports: who listens on one (the lookup behind "port N is taken by ..." messages, naming the devstack
stack that holds it), and a free one when the default is taken and none was configured."""
from __future__ import annotations

import socket
from pathlib import Path

from .errors import DevstackError
from .lockfiles import LOCK

SEARCH = 100  # how far above the default a free port is looked for: near it, so it is easy to recognise


def _listening_pid(port: int) -> int | None:
    try:
        import psutil

        for conn in psutil.net_connections("inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return conn.pid
    except Exception:  # AccessDenied on macOS without root
        pass
    return None


def listener(port: int, *, argv: bool = False) -> str | None:
    """'redis-server (pid 123)' for the process listening on ``port`` (with ``argv``, its command line
    too: only for the user's own messages, as argv may hold secrets); None when the OS does not tell."""
    pid = _listening_pid(port)
    if pid is None:
        return None
    try:
        import psutil

        p = psutil.Process(pid)
        command = f": {' '.join(p.cmdline())[:120]}" if argv else ""
        return f"{p.name()} (pid {pid}{command})"
    except Exception:  # a process gone meanwhile
        return None


def owning_stack(port: int) -> tuple[Path, int] | None:
    """(project folder, devstack pid) when the listener on ``port`` was started by a devstack stack:
    one of its ancestors holds a state folder's lock file open (`devstack up` does, for its whole life)."""
    pid = _listening_pid(port)
    if pid is None:
        return None
    try:
        import psutil

        p = psutil.Process(pid)
        for q in (p, *p.parents()):
            for f in q.open_files():
                if Path(f.path).name == LOCK:
                    state_dir = Path(f.path).parent
                    folder = state_dir.parent if state_dir.name == ".devstack" else Path(q.cwd())
                    return folder, q.pid
    except Exception:  # AccessDenied (another user's stack), a process gone meanwhile
        pass
    return None


def port_owner(port: int) -> str:
    """' by redis-server (pid 123: argv)', to follow "port N is already in use" in an error."""
    owner = listener(port, argv=True)
    return f" by {owner}" if owner else " by another process"


def is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def taken_message(port: int, what: str, key: str) -> str:
    """Why `port` cannot be used, naming its owner, and the fix (another stack's: `devstack down` there)."""
    stack = owning_stack(port)
    if stack is not None:
        folder, pid = stack
        return (f"Port {port} for {what} is already in use by the devstack stack of {folder} (devstack pid {pid}). "
                f"Fix: stop it with `devstack down` in {folder}, or set {key} to a free port in your devstack.toml "
                "(or remove it: devstack then picks a free one).")
    return (f"Port {port} for {what} is already in use{port_owner(port)}. Fix: stop that process, or set {key} to "
            "a free port in your devstack.toml (or remove it: devstack then picks a free one).")


def choose_port(port: int, *, explicit: bool, what: str, key: str) -> int:
    """``port`` if free; else, when it is only the default (``explicit`` False), the next free one above it.
    A taken port that was set explicitly raises DevstackError naming its owner."""
    if is_free(port):
        return port
    if explicit:
        raise DevstackError(taken_message(port, what, key), 1)
    if (chosen := port_up_would_use(port, explicit=False)) is not None:
        return chosen
    raise DevstackError(f"{taken_message(port, what, key)} No free port between {port} and {port + SEARCH} either.", 1)


def port_up_would_use(port: int, *, explicit: bool) -> int | None:
    """The port `choose_port` would take now, never raising: ``port`` when free or set explicitly (a taken
    explicit one makes `up` refuse), else the next free one above it; None when none is free."""
    if explicit or is_free(port):
        return port
    return next((c for c in range(port + 1, min(port + SEARCH, 65535) + 1) if is_free(c)), None)


def moved_notice(default: int, chosen: int, what: str, key: str) -> str:
    """What a stack says when it took another port than the default for `what`."""
    stack = owning_stack(default)
    owner = f"the devstack stack of {stack[0]}" if stack else (listener(default) or "another process")
    return (f"{what}: port {default} is taken by {owner}, so this stack uses {chosen} (the apps get it in their "
            f"environment). Set {key} in devstack.toml to choose one.")
