"""Process supervision: one `Service` per supervised command, each run under a guard (see guard.py).

A Service owns its lifecycle (starting -> ready -> stopping -> stopped, crashed/backoff on its own
exit), reads its output into capped, password-masked lines, writes them to its rotating log file and
emits them as events. Processes are spawned only from the event-loop thread: PR_SET_PDEATHSIG fires
when the *thread* that forked exits, so a helper thread must never spawn.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .events import EventBus, LogLine, Notice, State, StateChanged
from .probes import Probe

GUARD = str(Path(__file__).with_name("guard.py"))
MAX_LINE = 16 * 1024  # longer lines are cut (and marked): a child that never prints "\n" can't eat memory
PARTIAL_FLUSH = 0.15  # a prompt without newline ("(Pdb) ", "Password:") shows after this long
READ_CHUNK = 8192  # per read: bounds the work one flooding child does per event-loop turn (TUI keys stay < 100 ms)
BACKOFF_START, BACKOFF_MAX, HEALTHY_RESET = 1.0, 30.0, 60.0
SPARE_DELAY = 0.5  # seconds after ready before a warm spare for the next restart is prepared
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_line(raw: bytes, secrets: tuple[str, ...] = ()) -> str:
    """Bytes from a child -> one safe line of text: decoded, ANSI stripped, control chars shown, secrets masked."""
    text = raw.decode("utf-8", errors="replace").rstrip("\r")
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    text = _CONTROL.sub("\ufffd", text)
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


class LogFile:
    """Append-only log of one service, rotated at `max_bytes` keeping `keep` old files."""

    def __init__(self, path: Path, max_bytes: int = 10 * 1024 * 1024, keep: int = 3):
        self.path, self.max_bytes, self.keep = path, max_bytes, keep
        self._file = None
        self._size = 0
        self.failed: str | None = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8", errors="replace")
        self._size = self._file.tell()

    def _rotate(self) -> None:
        self._file.close()
        for i in range(self.keep, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i - 1}" if i > 1 else self.path.name)
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i}"))
        self._open()

    def write(self, lines: list[str]) -> str | None:
        """Write lines; return an error message the first time writing fails (disk full, permissions)."""
        if self.failed:
            return None
        try:
            if self._file is None:
                self._open()
            data = "".join(line + "\n" for line in lines)
            self._file.write(data)
            self._file.flush()
            self._size += len(data)
            if self._size >= self.max_bytes:
                self._rotate()
        except OSError as exc:
            self.failed = f"cannot write {self.path}: {exc.strerror}. Lines still reach the screen; free space or fix permissions, then restart the service."
            return self.failed
        return None

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None


@dataclass
class ServiceSpec:
    """Everything needed to run one service; built by the engine from the configuration."""

    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    probe: Probe = field(default_factory=Probe)
    depends_on: list[str] = field(default_factory=list)
    stop_timeout: float = 5.0
    term_main_only: bool = False  # Celery worker: SIGTERM to the main process only = warm shutdown
    stdin_pipe: bool = False  # keep a pipe to stdin (pdb in a solo worker)
    autorestart: bool = True
    stop_hook: Callable[[], "asyncio.Future"] | None = None  # e.g. `docker rm -f` after the client exits
    preload: tuple[str, ...] = ()  # modules a warm spare imports ahead of the next (re)start; () = no spare


_NO_SPARE_POOLS = {"gevent", "eventlet"}  # they must monkey-patch before anything is imported


def spare_interpreter(spec: ServiceSpec) -> tuple[str, str] | None:
    """(interpreter, script) when the service is a Python console script a warm spare can run in-process.

    Only for an absolute `#!/path/to/python` shebang: the spare then runs under exactly the interpreter
    (and virtualenv) the script would have used. Anything else just starts cold.
    """
    import shutil

    if not spec.preload or not spec.argv:
        return None
    argv = spec.argv
    pools = {a.split("=", 1)[1] for a in argv if a.startswith("--pool=")}
    pools |= {argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-P", "--pool")}
    if pools & _NO_SPARE_POOLS:
        return None
    script = shutil.which(argv[0], path=spec.env.get("PATH"))
    if not script:
        return None
    try:
        with open(script, "rb") as f:
            first = f.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    parts = first[2:].decode(errors="replace").split()
    if len(parts) != 1 or not os.path.isabs(parts[0]) or "python" not in os.path.basename(parts[0]):
        return None
    return parts[0], os.path.abspath(script)


@dataclass
class Spare:
    """A guard whose child already imported the service's libraries and waits for "go"."""

    process: asyncio.subprocess.Process
    go_w: int
    report_r: int
    spec: ServiceSpec  # what it was prepared for: its guard's command line shows exactly this argv
    script: str

    def usable_for(self, spec: ServiceSpec) -> bool:
        mine = self.spec
        return (self.process.returncode is None and spec.argv == mine.argv and spec.env == mine.env
                and str(spec.cwd) == str(mine.cwd) and spec.stdin_pipe == mine.stdin_pipe)

    def discard(self) -> None:
        for fd in (self.go_w, self.report_r):
            try:
                os.close(fd)
            except OSError:
                pass
        # EOF on "go": the spare exits by itself; reap its guard so no zombie is left.
        asyncio.get_running_loop().create_task(self.process.wait())


