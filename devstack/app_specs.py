"""What each app service runs: the ServiceSpec of api, worker, beat and every [process.*], from its config table."""
from __future__ import annotations

import asyncio
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable, Mapping

from . import module_report
from .probes import HttpProbe, LogProbe, Probe, http_probe_from_url
from .supervisor.spec import ServiceSpec

WORKER_READY = r"(\S+@\S+) ready\."
BEAT_READY = r"beat: Starting\.\.\."
# What a warm spare imports ahead of a restart: the libraries every such process loads, never the app.
CELERY_PRELOAD = ("celery.bin.celery", "celery.apps.worker", "celery.apps.beat", "celery.worker",
                  "celery.worker.consumer", "celery.concurrency.prefork", "celery.concurrency.solo",
                  "celery.events", "celery.backends.redis", "kombu.transport.redis", "redis", "billiard")
FLASK_PRELOAD = ("flask", "flask.cli", "werkzeug.serving", "werkzeug.debug", "celery", "kombu.transport.redis",
                 "redis")


@dataclass(frozen=True)
class Interpreter:
    """The Python that runs the app's `flask`/`celery`, and why that one."""

    python: str
    source: str  # "[project] python", "VIRTUAL_ENV", ".venv in the project", "devstack's own"

    @property
    def own(self) -> bool:
        return self.source == OWN

    @property
    def bindir(self) -> Path:
        return Path(self.python).parent  # not resolved: a venv's bin/python is a symlink out of the venv

    @property
    def venv(self) -> Path | None:
        root = self.bindir.parent
        return root if (root / "pyvenv.cfg").exists() else None

    def activate(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` as an activated virtualenv has it: the interpreter's bin first on PATH (so the app's
        own subprocesses and `devstack run` find its commands), VIRTUAL_ENV when it is a venv."""
        if self.own:
            return env
        path = env.get("PATH", os.defpath)
        if path.split(os.pathsep)[0] != str(self.bindir):
            env["PATH"] = f"{self.bindir}{os.pathsep}{path}"
        if self.venv is not None:
            env["VIRTUAL_ENV"] = str(self.venv)
        return env


OWN = "devstack's own"


def choose_interpreter(configured: Path | None, root: Path, env: Mapping[str, str]) -> Interpreter:
    """[project] python, else the activated VIRTUAL_ENV, else a .venv (or venv) folder in the project,
    else the Python devstack runs on: the app's dependencies are the app's, not devstack's."""
    if configured is not None:
        return Interpreter(str(configured), "[project] python")
    venv = env.get("VIRTUAL_ENV")
    if venv and _venv_python(Path(venv)):
        return Interpreter(str(_venv_python(Path(venv))), "VIRTUAL_ENV")
    for name in (".venv", "venv"):
        found = _venv_python(Path(root) / name)
        if found:
            return Interpreter(str(found), f"{name} in the project")
    return Interpreter(sys.executable, OWN)


def _venv_python(folder: Path) -> Path | None:
    for name in ("python", "python3"):
        candidate = folder / "bin" / name
        if candidate.exists():
            return candidate
    return None


def executable(name: str, env: dict[str, str], python: Interpreter | None = None) -> list[str]:
    """Which `celery`/`flask` runs the app: the console script beside the chosen interpreter, else
    `python -m` with it. With devstack's own interpreter: beside it, then PATH, then `python -m`."""
    python = python or Interpreter(sys.executable, OWN)
    beside = python.bindir / name
    if beside.exists():
        return [str(beside)]
    found = shutil.which(name, path=env.get("PATH"))
    if python.own and found:
        return [found]
    return [python.python, "-m", name]


def _deps(table) -> list[str]:
    """An app service always waits for Redis, then for what its `depends_on` names."""
    return ["redis", *(d for d in table.depends_on if d != "redis")]


class ExitProbe(Probe):
    """A oneshot step is never ready while it runs: the engine marks it done once it exited 0."""

    async def wait(self) -> None:
        await asyncio.get_running_loop().create_future()


def _start_env(table, env: dict[str, str]) -> dict[str, str]:
    """A Python service's environment with its start-up run without the cyclic collector, unless its
    table says `collector_off_at_start = false`."""
    return module_report.collector_off_at_start(env) if table.collector_off_at_start else env


def api_spec(api, env: dict[str, str], preload: bool, python: Interpreter | None = None) -> ServiceSpec:
    argv = list(api.command) if api.command else [
        *executable("flask", env, python), "--app", api.app, "run", "--debug", "--no-reload",
        "--host", api.host, "--port", str(api.port)]
    host = "127.0.0.1" if api.host in ("0.0.0.0", "::", "") else api.host
    return ServiceSpec("api", argv + list(api.args), Path(api.cwd), _start_env(api, env),
                       HttpProbe(host, api.port, api.ready_path), _deps(api), api.stop_timeout,
                       preload=FLASK_PRELOAD if preload else ())


def worker_spec(w, env: dict[str, str], pool: str, concurrency: int | None, generation: int, preload: bool,
                confirm: Callable[[str, str | None], Awaitable[None]], python: Interpreter | None = None) -> ServiceSpec:
    """`confirm(nodename, broker URL)` runs once the worker logs ready (see Engine._confirm_worker)."""
    if w.command:
        argv = list(w.command)
    else:
        argv = [*executable("celery", env, python), "-A", w.app, "worker", "-P", pool]
        if concurrency:
            argv += ["-c", str(concurrency)]
        if w.queues:
            argv += ["-Q", ",".join(w.queues)]
        node = w.name if generation == 1 else f"{w.name}-{generation}"
        argv += ["-l", w.loglevel.upper(), "-n", f"{node}@%h"]  # generations must not share a nodename
        if w.events:
            argv.append("-E")
        if w.fast_start:
            argv += ["--without-mingle", "--without-gossip"]
    broker = env.get("CELERY_BROKER_URL")
    if w.freeze_before_fork and (pool == "prefork" or w.command):
        env = module_report.freeze_before_fork(env)
    env = _start_env(w, env)
    if pool == "prefork" and sys.platform == "darwin":
        # macOS aborts a forked pool child that touches Objective-C (Celery's known crash there).
        env = {"OBJC_DISABLE_INITIALIZE_FORK_SAFETY": "YES", **env}

    async def on_ready_line(match) -> None:
        await confirm(match.group(1), broker)

    return ServiceSpec("worker", argv + list(w.args), Path(w.cwd), env, LogProbe(WORKER_READY, on_ready_line),
                       _deps(w), w.stop_timeout, term_main_only=True, stdin_pipe=True,
                       preload=CELERY_PRELOAD if preload else ())


def beat_spec(b, worker_app: str, env: dict[str, str], state_dir: Path, preload: bool,
              python: Interpreter | None = None) -> ServiceSpec:
    argv = list(b.command) if b.command else [
        *executable("celery", env, python), "-A", b.app or worker_app, "beat", "-l", b.loglevel.upper(),
        "-s", str(state_dir / "celerybeat-schedule")]
    # Beat saves its schedule file every 3 min by default: `devstack beat` reads last runs from it.
    sync = [] if b.command or "--" in b.args else ["--", "beat_sync_every=1"]
    return ServiceSpec("beat", argv + list(b.args) + sync, Path(b.cwd), _start_env(b, env), LogProbe(BEAT_READY),
                       _deps(b), b.stop_timeout, preload=CELERY_PRELOAD if preload else ())


def process_spec(name: str, proc, env: dict[str, str]) -> ServiceSpec:
    if proc.oneshot:
        probe: Probe = ExitProbe()
    elif proc.ready_http:
        probe = http_probe_from_url(proc.ready_http)
    elif proc.ready_log:
        probe = LogProbe(proc.ready_log)
    else:
        probe = Probe()
    return ServiceSpec(name, list(proc.command) + list(proc.args), Path(proc.cwd), env, probe,
                       list(proc.depends_on), proc.stop_timeout, autorestart=not proc.oneshot)
