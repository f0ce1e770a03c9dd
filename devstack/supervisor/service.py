"""Service: the lifecycle of one supervised command (starting -> ready -> stopping -> stopped, crashed or
backoff on its own exit, auto-restart, warm spares, drain of an old worker generation)."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable

from ..diagnose import ExceptionTracker, explain_exception, interpreter_for
from ..events import EventBus, LogLine, Notice, State, StateChanged
from .guard_client import launch_guard, read_reported_pid
from .output import LogFile, clean_lines, read_output
from .spares import Spare, launch_spare
from .spec import ServiceSpec

BACKOFF_START, BACKOFF_MAX, HEALTHY_RESET = 1.0, 30.0, 60.0
CRASH_LIMIT, STAYED_READY = 5, 10.0  # this many exits in a row, none after 10 s of ready: a crash loop, stop
SPARE_DELAY = 0.5  # seconds after ready before a warm spare for the next restart is prepared
SPARE_GATE_POLL = 0.25  # seconds between two looks at `spare_gate` while another service is starting
SPARE_GATE_MAX = 30.0  # a spare waits at most this long (a service whose readiness check never passes stays starting)


class Service:
    """A supervised command: start, stop, restart, auto-restart with backoff, output to events."""

    def __init__(self, spec: ServiceSpec, bus: EventBus, log_dir: Path, lifeline_fd: int,
                 secrets: tuple[str, ...] = (), on_pid: Callable[["Service"], None] | None = None,
                 crash_limit: int = CRASH_LIMIT):
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
        # False while a spare must wait: another service is starting or another spare importing, whose CPU
        # its imports would take (beat's spare took 1.6 s of CPU from a big app's api and worker at cold start,
        # 2 cores; two spares importing at once slowed a worker's warm shutdown enough for a Celery race).
        self.spare_gate: Callable[[], bool] | None = None
        self._preparing_spare = False
        # Set by a hot reload: if this start fails before ready, stay crashed (no backoff loop over a
        # syntax error); the next file change starts it again at once.
        self.reloading = False
        self.crash_limit = crash_limit
        self.crash_loop = 0  # exits in a row without staying ready STAYED_READY seconds
        self.last_error: str | None = None  # why it last exited on its own: the exception line and the fix
        self.held = False  # stopped by a command: reloads and config edits leave it stopped
        self._tracker = ExceptionTracker()

    # ----- public commands -------------------------------------------------------------------------
    def start(self) -> None:
        """Start (or, if in backoff, start now). Returns at once; watch `ready_event` or events."""
        self._want_running = True
        self.exit_code = None
        self.held = False
        self.crash_loop = 0  # a command or a save: a fresh chance after a crash loop
        if self._task is None or self._task.done():
            self._backoff = BACKOFF_START
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"service:{self.name}")
        else:
            self._wake.set()

    def start_reload(self) -> None:
        """Start for a code change: a failure before ready stays crashed instead of retrying (see `reloading`)."""
        self.reloading = True
        self.start()

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

    def close(self) -> None:
        """Release what outlives the process (its log file); the stack is shutting down."""
        self.log.close()

    async def restart(self) -> None:
        self.count_restart()
        await self.stop()
        self.start()

    def count_restart(self) -> None:
        self.restarts += 1

    def respec(self, spec: ServiceSpec) -> None:
        """Run `spec` from the next start on (the configuration, the pool or the generation changed)."""
        self.spec = spec

    def fail_to_start(self, reason: str, state: State = State.CRASHED) -> None:
        """Never started (e.g. its command is missing): show it crashed (or failed, blocked) with `reason`."""
        self.state = state
        self.last_error = reason
        self.bus.emit(StateChanged(self.name, state, exit_code=self.exit_code, detail=reason))
        self.notice(reason, "error")

    def continue_from(self, old: "Service") -> None:
        """Become the next generation of `old`: take its warm spare, count this as one more restart."""
        self.spare, old.spare = old.spare, None
        self.restarts = old.restarts + 1

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

    @property
    def shown_state(self) -> State:
        """`state`, except that a READY whose process is already gone reads CRASHED: between the guard's
        exit and the supervising task resuming, the state must never claim a dead process is ready."""
        return State.CRASHED if self.state == State.READY and not self.running else self.state

    def status(self) -> dict:
        state = self.shown_state
        return {
            "state": state.value,
            "pid": self.pid,
            "ready": state == State.READY,
            "restarts": self.restarts,
            "exit_code": self.exit_code,
            "command": self.spec.argv,
            "uptime": round(time.time() - self.started_at, 1) if self.started_at and self.running else None,
            "backoff_until": self.backoff_until,
            "last_error": self.last_error,
            "held": self.held,
            "spare_pid": self.spare.process.pid if self.spare else None,
            "spare_rss": self.spare.rss() if self.spare else None,
            "spare_ready": bool(self.spare and self.spare.progress.ready),  # imported its list: a restart is warm
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

    async def prepare_spare(self) -> None:
        """Start a warm spare for the next (re)start of this service, if it can have one."""
        if self.spare is not None or not self._want_running:
            return
        generation, waited = self.started_at, 0.0
        while self.spare_gate is not None and not self.spare_gate() and waited < SPARE_GATE_MAX:
            waited += SPARE_GATE_POLL
            await asyncio.sleep(SPARE_GATE_POLL)
            if not self._want_running or self.started_at != generation or self.state != State.READY:
                return  # replaced, restarted or stopped meanwhile: its next ready prepares the spare
        spec = self.spare_spec() if self.spare_spec else self.spec
        self._preparing_spare = True
        try:
            spare = await launch_spare(spec, self.lifeline_fd, self.notice, self._spare_died, self.started_at)
        finally:
            self._preparing_spare = False
        if spare is None:
            return
        if self._want_running and self.spare is None:
            self.spare = spare
        else:
            spare.discard()

    @property
    def spare_busy(self) -> bool:
        """A spare of this service is being made or is still importing (it takes a core meanwhile)."""
        spare = self.spare
        return self._preparing_spare or (spare is not None and not spare.progress.ready and not spare.progress.closed)

    def _spare_died(self, spare: Spare, dropped: bool) -> None:
        if self.spare is spare:
            self.spare = None
            if dropped and self.state == State.READY:  # the list is shorter now: worth another try
                asyncio.ensure_future(self.prepare_spare())

    def discard_spare(self) -> None:
        if self.spare is not None:
            self.spare.discard()
            self.spare = None

    async def _spawn(self) -> None:
        # Taken before the spawn, not once the pid is read: a warm worker can consume before this loop
        # reads its pid, and Engine._stale_unacked counts what was delivered before started_at as left by a
        # dead generation (it would requeue a message this one runs: a task run twice).
        began = time.time()
        spare, self.spare = self.spare, None
        if spare is not None and not spare.usable_for(self.spec):
            spare.discard()
            spare = None
        if spare is not None and spare.go(self.spec):
            self.guard, report_r = spare.process, spare.report_r
            self.warm = True
        else:
            self.warm = False
            self.guard, report_r = await launch_guard(self.spec, [sys.executable, "-I", "-S"], [], self.lifeline_fd)
        self.pid = await read_reported_pid(report_r)
        self._spawned.set()
        self.started_at = began
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
            self._tracker = ExceptionTracker()
            try:
                await self._spawn()
            except OSError as exc:
                self.exit_code = 127
                self.notice(f"{self.name}: cannot start {self.spec.argv[0]!r}: {exc.strerror}", "error")
                self._want_running = False
                self.last_error = f"cannot start {self.spec.argv[0]!r}: {exc.strerror}"
                self._set_state(State.CRASHED, self.last_error)
                return
            self._set_state(State.STARTING)
            reader = asyncio.get_running_loop().create_task(read_output(self.guard.stdout, self._emit))
            ready = asyncio.get_running_loop().create_task(self._await_ready())
            code = await self.guard.wait()
            ready.cancel()
            self.ready_event.clear()
            stayed_ready = self.state == State.READY and time.time() - (self.ready_at or 0) >= STAYED_READY
            if self.state in (State.READY, State.STARTING):
                # Ready only while up: shown crashed at once, announced (backoff or crashed) once the
                # rest of its output, which says why, has been read.
                self.state = State.CRASHED
            await reader
            self.exit_code = code
            self._exited.set()
            if self.spec.stop_hook:
                await self.spec.stop_hook()
            uptime = time.time() - (self.started_at or time.time())
            if not self._want_running:
                break
            reason = self._exit_reason(code)
            self.crash_loop = 0 if stayed_ready else self.crash_loop + 1
            if not self.spec.autorestart or self.reloading or self.crash_loop >= self.crash_limit:
                self._give_up(reason)
                return
            if uptime >= HEALTHY_RESET:
                self._backoff = BACKOFF_START
            delay = self._backoff
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)
            self.backoff_until = time.time() + delay
            self._set_state(State.BACKOFF, f"{reason}; restarting in {delay:.0f} s")
            self.notice(f"{self.name} {reason}; restarting in {delay:.0f} s", "warning")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
            if self._want_running:
                self.count_restart()
        self.pid = None
        self.backoff_until = None
        self._set_state(State.STOPPED)

    def _exit_reason(self, code: int | None) -> str:
        """How it exited and, from its output, the last exception with the fix devstack knows."""
        how = _describe_exit(code)
        last = self._tracker.last
        if last is None:
            killed = code is not None and code > 128
            self.last_error = how if killed else f"{how} (it printed no error; see `devstack logs {self.name}`)"
            return self.last_error
        interpreter = interpreter_for(self.spec.argv, self.spec.env.get("PATH"))
        self.last_error = explain_exception(last, self._tracker.where, interpreter)
        return f"{how}: {self.last_error}"

    def _give_up(self, reason: str) -> None:
        """No automatic restart: a hot reload that failed, autorestart off, or a crash loop."""
        self._want_running = False
        self.pid = None
        if self.reloading:
            self._set_state(State.CRASHED, f"{reason}; fix the code: the next change restarts it")
            return
        if self.spec.autorestart:  # a crash loop: the notice says why in full, the state says what now
            self.notice(f"{self.name} {reason}. Crashed {self.crash_loop} times in a row without staying ready "
                        f"{STAYED_READY:g} s: not restarted any more until a file is saved or "
                        f"`devstack restart {self.name}`", "error")
            reason = (f"crash loop ({self.crash_loop} exits in a row, the last: {_describe_exit(self.exit_code)}); "
                      f"not restarted until a save or `devstack restart {self.name}` (last error: `devstack status`)")
        self._set_state(State.CRASHED, reason)

    async def _await_ready(self) -> None:
        try:
            await self.spec.probe.wait()
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
                _kill_group(pid)
            await self.guard.wait()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        self.close()
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
                _kill_group(pid)
            await self.guard.wait()  # the guard sweeps what is left of the group, then exits

    def _emit(self, raw_lines: list[bytes]) -> None:
        lines = clean_lines(raw_lines, self.secrets)
        error = self.log.write(lines)
        if error:
            self.notice(error, "error")
        probe = self.spec.probe
        emit = self.bus.emit
        now = time.time()
        track = self._tracker.feed
        for text in lines:
            probe.feed(text)
            track(text)
            emit(LogLine(self.name, text, "stdout", now))


def _signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


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