class Service:
    """A supervised command: start, stop, restart, auto-restart with backoff, output to events."""

    def __init__(self, spec: ServiceSpec, bus: EventBus, log_dir: Path, lifeline_fd: int,
                 secrets: tuple[str, ...] = (), on_pid: Callable[["Service"], None] | None = None):
        self.spec = spec
        self.name = spec.name
        self.bus = bus
        self.log = LogFile(log_dir / f"{spec.name}.log")
        self.lifeline_fd = lifeline_fd
        self.secrets = secrets
        self.on_pid = on_pid
        self.state = State.STOPPED
        self.pid: int | None = None
        self.guard: asyncio.subprocess.Process | None = None
        self.exit_code: int | None = None
        self.restarts = 0
        self.started_at: float | None = None
        self.ready_at: float | None = None
        self.backoff_until: float | None = None
        self.ready_event = asyncio.Event()
        self._want_running = False
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._backoff = BACKOFF_START
        self._exited: asyncio.Event = asyncio.Event()
        self._spawned = asyncio.Event()  # set once the guard reported the service's pid
        self.spare: Spare | None = None  # warm spare for the next start (see prepare_spare)
        self.warm = False  # the running process came from a warm spare
        self.spare_spec: Callable[[], ServiceSpec] | None = None  # the spec the next start will use
        # Set by a hot reload: if this start fails before ready, stay crashed (no backoff loop over a
        # syntax error); the next file change starts it again at once.
        self.reloading = False

    # ----- public commands -------------------------------------------------------------------------
    def start(self) -> None:
        """Start (or, if in backoff, start now). Returns at once; watch `ready_event` or events."""
        self._want_running = True
        self.exit_code = None
        if self._task is None or self._task.done():
            self._backoff = BACKOFF_START
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"service:{self.name}")
        else:
            self._wake.set()

    async def stop(self) -> None:
        """Stop and wait until the process tree is gone."""
        self._want_running = False
        self._wake.set()
        if self.guard is not None and self.guard.returncode is None:
            await self._terminate()
        if self._task is not None:
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self.state != State.STOPPED:
            self._set_state(State.STOPPED)

    def hold(self) -> None:
        """Do not restart on exit any more (the stack is shutting down)."""
        self._want_running = False
        self.discard_spare()

    async def restart(self) -> None:
        self.restarts += 1
        await self.stop()
        self.start()

    async def wait_ready(self) -> None:
        await self.ready_event.wait()

    async def wait_spawned(self) -> None:
        """Until the service's own process runs (its pid was reported after exec)."""
        await self._spawned.wait()

    def send_input(self, text: str) -> bool:
        """Write a line to the service's stdin (pdb). False if it has no stdin pipe or is not running."""
        if not self.spec.stdin_pipe or self.guard is None or self.guard.stdin is None:
            return False
        try:
            self.guard.stdin.write(text.encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError, RuntimeError):
            return False
        return True

    @property
    def running(self) -> bool:
        return self.guard is not None and self.guard.returncode is None

    def status(self) -> dict:
        return {
            "state": self.state.value,
            "pid": self.pid,
            "ready": self.state == State.READY,
            "restarts": self.restarts,
            "exit_code": self.exit_code,
            "command": self.spec.argv,
            "uptime": round(time.time() - self.started_at, 1) if self.started_at and self.running else None,
            "backoff_until": self.backoff_until,
        }

    # ----- internals -----------------------------------------------------------------------------
    def _set_state(self, state: State, detail: str = "") -> None:
        self.state = state
        if state != State.READY:
            self.ready_event.clear()
        self.bus.emit(StateChanged(self.name, state, self.pid, self.exit_code, self.restarts, detail,
                                   self.backoff_until))

    def notice(self, text: str, level: str = "info") -> None:
        self.bus.emit(Notice(text, level, self.name))

    async def _launch_guard(self, spec: ServiceSpec, interpreter: list[str], extra: list[str],
                            extra_fds: tuple[int, ...] = ()):
        """Start a guard for `spec`; returns (process, fd the guard reports the service's pid on)."""
        report_r, report_w = os.pipe()
        argv = [*interpreter, GUARD, "--lifeline", str(self.lifeline_fd), "--report", str(report_w),
                "--parent", str(os.getpid()), "--grace", "2", *extra, "--", *spec.argv]
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, cwd=spec.cwd, env=spec.env,
                stdin=asyncio.subprocess.PIPE if spec.stdin_pipe else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                pass_fds=(self.lifeline_fd, report_w, *extra_fds), limit=MAX_LINE * 2,
            )
        except BaseException:
            os.close(report_r)
            raise
        finally:
            os.close(report_w)
        return process, report_r

    async def prepare_spare(self) -> None:
        """Start a warm spare for the next (re)start of this service, if it can have one."""
        spec = self.spare_spec() if self.spare_spec else self.spec
        found = spare_interpreter(spec)
        if found is None or self.spare is not None or not self._want_running:
            return
        interpreter, script = found
        go_r, go_w = os.pipe()
        try:
            process, report_r = await self._launch_guard(
                spec, [interpreter], ["--spare", str(go_r), "--preload", ",".join(spec.preload)], (go_r,))
        except OSError:
            os.close(go_w)
            return
        finally:
            os.close(go_r)
        spare = Spare(process, go_w, report_r, spec, script)
        if self._want_running and self.spare is None:
            self.spare = spare
        else:
            spare.discard()

    def discard_spare(self) -> None:
        if self.spare is not None:
            self.spare.discard()
            self.spare = None

    async def _spawn(self) -> None:
        spare, self.spare = self.spare, None
        if spare is not None and spare.usable_for(self.spec):
            go = {"argv": self.spec.argv, "env": self.spec.env, "cwd": str(self.spec.cwd), "script": spare.script}
            try:
                os.write(spare.go_w, json.dumps(go).encode())  # far below the pipe buffer: never blocks
                os.close(spare.go_w)
                self.guard, report_r = spare.process, spare.report_r
                self.warm = True
            except OSError:  # the spare died meanwhile: start cold
                spare.discard()
                spare = None
        else:
            if spare is not None:
                spare.discard()
            spare = None
        if spare is None:
            self.warm = False
            self.guard, report_r = await self._launch_guard(self.spec, [sys.executable, "-I", "-S"], [])
        data = await _read_until_eof(report_r)
        self.pid = int(data) if data.strip().isdigit() else None
        self._spawned.set()
        self.started_at = time.time()
        if self.on_pid:
            self.on_pid(self)

    async def _run(self) -> None:
        while self._want_running:
            self.backoff_until = None
            self.state = State.STARTING  # announced with its pid once spawned
            self.ready_event.clear()
            self.spec.probe.reset()
            self._exited.clear()
            self._spawned.clear()
            try:
                await self._spawn()
            except OSError as exc:
                self.exit_code = 127
                self.notice(f"{self.name}: cannot start {self.spec.argv[0]!r}: {exc.strerror}", "error")
                self._want_running = False
                self._set_state(State.CRASHED, f"cannot start: {exc.strerror}")
                return
            self._set_state(State.STARTING)
            reader = asyncio.get_running_loop().create_task(self._read_output())
            ready = asyncio.get_running_loop().create_task(self._await_ready())
            code = await self.guard.wait()
            await reader
            ready.cancel()
            self.exit_code = code
            self._exited.set()
            if self.spec.stop_hook:
                await self.spec.stop_hook()
            uptime = time.time() - (self.started_at or time.time())
            if not self._want_running:
                break
            if not self.spec.autorestart or self.reloading:
                self._want_running = False
                self.pid = None
                self._set_state(State.CRASHED, _describe_exit(code) + ("; fix the code: the next change restarts it" if self.reloading else ""))
                return
            if uptime >= HEALTHY_RESET:
                self._backoff = BACKOFF_START
            delay = self._backoff
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)
            self.backoff_until = time.time() + delay
            self._set_state(State.BACKOFF, f"{_describe_exit(code)}; restarting in {delay:.0f} s")
            self.notice(f"{self.name} {_describe_exit(code)}; restarting in {delay:.0f} s", "warning")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
            if self._want_running:
                self.restarts += 1
        self.pid = None
        self.backoff_until = None
        self._set_state(State.STOPPED)

    async def _await_ready(self) -> None:
        try:
            await self.spec.probe.wait(self)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.notice(f"{self.name}: readiness check failed: {exc}", "warning")
            return
        if self.running and self.state == State.STARTING:
            self.ready_at = time.time()
            self.reloading = False
            self._set_state(State.READY, f"ready in {self.ready_at - self.started_at:.2f} s"
                            + (" (warm start)" if self.warm else ""))
            self.ready_event.set()
            if self.spec.preload and self.spare is None:
                # Once ready, not before: the spare's imports must not compete with this start.
                asyncio.get_running_loop().call_later(
                    SPARE_DELAY, lambda: asyncio.ensure_future(self.prepare_spare()))

    async def wait_settled(self, timeout: float) -> bool:
        """Wait until ready (True), or until the run loop gave up / the timeout passed (False)."""
        ready = asyncio.ensure_future(self.ready_event.wait())
        waits = {ready} | ({self._task} if self._task is not None else set())
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        return self.ready_event.is_set()

    async def drain(self, label: str, cold_grace: float = 5.0) -> bool:
        """Retire this process as an old generation named `label` (a hot reload started a new one).

        SIGTERM to the main process is Celery's warm shutdown: it stops consuming at once, finishes its
        running tasks and pushes reserved messages back. Shown as DRAINING meanwhile. After stop_timeout
        SIGQUIT (soft shutdown if enabled, else cold), then SIGKILL. Returns True if it had to be killed.
        """
        self.name = label
        self._want_running = False
        self.discard_spare()
        self._wake.set()
        pid, killed = self.pid, False
        self._set_state(State.DRAINING, "warm shutdown: finishing running tasks, then returning reserved messages")
        for sig, wait in ((signal.SIGTERM, self.spec.stop_timeout), (signal.SIGQUIT, cold_grace)):
            if pid and self.running:
                _signal_pid(pid, sig)
            try:
                await asyncio.wait_for(asyncio.shield(self.guard.wait()), wait)
                break
            except asyncio.TimeoutError:
                self.notice(f"{label} still running {wait:g} s after {sig.name}; escalating", "warning")
        else:
            killed = True
            if pid:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            await self.guard.wait()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        self.log.close()
        return killed

    async def _terminate(self) -> None:
        """SIGTERM (group, or the worker's main process), grace period, SIGKILL the group."""
        self._set_state(State.STOPPING)
        if self.pid is None:  # stopped while spawning: the pid arrives once the service has exec'd
            try:
                await asyncio.wait_for(self._spawned.wait(), 10)
            except asyncio.TimeoutError:
                pass
        pid = self.pid
        if pid:
            try:
                if self.spec.term_main_only:
                    os.kill(pid, signal.SIGTERM)
                else:
                    os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            await asyncio.wait_for(asyncio.shield(self.guard.wait()), self.spec.stop_timeout)
        except asyncio.TimeoutError:
            self.notice(f"{self.name} did not stop within {self.spec.stop_timeout:g} s; killing it", "warning")
            if pid:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            await self.guard.wait()  # the guard sweeps what is left of the group, then exits

    async def _read_output(self) -> None:
        stream = self.guard.stdout
        partial = b""
        while True:
            try:
                if partial:
                    chunk = await asyncio.wait_for(stream.read(READ_CHUNK), PARTIAL_FLUSH)
                else:
                    chunk = await stream.read(READ_CHUNK)
            except asyncio.TimeoutError:
                self._emit([partial])  # a prompt without a newline: show it now
                partial = b""
                continue
            if not chunk:
                if partial:
                    self._emit([partial])
                return
            parts = (partial + chunk).split(b"\n")
            partial = parts.pop()
            if len(partial) > MAX_LINE:
                parts.append(partial)
                partial = b""
            if parts:
                self._emit(parts)

    def _emit(self, raw_lines: list[bytes]) -> None:
        lines = []
        for raw in raw_lines:
            if len(raw) > MAX_LINE:
                raw = raw[:MAX_LINE] + f" … [line cut: {len(raw)} bytes]".encode()
            lines.append(clean_line(raw, self.secrets))
        error = self.log.write(lines)
        if error:
            self.notice(error, "error")
        probe = self.spec.probe
        emit = self.bus.emit
        now = time.time()
        for text in lines:
            probe.feed(text)
            emit(LogLine(self.name, text, "stdout", now))


def _signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


async def _read_until_eof(fd: int) -> str:
    """Read a pipe to EOF on the event loop itself. Not in an executor thread: when the shared pool is
    busy (readiness pings, Redis polls) a spawn would wait for a free thread, with its pid unknown."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    chunks: list[bytes] = []
    os.set_blocking(fd, False)

    def on_readable() -> None:
        try:
            data = os.read(fd, 64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            chunks.append(data)
        elif not done.done():
            done.set_result(None)

    loop.add_reader(fd, on_readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return b"".join(chunks).decode()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped"
    if code > 128:
        try:
            return f"killed by {signal.Signals(code - 128).name}"
        except ValueError:
            pass
    if code == 127:
        return "exited with code 127 (command not found?)"
    return f"exited with code {code}"
