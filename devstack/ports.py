"""Who listens on a TCP port: the one lookup behind "port N is taken by ..." messages."""
from __future__ import annotations


def listener(port: int, *, argv: bool = False) -> str | None:
    """'redis-server (pid 123)' for the process listening on ``port`` (with ``argv``, its command line
    too: only for the user's own messages, as argv may hold secrets); None when the OS does not tell."""
    try:
        import psutil

        for conn in psutil.net_connections("inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                p = psutil.Process(conn.pid)
                command = f": {' '.join(p.cmdline())[:120]}" if argv else ""
                return f"{p.name()} (pid {conn.pid}{command})"
    except Exception:  # AccessDenied on macOS without root, a process gone meanwhile
        pass
    return None


def port_owner(port: int) -> str:
    """' by redis-server (pid 123: argv)', to follow "port N is already in use" in an error."""
    owner = listener(port, argv=True)
    return f" by {owner}" if owner else " by another process"
