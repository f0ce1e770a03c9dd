"""The checks of `devstack doctor`: each takes the gathered :class:`Context` and returns one :class:`Check`.

Redis reachability, passwords, the broker URL's shape, tasks stuck in PENDING, Docker, inotify,
events, ``visibility_timeout``: each OK / WARN / FAIL with the fix. Messages never quote a password.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ..broker import QueueInspector, active_queues, fast_fail_client
from ..broker_url import SHAPE, broker_url_problems
from ..ports import listener
from ..reload.inotify import RAISE_IT, count_watched_dirs, watch_limit
from ..secrets import mask
from ..state import running_pid
from ..watch_ignore import DEFAULT_IGNORE
from .app_env import APP_ENV_CHECKS
from .context import Context, Target
from .report import FAIL, OK, WARN, Check
from .topology import check_topology

DEFAULT_VISIBILITY_TIMEOUT = 3600
APP_KEYS = ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "CELERY_BROKER_URL")


def _listening(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _listener(port: int) -> str:
    return listener(port) or "a process devstack cannot name (another user's, or inside a container)"


def _same_place(a: Target, host: str, port: int) -> bool:
    local = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
    return a.port == port and (a.host == host or (a.host in local and host in local))


def app_env_summary(ctx: Context) -> str:
    """What the app's env points to, per source, passwords masked."""
    shown = []
    for where, env, _eff in ctx.layers():
        for key in APP_KEYS:
            if key in env and env[key] != "":
                value = "(set)" if key == "REDIS_PASSWORD" else mask(env[key], ctx.secrets())
                shown.append(f"{key} {where} = {value}")
    if not shown:
        return "the env file and the environment set none of REDIS_HOST/PORT/PASSWORD or CELERY_BROKER_URL"
    return "; ".join(shown)


def check_env_file(ctx: Context) -> Check:
    if ctx.file_error:
        return Check("env file", FAIL, ctx.file_error, "correct the line named above")
    if ctx.env_file is None:
        return Check("env file", OK, "no env file (none configured and no .env beside the config)")
    return Check("env file", OK, f"{ctx.env_file} read ({len(ctx.file_vars)} variables)")


def check_broker_urls(ctx: Context) -> Check:
    found, bad = 0, []
    sources = [(f"CELERY_BROKER_URL {where}", env.get("CELERY_BROKER_URL")) for where, env, _ in ctx.layers()]
    sources.append(("[redis] url", ctx.config.redis.url))
    for label, url in sources:
        if url is None:
            continue
        found += 1
        bad += [f"{label} {problem}" for problem in broker_url_problems(url)]
    if bad:
        return Check("broker URL", FAIL, "; ".join(bad) + ".",
                     f"write it as {SHAPE} (password percent-encoded, db an integer), or remove it and let "
                     "devstack set CELERY_BROKER_URL for the processes it starts")
    if not found:
        return Check("broker URL", OK, "no CELERY_BROKER_URL set: devstack gives the app its own")
    return Check("broker URL", OK, f"{found} broker URL(s) well formed ({SHAPE})")


