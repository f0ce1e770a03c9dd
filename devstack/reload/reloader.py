"""The running reloader: watch the planned folders with watchfiles, coalesce changes (trailing edge), keep
one restart in flight per service (changes meanwhile cause exactly one follow-up), pause a service's
auto-reload on a restart storm, and re-read the env file and devstack.toml when they change.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from watchfiles import Change, awatch

from ..config import ConfigError, load_config
from ..envfile import parse_env_file
from ..events import State
from ..module_report import ModuleReports
from .inotify import over_limit
from .plan import ReloadPlanner, files_under, describe_files

MAX_BATCH_WAIT = 2.0  # a file rewritten non-stop still reloads this often (the storm guard caps it)
STORM_WINDOW = 60.0
READY_TIMEOUT = 60.0
# watchfiles yields a batch once one step passed without a new change, and its thread takes the GIL every
# step even when nothing happens (to check signals and the stop event): at 20 ms that one watcher cost an idle
# TUI 0.27% of a core, about half as much as the whole front-end's own thread (py-spy, 30 s). At 50 ms a save
# is yielded 50-100 ms after it is written instead of 20-40 ms: ~45 ms more per reload.
WATCH_STEP_MS = 50
WATCH_ARMED_MS = 1000  # empty yields at this period prove the watcher runs (see Reloader.armed); each costs the
# event loop a wake-up and a thread hand-off: at 300 ms two idle watchers took 0.25-0.3% of a core more
# (bench/watch_idle.py: 0.80 and 0.97% against 0.55 and 0.67%)


@dataclass
class ReloadRecord:
    """One restart caused by file changes (what tests and benchmarks read back)."""

    service: str
    files: list[str]
    started: float
    ready_in: float | None = None  # None: crashed or not ready within READY_TIMEOUT
    done: bool = False


class ReloadTarget(Protocol):
    """What the reloader drives (the engine): it decides when, the target does the restarts and owns the config."""

    @property
    def config(self): ...

    def service_names(self) -> list[str]:
        """Every service, in start order."""

    def service_state(self, name: str) -> State | None: ...

    def held(self, name: str) -> bool:
        """Stopped by a command: not restarted by a reload or a config edit."""

    async def reload_service(self, name: str, timeout: float) -> float | None:
        """Restart `name` for a code change; seconds until ready again, None if it did not come back."""

    def apply_config(self, config, env_file_vars: dict[str, str]) -> list[str]:
        """Switch to a re-read configuration; the services whose settings changed. Raises (keeping the
        previous one) when the running stack cannot apply it."""

    def notice(self, text: str, level: str = "info", service: str | None = None) -> None: ...


class Reloader:
    """Watches files and restarts services through `ReloadTarget.reload_service`."""

    def __init__(self, target: ReloadTarget):
        self.target = target
        self.config = target.config
        self.planner = ReloadPlanner.from_config(target.config)
        self.reports = ModuleReports(Path(target.config.project.state_dir))
        self.reports.clear()  # created before the apps start: what they report is this run's code
        self._why: dict[Path, str] = {}  # each pending file: why it restarts what it restarts
        self.history: list[ReloadRecord] = []
        self.paused: set[str] = set()
        self.armed = asyncio.Event()  # set once the watchers run (a change after this is seen)
        self._pending: dict[str, set[Path]] = {}
        self._dirty = asyncio.Event()
        self._in_flight: dict[str, asyncio.Task] = {}
        self._auto: dict[str, deque[float]] = {}
        self._watchers: list[asyncio.Task] = []
        self._tasks: set[asyncio.Task] = set()
        self._stop = asyncio.Event()
        self._dispatcher: asyncio.Task | None = None
        self._flat: set[Path] = set()
        self._polling = False
        self._limit_said: str | None = None  # the inotify-limit notice, said once until it changes

    # ----- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        for warning in self.planner.warnings:
            self._notice(f"reload: {warning}", "warning")
        self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch_loop(), name="reload:dispatch")
        self._start_watchers()

    async def close(self) -> None:
        self._stop.set()
        tasks = [*self._watchers, *self._tasks, *self._in_flight.values()]
        if self._dispatcher is not None:
            tasks.append(self._dispatcher)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def resume(self, names: list[str]) -> None:
        """A manual restart ends a storm pause."""
        for name in names:
            self._auto.pop(name, None)
            if name in self.paused:
                self.paused.discard(name)
                self._notice(f"reload: auto-reload of {name} resumed", service=name)

    def _start_watchers(self) -> None:
        self.armed.clear()
        flat, deep = self.planner.targets()
        self._flat = set(flat)
        self._polling = bool(self.config.reload.polling)
        if not self._polling and (why := over_limit(flat, deep)):
            self._polling = True  # else the folders past the limit would be silently left out
            if why != self._limit_said:
                self._limit_said = why
                self._notice(f"reload: {why}.", "warning")
        groups = [(paths, recursive) for paths, recursive in ((flat, False), (deep, True)) if paths]
        self._armed_needed = len(groups)
        self._armed_seen: set[int] = set()
        loop = asyncio.get_running_loop()
        self._watchers = [loop.create_task(self._watch(i, paths, recursive), name=f"reload:watch{i}")
                          for i, (paths, recursive) in enumerate(groups)]
        if not groups:
            self.armed.set()

    async def _rewatch(self) -> None:
        old, self._watchers = self._watchers, []
        for task in old:
            task.cancel()
        await asyncio.gather(*old, return_exceptions=True)
        if not self._stop.is_set():
            self._start_watchers()

    async def _watch(self, index: int, paths: list[Path], recursive: bool) -> None:
        polling = True if self._polling else None  # None: watchfiles reads WATCHFILES_FORCE_POLLING
        # watchfiles holds a batch while changes keep coming, up to `debounce`: keep that well below our
        # quiet window, or a steady burst (a checkout) would look quiet between two batches.
        # One step: during a steady burst a batch then comes every ~2 steps (100 ms), inside the 150 ms default.
        batch_ms = min(WATCH_STEP_MS, self.config.reload.debounce_ms // 2) or WATCH_STEP_MS
        # A stop event of its own: awatch sets it when cancelled, and a re-watch cancels only this one.
        try:
            async for changes in awatch(*paths, watch_filter=self._relevant, debounce=batch_ms, step=WATCH_STEP_MS,
                                        rust_timeout=WATCH_ARMED_MS, yield_on_timeout=True, recursive=recursive,
                                        force_polling=polling, stop_event=asyncio.Event(),
                                        ignore_permission_denied=True):
                if not self.armed.is_set():
                    self._armed_seen.add(index)
                    if len(self._armed_seen) >= self._armed_needed:
                        self.armed.set()
                if changes:
                    self._on_changes(changes, recursive)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # e.g. the inotify watch limit: say how to fix it, keep the stack running
            self._notice(f"reload: watching {describe_files(paths, self.planner.root)} failed: {exc}. "
                         "Fix: narrow `watch` to your source folders, raise fs.inotify.max_user_watches, "
                         "or set [reload] polling = true.", "error")

    def _relevant(self, change: Change, raw: str) -> bool:
        path = Path(raw)
        if change == Change.added and path.parent in self._flat and path.is_dir():
            return self.planner.wants_folder(path)
        return self.planner.relevant(path)

    # ----- changes -> batches -----------------------------------------------------------------------
    def _on_changes(self, changes: set[tuple[Change, str]], recursive: bool) -> None:
        new_folder = False
        loaded = self.loaded()
        for change, raw in changes:
            path = Path(raw)
            if not recursive and change == Change.added and path.is_dir():
                new_folder = True  # a new source folder (a checkout, a new package): watch it too, and
                self._add_pending(files_under(path), loaded)  # count what was written before its watch existed
                continue
            self._add_pending([path], loaded)
        if new_folder:
            self._spawn(self._rewatch())
        if self._pending:
            self._dirty.set()

    def _add_pending(self, paths, loaded: dict[str, frozenset[Path]]) -> None:
        for path in paths:
            kind = self.planner.special(path)
            if kind is None:
                self._why[path] = self.planner.why(path, loaded)
            for key in [kind] if kind else self.planner.services_for(path, loaded):
                self._pending.setdefault(key, set()).add(path)

    def loaded(self) -> dict[str, frozenset[Path]]:
        """The imports of each service whose report describes the code it runs: it is ready (one that is
        starting or crashed has not imported everything yet), and it has reported."""
        found = {}
        for w in self.planner.watches:
            files = self.reports.files(w.service) if self.target.service_state(w.service) == State.READY else None
            if files is not None:
                found[w.service] = files
        return found

    async def _dispatch_loop(self) -> None:
        while True:
            await self._dirty.wait()
            await self._quiet_window(self.config.reload.debounce_ms / 1000)
            self._launch()

    async def _quiet_window(self, quiet: float) -> None:
        """Trailing edge: return once no change came for `quiet` s (or MAX_BATCH_WAIT passed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(MAX_BATCH_WAIT, quiet)
        while True:
            self._dirty.clear()
            remaining = min(quiet, deadline - loop.time())
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._dirty.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _launch(self) -> None:
        """Start a restart for every pending service that has none in flight; the rest wait their turn."""
        for kind in ("config", "env"):
            files = self._pending.pop(kind, None)
            if files:
                for name in (self._reload_config() if kind == "config" else self._reload_env()):
                    self._pending.setdefault(name, set()).update(files)
        ready = {n: f for n, f in self._pending.items() if n not in self._in_flight}
        for name in ready:
            del self._pending[name]
        ready = {n: f for n, f in ready.items() if self._allowed(n)}
        if not ready:
            return
        files = set().union(*ready.values())
        order = [n for n in self.target.service_names() if n in ready]
        self._notice(f"reload: {describe_files(files, self.planner.root)} changed -> restarting {', '.join(order)} "
                     f"({self._reasons(files)})")
        for name in order:
            record = ReloadRecord(name, sorted(map(str, ready[name])), time.monotonic())
            self.history.append(record)
            self._in_flight[name] = asyncio.get_running_loop().create_task(self._restart(record))

    def _reasons(self, files: set[Path]) -> str:
        """`a.py imported by worker; b.py imported by no service yet: watch paths` (config/env: their name)."""
        groups: dict[str, list[Path]] = {}
        for path in files:
            why = self._why.get(path, "changed")
            groups.setdefault(why, []).append(path)
        return "; ".join(f"{describe_files(paths, self.planner.root)} {why}" for why, paths in groups.items())

    def _allowed(self, name: str) -> bool:
        """Storm guard: more than storm_limit automatic restarts within a minute pauses the service."""
        if name in self.paused or name not in self.target.service_names() or self.target.held(name):
            return False  # held: stopped by a command, it stays stopped until started again
        now = time.monotonic()
        times = self._auto.setdefault(name, deque())
        while times and now - times[0] > STORM_WINDOW:
            times.popleft()
        if len(times) >= self.config.reload.storm_limit:
            self.paused.add(name)
            self._notice(f"reload: {name} was restarted {len(times)} times within a minute by file changes; "
                         f"auto-reload of {name} is paused. Fix: find the file written in a loop and add it "
                         f"to [{name}] watch_ignore, then `devstack restart {name}` resumes auto-reload.",
                         "warning", name)
            return False
        times.append(now)
        return True

    async def _restart(self, record: ReloadRecord) -> None:
        name = record.service
        try:
            record.ready_in = await self.target.reload_service(name, READY_TIMEOUT)
            state = self.target.service_state(name)
            if record.ready_in is not None:
                self._notice(f"{name} ready again in {record.ready_in:.2f} s", service=name)
            elif state is not None:
                self._notice(f"reload: {name} did not come back ({state.value}); "
                             f"its log shows why. Saving a file retries at once.", "error", name)
        finally:
            record.done = True
            self._in_flight.pop(name, None)
            if name in self._pending:
                self._dirty.set()  # changes arrived meanwhile: exactly one follow-up

    # ----- env file and devstack.toml ---------------------------------------------------------------
    def _app_services(self) -> list[str]:
        return [n for n in self.target.service_names() if n != "redis"]

    def _reload_env(self) -> list[str]:
        """Re-read the env file; every app service restarts with it."""
        config = self.target.config
        env_file = config.project.env_file
        try:
            env_vars = parse_env_file(Path(env_file)) if env_file else {}
        except ConfigError as exc:
            self._notice(f"reload: {exc} The services keep their current environment.", "error")
            return []
        try:
            self.target.apply_config(config, env_vars)
        except Exception as exc:  # a value the running stack cannot apply: the target kept the old one
            self._notice(f"reload: cannot apply the new environment ({exc}); keeping the previous one.", "error")
            return []
        return self._app_services()

    def _reload_config(self) -> list[str]:
        """Re-read devstack.toml; return the services whose settings (argv, env, cwd) changed."""
        previous = self.target.config
        try:
            new = load_config(previous.path, Path.cwd())
            env_file = new.project.env_file
            env_vars = parse_env_file(Path(env_file)) if env_file else {}
        except ConfigError as exc:
            self._notice(f"reload: {exc} The stack keeps running with the previous settings.", "error")
            return []
        try:
            changed = self.target.apply_config(new, env_vars)
        except Exception as exc:  # a setting the running stack cannot apply: the target kept the old one
            self._notice(f"reload: cannot apply the new configuration ({exc}); keeping the previous one.", "error")
            return []
        self._report_unapplied(previous, new)
        self.config = new
        self.planner = ReloadPlanner.from_config(new)
        self._spawn(self._rewatch())
        if not changed:
            self._notice("reload: configuration re-read; no service's settings changed")
        return changed

    def _report_unapplied(self, old, new) -> None:
        added = [n for n in new.services() if n not in self.target.service_names()]
        removed = [n for n in self._app_services() if n not in new.services()]
        if added or removed:
            self._notice(f"reload: services {'added' if added else 'removed'} in the configuration "
                         f"({', '.join(added or removed)}) take effect at the next `devstack up`.", "warning")
        if old.redis != new.redis or old.project.state_dir != new.project.state_dir:
            self._notice("reload: [redis] and [project] state_dir changes take effect at the next `devstack up`.",
                         "warning")

    # ----- helpers ----------------------------------------------------------------------------------
    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _notice(self, text: str, level: str = "info", service: str | None = None) -> None:
        self.target.notice(text, level, service)
