"""Warm spares: a guard whose child already imported a service's libraries, waiting to run its next start."""
from __future__ import annotations

import asyncio
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Callable

import psutil

from .. import preload
from ..usage import has_children_files, proc_children
from .guard_client import launch_guard, send_go
from .spec import ServiceSpec

# eventlet must monkey-patch before anything is imported and no test runs a patched eventlet spare here.
_NO_SPARE_POOLS = {"eventlet"}
# A gevent worker's spare patches first, as `celery` does (guard.py --patch celery), then preloads.
_PATCHED_POOLS = {"gevent"}
# In a learned list, the sign that the app patches by itself: preloading ssl & co. before its patch breaks it.
_SELF_PATCHING = ("gevent.monkey", "eventlet")


def pools(argv: list[str]) -> set[str]:
    found = {a.split("=", 1)[1] for a in argv if a.startswith("--pool=")}
    return found | {argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-P", "--pool")}


def spare_interpreter(spec: ServiceSpec) -> tuple[str, str] | None:
    """(interpreter, script) when the service is a Python console script a warm spare can run in-process.

    Only for an absolute `#!/path/to/python` shebang: the spare then runs under exactly the interpreter
    (and virtualenv) the script would have used. Anything else just starts cold.
    """
    if not spec.preload or not spec.argv:
        return None
    argv = spec.argv
    if pools(argv) & _NO_SPARE_POOLS:
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


Notice = Callable[[str, str], None]
RSS_EVERY = 2.0


@dataclass
class Spare:
    """A guard whose child already imported the service's libraries and waits for "go"."""

    process: asyncio.subprocess.Process
    go_w: int
    report_r: int
    spec: ServiceSpec  # what it was prepared for: its guard's command line shows exactly this argv
    script: str
    modules: tuple[str, ...] = ()
    progress: preload.Progress = field(default_factory=preload.Progress)
    sent: bool = False
    discarded: bool = False
    _rss: tuple[float, int | None] = (float("-inf"), None)

    def usable_for(self, spec: ServiceSpec) -> bool:
        mine = self.spec
        return (self.process.returncode is None and spec.argv == mine.argv and spec.env == mine.env
                and str(spec.cwd) == str(mine.cwd) and spec.stdin_pipe == mine.stdin_pipe)

    def go(self, spec: ServiceSpec) -> bool:
        """Run `spec` in this spare now. False (and discarded) if the spare died meanwhile: start cold."""
        try:
            send_go(self.go_w, spec, self.script)
        except OSError:
            self.discard()
            return False
        self.sent = True
        return True

    def discard(self) -> None:
        self.discarded = True
        for fd in (self.go_w, self.report_r):
            try:
                os.close(fd)
            except OSError:
                pass
        # EOF on "go": the spare exits by itself; reap its guard so no zombie is left.
        asyncio.get_running_loop().create_task(self.process.wait())

    def rss(self) -> int | None:
        """Resident memory of the spare (its guard and the child holding the imports), None once gone; read
        at most every RSS_EVERY seconds (every status snapshot, the TUI's included, asks)."""
        now = time.monotonic()
        if now - self._rss[0] >= RSS_EVERY:
            self._rss = (now, self._read_rss())
        return self._rss[1]

    def _read_rss(self) -> int | None:
        # The children files, not psutil's children(): that reads all of /proc.
        pids = [self.process.pid, *proc_children(self.process.pid)] if has_children_files() else None
        try:
            procs = [psutil.Process(pid) for pid in pids] if pids else [guard := psutil.Process(self.process.pid),
                                                                        *guard.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs)
        except psutil.Error:
            return None

    def follow(self, progress_r: int, notice: Notice, on_death: Callable[["Spare", bool], None]) -> None:
        """Read the child's progress as it preloads; drop what failed from the list, with a notice."""
        loop = asyncio.get_running_loop()
        reported: set[str] = set()

        def read(drain: bool) -> None:
            while not self.progress.closed:
                try:
                    data = os.read(progress_r, 65536)
                except BlockingIOError:
                    return
                except OSError:
                    data = b""
                self.progress.feed(data)
                if not data:
                    loop.remove_reader(progress_r)
                    os.close(progress_r)
                    self.progress.closed = True
                if not drain:
                    break
            if self.progress.ready and self.progress.failed.keys() - reported:
                reported.update(self.progress.failed)
                self._drop(self.progress.failed, notice, "the spare goes on without them")

        async def watch() -> None:
            code = await self.process.wait()
            read(drain=True)  # the child is gone: all it said is in the pipe
            if self.sent or self.discarded:
                return
            culprits = {n: why for n, why in self.progress.culprits(died=True).items() if n not in reported}
            self._drop(culprits, notice, f"its spare exited ({code}); the next start is cold")
            if not culprits:
                notice(f"{self.spec.name}: its warm spare exited with code {code} while preloading; "
                       "the next start is cold", "warning")
            on_death(self, bool(culprits))

        os.set_blocking(progress_r, False)
        loop.add_reader(progress_r, lambda: read(drain=False))
        loop.create_task(watch())

    def _drop(self, culprits: dict[str, str], notice: Notice, then: str) -> None:
        if not culprits:
            return
        preload.drop(self.spec.env, list(culprits))
        said = "; ".join(f"{name} ({why})" for name, why in list(culprits.items())[:5])
        more = f" and {len(culprits) - 5} more" if len(culprits) > 5 else ""
        notice(f"{self.spec.name}: dropped from the preload list: {said}{more}; {then}. To keep a module out "
               f"for good: [{self.spec.name}] preload_exclude = [\"{next(iter(culprits))}\"]", "warning")


def spare_plan(spec: ServiceSpec) -> tuple[list[str], tuple[str, ...]] | None:
    """(guard options, modules) for a spare of `spec`; None if it cannot have one."""
    modules, _ = preload.modules_for(spec.env, spec.preload)
    patched = bool(pools(spec.argv) & _PATCHED_POOLS)
    if patched and os.path.basename(spec.argv[0]) != "celery":
        return None  # only celery's own patching is known to come first
    if not patched and any(preload.excluded(n, list(_SELF_PATCHING)) for n in modules):
        return None
    return ["--preload", preload.guard_arg(spec.env, modules), *(["--patch", "celery"] if patched else [])], modules


REPORT_WAIT = 5.0  # seconds a spare waits for the running generation's list before taking the last one


async def launch_spare(spec: ServiceSpec, lifeline_fd: int, notice: Notice | None = None,
                       on_death: Callable[[Spare, bool], None] | None = None,
                       reported_since: float | None = None) -> Spare | None:
    """Start a warm spare prepared for `spec`; None if the service cannot have one (or it failed to start).
    `reported_since`: with no list recorded yet (a first run), first wait a few seconds at most for the one
    the running generation writes once its imports settle; else the last generation's list serves.

    Only for restarts: a cold start's spares, begun while Redis starts, were measured slower on 2 cores
    (bench/preload_bench.py): the services import the same libraries then anyway, all at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REPORT_WAIT
    while (reported_since is not None and not preload.modules_for(spec.env, ())[1]
           and not preload.written_since(spec.env, reported_since) and loop.time() < deadline):
        await asyncio.sleep(0.1)
    found = spare_interpreter(spec)
    plan = spare_plan(spec) if found else None
    if found is None or plan is None:
        return None
    interpreter, script = found
    go_r, go_w = os.pipe()
    progress_r, progress_w = os.pipe()
    try:
        process, report_r = await launch_guard(
            spec, [interpreter], ["--spare", str(go_r), "--progress", str(progress_w), *plan[0]], lifeline_fd,
            (go_r, progress_w))
    except OSError:
        os.close(go_w)
        os.close(progress_r)
        return None
    finally:
        os.close(go_r)
        os.close(progress_w)
    spare = Spare(process, go_w, report_r, spec, script, plan[1])
    spare.follow(progress_r, notice or (lambda text, level: None), on_death or (lambda *_: None))
    return spare