def check_redis(ctx: Context) -> Check:
    """Is the Redis devstack expects there, and does it take devstack's password?"""
    if ctx.endpoint is None:
        return Check("redis", FAIL, ctx.endpoint_error or "no Redis could be planned", "see the message")
    ep = ctx.endpoint
    host, port = ep.connect_kwargs()["host"], ep.connect_kwargs()["port"]
    where = f"{host}:{port}"
    expects = f"devstack expects {'an' if ep.mode[0] in 'ae' else 'a'} {ep.mode} Redis at {where}"
    app = f"The app's env: {app_env_summary(ctx)}."
    if ep.is_sentinel:
        if ep.master is None:
            return Check("redis", FAIL, f"devstack expects an external Redis behind sentinels, master "
                                        f"{ep.master_name!r}, but no sentinel named it: {ctx.sentinel_error}. {app}",
                         "check the sentinel addresses in [redis] url and [redis] master_name "
                         "(`redis-cli -p 26379 sentinel masters` lists the names)")
        expects = f"devstack expects an external Redis behind sentinels: master {ep.master_name!r} at {where}"
    if ep.mode != "external":
        if not _listening(ep.host, ep.port):
            return Check("redis", OK, f"{expects}: not running now, and the port is free, so `devstack up` "
                                      f"can start it. {app}")
        if not running_pid(Path(ctx.config.project.state_dir)):
            return Check("redis", FAIL, f"{expects}, but port {ep.port} is taken by {_listener(ep.port)} while "
                                        "this stack is not running: `devstack up` would stop with "
                                        f"'Address already in use'. {app}",
                         "stop that process, or set [redis] port in devstack.toml to a free port")
    result = ctx.probe(host, port, ep.password)
    if result == "ok":
        return Check("redis", OK, f"{expects}: it answers PING with devstack's password. {app}")
    if result == "connection refused":
        return Check("redis", FAIL, f"Error 111 connecting to {where}: {expects} ({ctx.password_source} and "
                                    f"mode = \"{ep.mode}\") and nothing listens there. {app}",
                     "start that Redis, or correct [redis] url, or remove mode = \"external\" / url so that "
                     "devstack starts its own Redis")
    if result.startswith(("NOAUTH", "WRONGPASS", "AUTH")):
        return Check("redis", FAIL, f"{expects}; it answers, but refuses devstack's credentials "
                                    f"({ctx.password_source}): {result}. {app}",
                     _auth_fix(ctx))
    return Check("redis", FAIL, f"{expects}; connecting failed: {result}. {app}",
                 "check that the host and port are a Redis server, and `redis-cli -h HOST -p PORT ping`")


def _auth_fix(ctx: Context) -> str:
    return ("make every source agree with the password the Redis requires: REDIS_PASSWORD and the "
            f"password in CELERY_BROKER_URL ({SHAPE}) in " + ctx.file_label +
            ", the environment, [redis] password / url; or remove them from the env file so devstack's "
            "own values are used")


def check_passwords(ctx: Context) -> Check:
    """Every password source against what the Redis it points to requires."""
    if ctx.endpoint is None or ctx.endpoint.url_override and ctx.endpoint.url_override.startswith("sentinel"):
        return Check("passwords", OK, "not checked (no Redis planned, or a sentinel setup)")
    ep = ctx.endpoint
    if ep.mode != "external" and ep.password is None:
        return Check("passwords", OK, "nothing to compare yet: devstack generates the Redis password at the "
                                      "first `devstack up` and gives it to the app")
    wrong, unreachable, checked = [], [], 0
    for t in ctx.targets():
        result = ctx.probe(t.host, t.port, t.password)
        at = f"{t.host}:{t.port}"
        if result == "ok":
            checked += 1
        elif result.startswith("NOAUTH"):
            wrong.append(f"{t.label} carries no password, but the Redis at {at} requires one (NOAUTH)")
        elif result.startswith("WRONGPASS"):
            wrong.append(f"{t.label} differs from the password the Redis at {at} requires (WRONGPASS)")
        elif result.startswith("AUTH failed"):
            wrong.append(f"{t.label} sets a password, but the Redis at {at} has none configured")
        elif not _same_place(t, ep.host, ep.port) and result in ("connection refused", "unknown host"):
            unreachable.append((t, f"{t.label} points to {at}: {result}"))
    if wrong:
        overridden = [w for w in wrong if " in the environment" in w or f" in {ctx.file_label}" in w]
        note = (" devstack passes its own values to the processes it starts, but anything started with "
                f"{ctx.file_label} or this environment (by hand, docker compose, an IDE) fails." if overridden else "")
        return Check("passwords", FAIL, "; ".join(wrong) + "." + note, _auth_fix(ctx))
    if unreachable:
        level = FAIL if any(t.effective for t, _ in unreachable) else WARN
        return Check("passwords", level,
                     "; ".join(m for _, m in unreachable) + f". devstack's Redis is at {ep.host}:{ep.port}.",
                     "point REDIS_HOST/REDIS_PORT and CELERY_BROKER_URL at the Redis devstack runs, or remove "
                     "them from " + ctx.file_label + " so devstack's own values are used")
    if not checked:
        return Check("passwords", OK, "not checked: the Redis is not reachable (see the redis line)")
    return Check("passwords", OK, f"{checked} credential source(s) match what the Redis requires")


