"""What each app service runs: the ServiceSpec of api, worker, beat and every [process.*], from its config table."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Awaitable, Callable

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


def executable(name: str, env: dict[str, str]) -> list[str]:
    """Which `celery`/`flask` runs the app.

    An activated virtualenv (VIRTUAL_ENV) is the user saying "my app's environment": use its PATH.
    Otherwise the one beside devstack's own Python (devstack installed into the app's venv but not
    activated), then PATH, then `python -m`.
    """
    beside = Path(sys.executable).with_name(name)
    found = shutil.which(name, path=env.get("PATH"))
    if env.get("VIRTUAL_ENV") and found:
        return [found]
    if beside.exists():
        return [str(beside)]
    if found:
        return [found]
    return [sys.executable, "-m", name]


def api_spec(api, env: dict[str, str], preload: bool) -> ServiceSpec:
    argv = list(api.command) if api.command else [
        *executable("flask", env), "--app", api.app, "run", "--debug", "--no-reload",
        "--host", api.host, "--port", str(api.port)]
    host = "127.0.0.1" if api.host in ("0.0.0.0", "::", "") else api.host
    return ServiceSpec("api", argv + list(api.args), Path(api.cwd), env,
                       HttpProbe(host, api.port, api.ready_path), ["redis"], api.stop_timeout,
                       preload=FLASK_PRELOAD if preload else ())


def worker_spec(w, env: dict[str, str], pool: str, concurrency: int | None, generation: int, preload: bool,
                confirm: Callable[[str, str | None], Awaitable[None]]) -> ServiceSpec:
    """`confirm(nodename, broker URL)` runs once the worker logs ready (see Engine._confirm_worker)."""
    if w.command:
        argv = list(w.command)
    else:
        argv = [*executable("celery", env), "-A", w.app, "worker", "-P", pool]
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

    async def on_ready_line(match) -> None:
        await confirm(match.group(1), broker)

    return ServiceSpec("worker", argv + list(w.args), Path(w.cwd), env, LogProbe(WORKER_READY, on_ready_line),
                       ["redis"], w.stop_timeout, term_main_only=True, stdin_pipe=True,
                       preload=CELERY_PRELOAD if preload else ())


def beat_spec(b, worker_app: str, env: dict[str, str], state_dir: Path, preload: bool) -> ServiceSpec:
    argv = list(b.command) if b.command else [
        *executable("celery", env), "-A", b.app or worker_app, "beat", "-l", b.loglevel.upper(),
        "-s", str(state_dir / "celerybeat-schedule")]
    return ServiceSpec("beat", argv + list(b.args), Path(b.cwd), env, LogProbe(BEAT_READY), ["redis"],
                       b.stop_timeout, preload=CELERY_PRELOAD if preload else ())


def process_spec(name: str, proc, env: dict[str, str]) -> ServiceSpec:
    if proc.ready_http:
        probe: Probe = http_probe_from_url(proc.ready_http)
    elif proc.ready_log:
        probe = LogProbe(proc.ready_log)
    else:
        probe = Probe()
    return ServiceSpec(name, list(proc.command) + list(proc.args), Path(proc.cwd), env, probe,
                       list(proc.depends_on), proc.stop_timeout)
