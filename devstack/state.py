"""The state directory (.devstack/): permissions, the one-stack-per-project lock, and pid records.

Pid records let the next `devstack up` stop whatever a killed run left behind. A recorded process
is touched only if its pid, start time and command line all still match: a pid reused by an
unrelated process is left alone.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from pathlib import Path

import psutil

from .control_client import SOCKET, socket_path  # noqa: F401  (one rule for where the socket is; the client needs it without psutil)
from .errors import DevstackError
from .lockfiles import LOCK, RECORD, held_by_run



def prepare_state_dir(state_dir: Path) -> Path:
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        state_dir.chmod(0o700)
        (state_dir / "logs").mkdir(mode=0o700, exist_ok=True)
        ignore = state_dir / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# devstack's state: logs, Redis data, secrets. Never commit it.\n*\n")
    except OSError as exc:
        raise DevstackError(f"Cannot create the state directory {state_dir}: {exc.strerror}. "
                            "Fix: check its permissions, or set [project] state_dir to a writable folder.", 1)
    return state_dir


class StackLock:
    """An flock held for the life of `devstack up`; released by the kernel even on SIGKILL."""

    def __init__(self, state_dir: Path):
        self.path = state_dir / LOCK
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = running_pid(self.path.parent)
            if (command := held_by_run(self.path.parent, pid)) is not None:
                raise DevstackError(
                    f"`devstack run` (pid {pid}) is running `{command}` for this project, with the stack's Redis "
                    f"started for it (state in {self.path.parent}). A stack does not start beside it, so that a "
                    f"setup step such as a migration never races the services. Fix: wait until it has finished, or "
                    f"stop it (Ctrl-C in its terminal, or `kill {pid}`); then `devstack up`.", 1)
            who = f" (devstack pid {pid})" if pid else ""
            raise DevstackError(
                f"A devstack stack is already running for this project{who}, state in {self.path.parent}. "
                "Use `devstack status` to see it, or `devstack down` to stop it first.", 1)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def is_locked(state_dir: Path) -> bool:
    """True while a `devstack up` holds this project's lock (a zombie or dead process does not)."""
    try:
        fd = os.open(state_dir / LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def running_pid(state_dir: Path) -> int | None:
    try:
        pid = int((state_dir / LOCK).read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid and psutil.pid_exists(pid) else None


def identity(pid: int) -> dict | None:
    try:
        p = psutil.Process(pid)
        return {"pid": pid, "create_time": p.create_time(), "cmdline": p.cmdline(), "exe": _exe(p)}
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _exe(p: psutil.Process) -> str | None:
    try:
        return p.exe() or None
    except (psutil.AccessDenied, psutil.ZombieProcess):
        return None


def same_process(p: psutil.Process, rec: dict) -> bool:
    """Is `p` the process `rec` describes: same start time and same command?

    The command matches by argv or, for programs that rewrite their process title (redis-server shows
    "redis-server 127.0.0.1:6379"), by executable: with the start time pinned that is still the same process.
    """
    if abs(p.create_time() - rec["create_time"]) > 0.01:
        return False
    if p.cmdline() == rec["cmdline"]:
        return True
    return bool(rec.get("exe")) and _exe(p) == rec["exe"]


class ProcessRecord:
    """processes.json: the guards and services this run started, with their identities."""

    def __init__(self, state_dir: Path):
        self.path = state_dir / RECORD
        self.entries: dict[str, dict] = {}

    def add(self, key: str, pid: int) -> None:
        ident = identity(pid)
        if ident:
            self.entries[key] = ident
            self._save()

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"devstack": os.getpid(), "processes": self.entries}))
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.entries.clear()
        self.path.unlink(missing_ok=True)


def cleanup_stale(state_dir: Path) -> list[str]:
    """Stop processes a previous, killed run left behind. Returns what was stopped (for a notice)."""
    path = state_dir / RECORD
    if not path.exists():
        return []
    victims: list[psutil.Process] = []
    stopped = []
    for key, p in recorded_alive(state_dir).items():
        group = [p]
        try:
            group += p.children(recursive=True)
            pgid = os.getpgid(p.pid)
            if pgid == p.pid:  # a service leads its own group: take the whole group
                group += [q for q in psutil.process_iter() if _pgid(q.pid) == pgid and q not in group]
        except (psutil.NoSuchProcess, ProcessLookupError):
            pass
        victims += group
        stopped.append(f"{key} (pid {p.pid})")
    for p in victims:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(victims, timeout=3)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=2)
    path.unlink(missing_ok=True)
    return stopped


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def recorded_processes(state_dir: Path) -> dict[str, psutil.Process]:
    """The running `devstack up` (as "devstack") and every process it recorded that is still the same
    process: what `devstack down` waits for."""
    found: dict[str, psutil.Process] = {}
    pid = running_pid(state_dir)
    if pid:
        try:
            found["devstack"] = psutil.Process(pid)
        except psutil.NoSuchProcess:
            pass
    return {**found, **recorded_alive(state_dir)}


def recorded_alive(state_dir: Path) -> dict[str, psutil.Process]:
    """The recorded processes that still run and are still the same process (pid, start time, command):
    a pid reused by something else is never included."""
    try:
        data = json.loads((state_dir / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    found = {}
    for key, rec in data.get("processes", {}).items():
        try:
            p = psutil.Process(rec["pid"])
            if same_process(p, rec):
                found[key] = p
        except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError):
            continue
    return found


def _alive(p: psutil.Process) -> bool:
    """Running, and not a zombie waiting for its parent to read its exit status (that one is gone)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_processes_gone(procs: dict[str, psutil.Process], timeout: float) -> dict[str, psutil.Process]:
    """Wait until every one has exited; return those still alive after `timeout`."""
    deadline = time.monotonic() + timeout
    alive = {k: p for k, p in procs.items() if _alive(p)}
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = {k: p for k, p in alive.items() if _alive(p)}
    return alive


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if psutil.pid_exists(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if psutil.pid_exists(p)]
    return alive