def _broker_client(ctx: Context):
    url = ctx.broker_url
    if not url or broker_url_problems(url) or not url.startswith(("redis://", "rediss://")):
        return None
    kwargs = ctx.endpoint.connect_kwargs()
    if ctx.probe(kwargs["host"], kwargs["port"], ctx.endpoint.password) != "ok":
        return None
    return fast_fail_client(url, timeout=ctx.timeout, socket_timeout=ctx.timeout + 2)


def check_pending(ctx: Context) -> Check:
    """Messages waiting in a queue that no running worker consumes stay PENDING forever."""
    client = _broker_client(ctx)
    if client is None:
        return Check("pending tasks", OK, "not checked: the broker is not reachable (see the lines above)")
    configured = list(ctx.config.worker.queues)
    try:
        waiting = [q for q in QueueInspector(client, configured).queues() if q.ready]
    finally:
        client.close()
    if not waiting:
        return Check("pending tasks", OK, "no messages waiting in any queue")
    # Only paid when messages wait; a loaded laptop's worker can take over a second to answer.
    workers = active_queues(ctx.broker_url, timeout=max(ctx.timeout, 2.0))
    consumed = {q for qs in workers.values() for q in qs}
    orphans = [q for q in waiting if q.name not in consumed]
    if not orphans:
        return Check("pending tasks", OK, f"{sum(q.ready for q in waiting)} message(s) waiting, "
                                          "each in a queue a running worker consumes")
    listing = ", ".join(f"{q.ready} in {q.name!r}" for q in orphans)
    missing = [q.name for q in orphans if configured and q.name not in configured]
    q_fix = (f"add {', '.join(repr(n) for n in missing)} to [worker] queues (the worker's -Q), or route those "
             "tasks to a queue it consumes" if missing else "")
    if not workers:
        level = FAIL if missing else WARN
        default = "" if configured else " (without [worker] queues it consumes the app's default queue, 'celery' unless task_default_queue says otherwise)"
        return Check("pending tasks", level, f"messages wait ({listing}) and no worker answers: these tasks stay "
                                             f"PENDING until a worker consuming their queue runs{default}.",
                     q_fix or "start the stack (`devstack up`), or check the worker's log for why it is not running")
    running = "; ".join(f"{node} consumes {', '.join(qs) or 'nothing'}" for node, qs in sorted(workers.items()))
    return Check("pending tasks", FAIL, f"messages wait in queues no running worker consumes ({listing}); "
                                        f"running: {running}. These tasks stay PENDING.",
                 q_fix or "add those queues to [worker] queues (-Q), or route the tasks to a consumed queue")


def check_docker(ctx: Context) -> Check:
    if ctx.config.redis.mode != "docker":
        return Check("docker", OK, f"not used ([redis] mode = \"{ctx.config.redis.mode}\")")
    docker = shutil.which("docker", path=ctx.environ.get("PATH"))
    if not docker:
        return Check("docker", FAIL, "[redis] mode = \"docker\" but no `docker` command is on PATH",
                     "install Docker, or use mode = \"auto\" (a redis-server on PATH or the embedded one)")
    try:
        proc = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], env=ctx.environ,
                              capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return Check("docker", FAIL, "`docker info` did not answer within 15 s: the Docker engine hangs",
                     "restart Docker Desktop / the docker service, or use [redis] mode = \"auto\"")
    if proc.returncode != 0:
        reason = next((ln.strip() for ln in proc.stderr.splitlines() if ln.strip()), "no reason given")
        return Check("docker", FAIL, f"the docker client is installed but no Docker engine answers "
                                     f"(`docker info`: {reason[:200]})",
                     "start Docker Desktop (or `sudo systemctl start docker`), check DOCKER_HOST / the docker "
                     "context, or use [redis] mode = \"auto\"")
    return Check("docker", OK, f"Docker engine {proc.stdout.strip()} answers")


def _watch_ignores(config) -> set[str]:
    names = set(DEFAULT_IGNORE)
    for svc in (config.api, config.worker, config.beat, *config.process.values()):
        names.update(Path(p).name for p in svc.watch_ignore)
    return names


