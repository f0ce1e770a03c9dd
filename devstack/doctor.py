"""`devstack doctor` and in-context diagnosis: the errors people hit with Flask + Celery + Redis, explained.

Two halves share one vocabulary:

* :func:`run_doctor` runs every :class:`Check` against the configured stack (running or not): Redis
  reachability, passwords, the broker URL's shape, tasks stuck in PENDING, Docker, inotify, events,
  ``visibility_timeout``. Each check returns OK / WARN / FAIL with the fix.
* :func:`diagnose_line` maps a log line a child printed to a :class:`Diagnosis`; :class:`LogDiagnoser`
  subscribes to the engine bus and emits one ``Notice`` per distinct diagnosis per service.

No password is ever part of a message: sources are named ("REDIS_PASSWORD in .env"), never quoted,
URLs are shown as ``redis://:***@host``, and the report is scrubbed of every known secret once more.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import quote, unquote, urlsplit

from .envfile import parse_env_file, resolve_env_file

OK, WARN, FAIL = "OK", "WARN", "FAIL"
DEFAULT_VISIBILITY_TIMEOUT = 3600
INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_watches")
# Folders a file watcher skips whatever the config says (tool caches, VCS, virtualenvs, state).
WATCH_SKIP = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv", ".tox", ".nox",
                        ".mypy_cache", ".pytest_cache", ".ruff_cache", ".devstack", ".idea", ".vscode",
                        "site-packages", "dist", "build", ".eggs"})
APP_KEYS = ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "CELERY_BROKER_URL")


@dataclass
class Check:
    """One line of `devstack doctor`: what was checked, how it went, and what to do about it."""

    name: str
    level: str  # OK | WARN | FAIL
    message: str
    fix: str = ""


# ---------------------------------------------------------------------------------------------
# masking
# ---------------------------------------------------------------------------------------------

_URL_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^\s;]*)@")  # up to the last @: passwords hold @ too


def _mask_userinfo(match: re.Match) -> str:
    user, sep, secret = match.group(2).partition(":")
    if secret.startswith("<") and secret.endswith(">"):  # a placeholder in a fix text, not a password
        return match.group(0)
    # Without a ':' the part before '@' is a user name to Redis, but people put passwords there.
    return f"{match.group(1)}{user}:***@" if sep else f"{match.group(1)}***@"


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and every URL's credentials replaced by ``***``."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _URL_USERINFO.sub(_mask_userinfo, text)


# ---------------------------------------------------------------------------------------------
# broker URL shape
# ---------------------------------------------------------------------------------------------

SHAPE = "redis://:<password>@host:port/db"
_SOCKET_SCHEMES = ("redis+socket", "socket", "unix")
_TCP_SCHEMES = ("redis", "rediss", "sentinel")


def broker_url_problems(url: str) -> list[str]:
    """What is wrong with a CELERY_BROKER_URL, in words; [] when kombu's Redis transport can use it.

    Never quotes the URL or any part of it that could be a password.
    """
    if not url.strip():
        return ["is empty"]
    problems = []
    if url != url.strip():
        problems.append("has spaces around it (they become part of the host or the db). Remove them")
    url = url.strip()
    if url[0] in "\"'" or url[-1] in "\"'":
        return problems + ["is wrapped in quote characters that became part of the value. Remove the quotes"]
    parts = [p for p in url.split(";") if p.strip()]
    if len(parts) > 1 and not all(p.strip().lower().startswith("sentinel://") for p in parts):
        return problems + ["joins several URLs with ';', which only sentinel:// lists may do "
                           "(sentinel://:<password>@h1:26379/1;sentinel://:<password>@h2:26379/1)"]
    for i, part in enumerate(parts):
        where = f"part {i + 1} of the sentinel list " if len(parts) > 1 else ""
        problems += [where + p for p in _one_url_problems(part.strip())]
    return problems


def _one_url_problems(url: str) -> list[str]:
    if "://" not in url:
        return [f"has no scheme: it must look like {SHAPE}"]
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme in ("amqp", "pyamqp", "amqps", "librabbitmq"):
        return ["is a RabbitMQ (amqp://) URL, but devstack's broker is Redis: use " + SHAPE]
    if scheme in _SOCKET_SCHEMES:
        return []
    if scheme not in _TCP_SCHEMES:
        return [f"has the scheme {scheme[:20]!r}; kombu's Redis transport takes redis://, rediss://, "
                "sentinel:// or redis+socket://"]
    if "," in rest.split("/", 1)[0] and scheme == "sentinel":
        return ["lists sentinels with ',': separate whole URLs with ';' "
                "(sentinel://:<password>@h1:26379/1;sentinel://:<password>@h2:26379/1)"]
    netloc_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:netloc_end], rest[netloc_end:]
    if "@" in tail:
        return ["has a password containing '/', '?' or '#' that is not percent-encoded, so the host, port "
                "and db are read from inside the password. Encode those characters (%2F, %3F, %23), "
                "e.g. with urllib.parse.quote(password, safe='')"]
    problems = []
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" not in userinfo:
        problems.append("has no ':' before the password, so Redis reads it as a user name and sends no "
                        f"password (NOAUTH/WRONGPASS). Write {SHAPE}, with the ':' after '//'")
    host, colon, port = hostport, "", ""
    if hostport.startswith("["):  # IPv6 literal
        end = hostport.find("]")
        host, port = hostport[:end + 1], hostport[end + 2:] if hostport[end + 1:end + 2] == ":" else ""
        colon = ":" if port else ""
    elif ":" in hostport:
        host, colon, port = hostport.rpartition(":")
    if colon and not port.isdigit():
        problems.append(f"has the port {port[:20]!r}, which is not a number (e.g. :6379)")
    elif port and not 1 <= int(port) <= 65535:
        problems.append(f"has the port {port}, outside 1..65535")
    if ":" in host and not host.startswith("["):
        problems.append("has more than one ':' after the '@' (host:port expected)")
    db = urlsplit("x://h" + tail).path.strip()
    if db not in ("", "/"):
        number = db[1:]
        if not number.isdigit():
            problems.append(f"has the database {number[:20]!r}: the path after the port must be the db "
                            "number, an integer such as /1")
        elif int(number) > 15:
            problems.append(f"uses db {int(number)}; a default Redis has 16 databases (0-15), "
                            "so SELECT fails unless `databases` is raised in redis.conf")
    return problems


@dataclass
class Target:
    """Where one source (an env file line, the environment, devstack's config) sends the app."""

    label: str  # "CELERY_BROKER_URL in .env": never the value
    host: str
    port: int
    password: str | None
    effective: bool  # reaches the processes devstack starts (not overridden by its wiring)
    db: int = 0


def _url_target(label: str, url: str, effective: bool) -> Target | None:
    """Host/port/password of a well-formed redis:// URL (the first sentinel of a list); else None."""
    if broker_url_problems(url):
        return None
    s = urlsplit(url.strip().split(";")[0])
    if s.scheme not in _TCP_SCHEMES:
        return None
    default_port = 26379 if s.scheme == "sentinel" else 6379
    db = s.path.strip("/")
    return Target(label, s.hostname or "127.0.0.1", s.port or default_port,
                  unquote(s.password) if s.password is not None else None, effective,
                  int(db) if db.isdigit() else 0)


# ---------------------------------------------------------------------------------------------
# what devstack expects, gathered without side effects
# ---------------------------------------------------------------------------------------------


@dataclass
class Context:
    """The configured stack, as doctor sees it: config, env layers, the Redis devstack expects."""

    config: object
    environ: dict[str, str]
    env_file: Path | None = None
    file_vars: dict[str, str] = field(default_factory=dict)
    file_error: str | None = None
    endpoint: object | None = None  # RedisEndpoint
    endpoint_error: str | None = None
    sentinel_error: str | None = None  # behind sentinels: why none of them named the master
    password_source: str = ""
    worker_env: dict[str, str] = field(default_factory=dict)
    timeout: float = 1.0
    inotify_limit_path: Path = INOTIFY_LIMIT
    _probes: dict = field(default_factory=dict)

    @property
    def file_label(self) -> str:
        return self.env_file.name if self.env_file else "the env file"

    @property
    def broker_url(self) -> str | None:
        if self.endpoint is None:
            return None
        url = self.worker_env.get("CELERY_BROKER_URL")
        if not url or url.startswith("sentinel://"):  # devstack reads the queues on the master itself
            return self.endpoint.direct_url(1)
        return url

    def layers(self) -> list[tuple[str, dict[str, str], bool]]:
        """(where, variables, reaches devstack's processes?) for each place app settings come from."""
        cfg = self.config
        return [(f"in {self.file_label}", self.file_vars, False),
                ("in the environment", self.environ, False),
                ("in [env]", dict(cfg.env), True),
                ("in [worker] env", dict(cfg.worker.env), True)]

    def secrets(self) -> set[str]:
        found: set[str] = set()
        if self.endpoint is not None and self.endpoint.password:
            found.add(self.endpoint.password)
        if self.config.redis.password:
            found.add(self.config.redis.password)
        for _where, env, _eff in self.layers():
            for key, value in env.items():
                if not any(word in key.upper() for word in ("REDIS", "CELERY", "BROKER")):
                    continue  # masking every *_PASSWORD of the shell would also hit short, common strings
                if key.endswith("PASSWORD") and value:
                    found.add(value)
                elif "://" in str(value):
                    for part in str(value).split(";"):
                        try:
                            pw = urlsplit(part.strip()).password
                        except ValueError:
                            pw = None
                        if pw:
                            found |= {pw, unquote(pw)}
        # A secret of one or two characters would turn every such character of the report into ***;
        # doctor never prints a password anyway, URLs are masked by shape.
        return {s for s in found | {quote(s, safe="") for s in found} if len(s) >= 3}

    def probe(self, host: str, port: int, password: str | None) -> str:
        """"ok" or describe_redis_error()'s words for a PING with this password (cached)."""
        key = (host, port, password)
        if key not in self._probes:
            self._probes[key] = _ping(host, port, password, self.timeout)
        return self._probes[key]


def build_context(config, environ: dict[str, str] | None = None, *, timeout: float = 1.0) -> Context:
    from .config import ConfigError
    from .envfile import compose_env
    from .errors import DevstackError

    ctx = Context(config, dict(os.environ if environ is None else environ), timeout=timeout)
    env_file = config.project.env_file
    if env_file:
        ctx.env_file = Path(env_file)
        try:
            ctx.file_vars.update(resolve_env_file(parse_env_file(ctx.env_file), ctx.environ))
        except ConfigError as exc:
            ctx.file_error = str(exc)
    try:
        ctx.endpoint, ctx.password_source = expected_endpoint(config, {**ctx.file_vars, **ctx.environ},
                                                              ctx.environ)
    except DevstackError as exc:
        ctx.endpoint_error = exc.message
    if ctx.endpoint is not None and ctx.endpoint.is_sentinel:  # where is the master? ask the sentinels
        import asyncio

        from .probes import SentinelProbe

        probe = SentinelProbe(ctx.endpoint)
        ctx.endpoint.master = asyncio.run(probe.ask_sentinels())
        ctx.sentinel_error = probe.last_error if ctx.endpoint.master is None else None
    if ctx.endpoint is not None:
        ctx.worker_env = compose_env(environ=ctx.environ, env_file=ctx.file_vars, wiring=ctx.endpoint.wiring(),
                                     global_env=config.env, service_env=config.worker.env)
    return ctx


def expected_endpoint(config, env: dict[str, str], environ: dict[str, str]):
    """The RedisEndpoint `devstack up` would use and where its password comes from; touches nothing.

    Mirrors redis_server.plan_redis / load_or_create_password without writing files or taking ports.
    """
    from .redis_server import RedisEndpoint, external_endpoint, resolve_mode

    cfg = config.redis
    mode, _binary = resolve_mode(cfg)
    if mode == "external":
        return external_endpoint(cfg), "[redis] url"
    stored = Path(config.project.state_dir) / "redis.password"
    if cfg.password:
        password, source = cfg.password, "[redis] password"
    elif environ.get("REDIS_PASSWORD") or env.get("REDIS_PASSWORD"):
        password = environ.get("REDIS_PASSWORD") or env.get("REDIS_PASSWORD")
        source = "REDIS_PASSWORD " + ("in the environment" if environ.get("REDIS_PASSWORD") else "in the env file")
    elif stored.exists():
        password, source = stored.read_text().strip(), f"the stored password ({stored})"
    else:
        password, source = None, "a random password generated at the first `devstack up`"
    return RedisEndpoint(mode, "127.0.0.1", cfg.port, password), source


def _ping(host: str, port: int, password: str | None, timeout: float) -> str:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from .broker import describe_redis_error

    # redis-py retries a refused connection with backoff by default: seconds of waiting for one answer.
    client = redis.Redis(host=host, port=port, password=password, socket_connect_timeout=timeout,
                         socket_timeout=timeout + 1, retry=Retry(NoBackoff(), 0))
    try:
        client.ping()
        return "ok"
    except (redis.exceptions.RedisError, OSError) as exc:
        return describe_redis_error(exc)
    finally:
        client.close()


def _listening(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def listener(port: int) -> str:
    """'redis-server (pid 123)' for the process listening on ``port``; its name only (argv may hold secrets)."""
    try:
        import psutil

        for conn in psutil.net_connections("inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
    except Exception:  # AccessDenied on macOS without root, a process gone meanwhile
        pass
    return "a process devstack cannot name (another user's, or inside a container)"


def _same_place(a: Target, host: str, port: int) -> bool:
    local = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
    return a.port == port and (a.host == host or (a.host in local and host in local))


# ---------------------------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------------------------


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
        from .state import running_pid

        if not _listening(ep.host, ep.port):
            return Check("redis", OK, f"{expects}: not running now, and the port is free, so `devstack up` "
                                      f"can start it. {app}")
        if not running_pid(Path(ctx.config.project.state_dir)):
            return Check("redis", FAIL, f"{expects}, but port {ep.port} is taken by {listener(ep.port)} while "
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


def _targets(ctx: Context) -> list[Target]:
    ep = ctx.endpoint
    out = [Target(f"devstack's own ({ctx.password_source})", ep.host, ep.port, ep.password, True)]
    for where, env, effective in ctx.layers():
        if "REDIS_PASSWORD" in env:
            host = env.get("REDIS_HOST") or ep.host
            port = int(env["REDIS_PORT"]) if env.get("REDIS_PORT", "").isdigit() else ep.port
            out.append(Target(f"REDIS_PASSWORD {where}", host, port, env["REDIS_PASSWORD"] or None, effective))
        if env.get("CELERY_BROKER_URL"):
            t = _url_target(f"CELERY_BROKER_URL {where}", env["CELERY_BROKER_URL"], effective)
            if t is not None:
                out.append(t)
    return out


def check_passwords(ctx: Context) -> Check:
    """Every password source against what the Redis it points to requires."""
    if ctx.endpoint is None or ctx.endpoint.url_override and ctx.endpoint.url_override.startswith("sentinel"):
        return Check("passwords", OK, "not checked (no Redis planned, or a sentinel setup)")
    ep = ctx.endpoint
    if ep.mode != "external" and ep.password is None:
        return Check("passwords", OK, "nothing to compare yet: devstack generates the Redis password at the "
                                      "first `devstack up` and gives it to the app")
    wrong, unreachable, checked = [], [], 0
    for t in _targets(ctx):
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
    import redis

    url = ctx.broker_url
    if not url or broker_url_problems(url) or not url.startswith(("redis://", "rediss://")):
        return None
    kwargs = ctx.endpoint.connect_kwargs()
    if ctx.probe(kwargs["host"], kwargs["port"], ctx.endpoint.password) != "ok":
        return None
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(url, socket_connect_timeout=ctx.timeout, socket_timeout=ctx.timeout + 2,
                                retry=Retry(NoBackoff(), 0))


def check_pending(ctx: Context) -> Check:
    """Messages waiting in a queue that no running worker consumes stay PENDING forever."""
    from .broker import QueueInspector, active_queues

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
    names = set(WATCH_SKIP)
    for svc in (config.api, config.worker, config.beat, *config.process.values()):
        names.update(Path(p).name for p in svc.watch_ignore)
    return names


def count_watched_dirs(root: Path, ignore: set[str], stop_at: int) -> int:
    """Folders under root (root included) a recursive watcher would register, stopping past stop_at."""
    count = 0
    for _dir, dirs, _files in os.walk(root):
        count += 1
        if count > stop_at:
            break
        dirs[:] = [d for d in dirs if d not in ignore and not d.endswith(".egg-info")]
    return count


def check_inotify(ctx: Context) -> Check:
    if not ctx.config.reload.enabled or ctx.config.reload.polling:
        return Check("inotify", OK, "not used (reload disabled or polling)")
    try:
        limit = int(ctx.inotify_limit_path.read_text().strip())
    except (OSError, ValueError):
        return Check("inotify", OK, "no inotify watch limit on this system")
    root = Path(ctx.config.root)
    dirs = count_watched_dirs(root, _watch_ignores(ctx.config), limit)
    fix = ("raise it: `echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/60-inotify.conf && "
           "sudo sysctl --system`, or add big folders to watch_ignore, or set [reload] polling = true")
    if dirs > limit:
        return Check("inotify", FAIL, f"{root} has more than {limit} folders to watch, above "
                                      f"fs.inotify.max_user_watches = {limit}: hot reload cannot watch them all", fix)
    if dirs > limit // 2:
        return Check("inotify", WARN, f"{root} has {dirs} folders to watch and fs.inotify.max_user_watches is "
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
    from .broker import QueueInspector

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
    check_inotify, check_events, check_visibility_timeout)


def run_doctor(config, environ: dict[str, str] | None = None, *, timeout: float = 1.0,
               checks: Iterable[Callable[[Context], Check]] = CHECKS,
               inotify_limit_path: Path | None = None) -> tuple[list[Check], set[str]]:
    """Every check against the configured stack; returns the checks and the secrets to mask on output."""
    ctx = build_context(config, environ, timeout=timeout)
    if inotify_limit_path is not None:
        ctx.inotify_limit_path = inotify_limit_path
    results = []
    for check in checks:
        try:
            results.append(check(ctx))
        except Exception as exc:  # one broken check must not hide the others' answers
            results.append(Check(check.__name__.removeprefix("check_").replace("_", " "), WARN,
                                 f"this check could not run ({type(exc).__name__})",
                                 "report it with `devstack --version` and the lines above"))
    secrets = ctx.secrets()
    return [Check(c.name, c.level, mask(c.message, secrets), mask(c.fix, secrets)) for c in results], secrets


def format_report(checks: list[Check], secrets: Iterable[str] = ()) -> str:
    lines = []
    for c in checks:
        lines.append(mask(f"{c.level:<4} {c.name}: {c.message}", secrets))
        if c.fix and c.level != OK:
            lines.append(mask(f"     fix: {c.fix}", secrets))
    fails = sum(c.level == FAIL for c in checks)
    warns = sum(c.level == WARN for c in checks)
    lines.append(f"{fails} failed, {warns} warning(s), {len(checks) - fails - warns} ok")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# log-line detectors
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnosis:
    """What a log line means and how to fix it; ``key`` identifies it for de-duplication."""

    key: str
    text: str


_HOSTPORT = re.compile(r"connecting to ([\w.\-\[\]:]+?):(\d+)")
_CANNOT_CONNECT = re.compile(r"Cannot connect to ((?:redis|rediss|sentinel)://\S+?)(?::? Error|: |\.?\s*$)")
_UNREGISTERED = re.compile(r"Received unregistered task of type '?([^'\s.]+(?:\.[^'\s]+)*)'?")
_NO_MODULE = re.compile(r"(?:ModuleNotFoundError: No module named|ImportError: cannot import name) '([^']+)'")
_PORT_IN_USE = re.compile(r"[Pp]ort (\d+) is in use|bind.*?:(\d+).*Address already in use")
DOCTOR = "Run `devstack doctor` for details."


def _refused(line: str) -> Diagnosis | None:
    low = line.lower()
    if "error 111 connecting to" not in low and not ("connection refused" in low and re.search("redis|kombu", low)) \
            and "cannot connect to redis" not in low:
        return None
    m = _HOSTPORT.search(line)
    where = f" at {m.group(1)}:{m.group(2)}" if m else ""
    if not m:
        c = _CANNOT_CONNECT.search(line)
        where = f" at {mask(c.group(1))}" if c else ""
    return Diagnosis("redis-refused", f"Redis{where} refused the connection (Error 111): nothing listens there. "
                                      "Fix: check that the Redis service runs and that CELERY_BROKER_URL / "
                                      f"REDIS_HOST / REDIS_PORT point to devstack's Redis. {DOCTOR}")


def _noauth(line: str) -> Diagnosis | None:
    if "NOAUTH" not in line and "Authentication required" not in line:
        return None
    return Diagnosis("redis-noauth", "Redis requires a password but this process sent none (NOAUTH). Fix: set "
                                     f"REDIS_PASSWORD, and CELERY_BROKER_URL as {SHAPE} "
                                     f"(mind the ':' before the password). {DOCTOR}")


def _wrongpass(line: str) -> Diagnosis | None:
    if "WRONGPASS" not in line and "invalid username-password pair" not in line:
        return None
    return Diagnosis("redis-wrongpass", "the Redis password this process sent is wrong (WRONGPASS). Fix: make "
                                        "REDIS_PASSWORD and the password in CELERY_BROKER_URL match the Redis's "
                                        f"(check the env file and [env]). {DOCTOR}")


def _operational(line: str) -> Diagnosis | None:
    if "kombu.exceptions.OperationalError" not in line:
        return None
    return Diagnosis("kombu-operational", "Celery could not talk to its broker (kombu OperationalError). Fix: "
                                          f"check that Redis runs and that CELERY_BROKER_URL has the shape {SHAPE}. "
                                          f"{DOCTOR}")


def _unregistered(line: str) -> Diagnosis | None:
    m = _UNREGISTERED.search(line)
    if not m:
        return None
    return Diagnosis(f"unregistered:{m.group(1)}",
                     f"the worker received task {m.group(1)!r} but does not know it. Fix: make the worker import "
                     "the module that defines it (Celery(include=[...]) or autodiscover_tasks), and check that "
                     "the name the sender uses matches @task(name=...); then restart the worker.")


def _import_error(line: str) -> Diagnosis | None:
    m = _NO_MODULE.search(line)
    if m:
        what = m.group(1)
        return Diagnosis(f"import:{what}", f"the app failed to import: {line.strip()[:160]}. Fix: install the "
                         f"missing package ({what.split('.')[0]}) in the environment devstack runs the app with, "
                         "or correct the module path in [api] app / [worker] app and the service's cwd.")
    if "Unable to load celery application" in line or re.search(r"Could not import '[^']+'", line):
        return Diagnosis("import:app", f"the app could not be loaded: {line.strip()[:160].rstrip('.')}. Fix: check "
                                       "[api] app / [worker] app (module:attribute) and the service's cwd.")
    return None


def _port_in_use(line: str) -> Diagnosis | None:
    if "Address already in use" not in line and not re.search(r"[Pp]ort \d+ is in use", line):
        return None
    m = _PORT_IN_USE.search(line)
    port = next((g for g in m.groups() if g), None) if m else None
    which = f"port {port}" if port else "its port"
    return Diagnosis("port-in-use", f"{which} is already in use by another process. Fix: stop that process "
                                    "(`lsof -i :PORT` shows it), or set a free port for this service in devstack.toml.")


DETECTORS: tuple[Callable[[str], Diagnosis | None], ...] = (
    _wrongpass, _noauth, _refused, _operational, _unregistered, _import_error, _port_in_use)
_PREFILTER = re.compile(r"Error 111|refused|NOAUTH|Authentication required|WRONGPASS|username-password|"
                        r"OperationalError|Cannot connect|unregistered task|ModuleNotFoundError|ImportError|"
                        r"Unable to load celery|Could not import|already in use|is in use")
# Case-sensitive on purpose: this runs on every log line, and re.I made it ~15x slower (16 µs a line),
# the largest cost of log ingestion. The phrases are matched as the libraries print them.


def diagnose_line(line: str) -> Diagnosis | None:
    """The diagnosis for one log line, or None. The most specific detector wins; passwords are masked."""
    if not _PREFILTER.search(line):
        return None
    for detect in DETECTORS:
        found = detect(line)
        if found is not None:
            return Diagnosis(found.key, mask(found.text))
    return None


class LogDiagnoser:
    """Bus subscriber: one notice per distinct diagnosis per service, so a reconnect loop is one message."""

    def __init__(self, notify: Callable[[str, str, str | None], None]):
        self.notify = notify
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, event) -> None:
        from .events import LogLine

        if not isinstance(event, LogLine):
            return
        found = diagnose_line(event.text)
        if found is None or (event.service, found.key) in self.seen:
            return
        self.seen.add((event.service, found.key))
        service = event.service
        key = f"[{service}] app" if service in ("api", "worker", "beat") else f"[process.{service}] command"
        text = found.text.replace("[api] app / [worker] app", key).replace("[api] app /[worker] app", key)
        self.notify(f"{service}: {text}", "warning", service)