def check_inotify(ctx: Context) -> Check:
    if not ctx.config.reload.enabled or ctx.config.reload.polling:
        return Check("inotify", OK, "not used (reload disabled or polling)")
    found = watch_limit(ctx.inotify_limit_files)
    if found is None:
        return Check("inotify", OK, "no inotify watch limit on this system")
    limit, source = found
    root = Path(ctx.config.root)
    dirs = count_watched_dirs(root, _watch_ignores(ctx.config), limit)
    fix = (f"raise it: {RAISE_IT}, or add big folders to watch_ignore, or set [reload] polling = true "
           "(devstack polls by itself when the limit is too low)")
    if dirs > limit:
        return Check("inotify", FAIL, f"{root} has more than {limit} folders to watch, above "
                                      f"{source} = {limit}: hot reload falls back to polling", fix)
    if dirs > limit // 2:
        return Check("inotify", WARN, f"{root} has {dirs} folders to watch and {source} is "
                                      f"{limit}: editors and other watchers share that limit", fix)
    return Check("inotify", OK, f"{dirs} folders to watch, limit {limit}")


def check_events(ctx: Context) -> Check:
    w = ctx.config.worker
    if not w.enabled:
        return Check("events", OK, "no worker configured")
    if w.command and not any(a in ("-E", "--task-events") for a in [*w.command, *w.args]):
        return Check("events", WARN, "[worker] command has no -E: the worker sends no task events and the task "
                                     "feed will be empty", "add -E to [worker] command")
    if not w.command and not w.events:
        return Check("events", WARN, "[worker] events = false: the worker sends no task events and the task feed "
                                     "will be empty", "set [worker] events = true (adds -E)")
    return Check("events", OK, "the worker sends task events (-E)")


def visibility_timeout(env: dict[str, str]) -> tuple[float, str]:
    """(seconds, where from): broker_transport_options from the app's env when set there, else 3600."""
    for key, value in env.items():
        low = key.lower()
        if low.endswith("visibility_timeout"):
            try:
                return float(value), key
            except ValueError:
                continue
        if low.endswith("broker_transport_options"):
            try:
                opts = json.loads(value)
            except ValueError:
                continue
            if isinstance(opts, dict) and isinstance(opts.get("visibility_timeout"), (int, float)):
                return float(opts["visibility_timeout"]), key
    return float(DEFAULT_VISIBILITY_TIMEOUT), "the default"


def _seconds_until(eta: str, now: datetime) -> float | None:
    try:
        when = datetime.fromisoformat(eta)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - now).total_seconds()


def check_visibility_timeout(ctx: Context) -> Check:
    timeout, source = visibility_timeout(ctx.worker_env)
    client = _broker_client(ctx)
    if client is None:
        return Check("visibility timeout", OK, f"{timeout:.0f} s ({source}); queues not checked: broker not reachable")
    try:
        inspector = QueueInspector(client, ctx.config.worker.queues)
        now = datetime.now(timezone.utc)
        longest, task = 0.0, None
        for name in inspector.queue_names():
            for m in inspector.messages(name, limit=1000):
                wait = _seconds_until(m.eta, now) if m.eta else None
                if wait is not None and wait > longest:
                    longest, task = wait, m
    finally:
        client.close()
    if task is not None and longest > timeout:
        return Check("visibility timeout", WARN,
                     f"task {task.task} ({task.id}) in {task.queue!r} is due in {longest:.0f} s, beyond the "
                     f"visibility_timeout of {timeout:.0f} s ({source}): Redis hands a reserved message to another "
                     "worker after that timeout, so the task runs twice",
                     "raise broker_transport_options = {'visibility_timeout': N} above your longest ETA/countdown "
                     "(e.g. FLASK_CELERY__broker_transport_options='{\"visibility_timeout\": 43200}'), or use "
                     "shorter countdowns")
    return Check("visibility timeout", OK, f"{timeout:.0f} s ({source}); longest queued ETA {longest:.0f} s")


CHECKS: tuple[Callable[[Context], Check], ...] = (
    check_env_file, check_broker_urls, check_redis, check_passwords, check_pending, check_docker,
    check_inotify, check_events, check_visibility_timeout, check_topology) + APP_ENV_CHECKS
