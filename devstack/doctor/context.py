"""What `devstack doctor` checks against: the config, the env layers, the Redis devstack expects.

Gathered without side effects: no file written, no port taken, nothing started.
"""
from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import redis

from ..broker import describe_redis_error, fast_fail_client
from ..broker_url import TCP_SCHEMES, broker_url_problems
from ..app_specs import Interpreter
from ..config import ConfigError
from ..environment import interpreter, service_env
from ..envfile import parse_env_file, resolve_env_file
from ..errors import DevstackError
from ..probes import SentinelProbe
from ..redis_server import RedisEndpoint, external_endpoint, password_source, resolve_mode
from ..reload.inotify import LIMIT_FILES



@dataclass
class Target:
    """Where one source (an env file line, the environment, devstack's config) sends the app."""

    label: str  # "CELERY_BROKER_URL in .env": never the value
    host: str
    port: int
    password: str | None = field(repr=False)  # never in a repr (tracebacks with locals)
    effective: bool  # reaches the processes devstack starts (not overridden by its wiring)
    db: int = 0


def _url_target(label: str, url: str, effective: bool) -> Target | None:
    """Host/port/password of a well-formed redis:// URL (the first sentinel of a list); else None."""
    if broker_url_problems(url):
        return None
    s = urlsplit(url.strip().split(";")[0])
    if s.scheme not in TCP_SCHEMES:
        return None
    default_port = 26379 if s.scheme == "sentinel" else 6379
    db = s.path.strip("/")
    return Target(label, s.hostname or "127.0.0.1", s.port or default_port,
                  unquote(s.password) if s.password is not None else None, effective,
                  int(db) if db.isdigit() else 0)


@dataclass
class Context:
    """The configured stack, as doctor sees it: config, env layers, the Redis devstack expects."""

    config: object
    environ: dict[str, str]
    env_file: Path | None = None
    file_vars: dict[str, str] = field(default_factory=dict)
    file_raw: dict[str, str] = field(default_factory=dict)
    """The env file as written: `compose_env` interpolates it, as it does for `devstack up`."""
    file_error: str | None = None
    endpoint: RedisEndpoint | None = None
    endpoint_error: str | None = None
    sentinel_error: str | None = None  # behind sentinels: why none of them named the master
    password_source: str = ""
    worker_env: dict[str, str] = field(default_factory=dict)
    """The worker's environment as `devstack up` gives it: the app's interpreter activated."""
    interpreter: Interpreter | None = None  # the Python that runs the app, as `devstack up` chooses it
    timeout: float = 1.0
    inotify_limit_files: tuple[tuple[Path, str], ...] = LIMIT_FILES  # (file, sysctl name); tests give their own
    _probes: dict = field(default_factory=dict)

    @property
    def file_label(self) -> str:
        return self.env_file.name if self.env_file else "the env file"

    @property
    def broker_url(self) -> str | None:
        if self.endpoint is None:
            return None
        return self.endpoint.internal_broker_url(self.worker_env.get("CELERY_BROKER_URL"))

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

    def targets(self) -> list[Target]:
        """Every place that sends the app to a Redis with a password: devstack's own, then each layer's."""
        ep = self.endpoint
        out = [Target(f"devstack's own ({self.password_source})", ep.host, ep.port, ep.password, True)]
        for where, env, effective in self.layers():
            if "REDIS_PASSWORD" in env:
                host = env.get("REDIS_HOST") or ep.host
                port = int(env["REDIS_PORT"]) if env.get("REDIS_PORT", "").isdigit() else ep.port
                out.append(Target(f"REDIS_PASSWORD {where}", host, port, env["REDIS_PASSWORD"] or None, effective))
            if env.get("CELERY_BROKER_URL"):
                t = _url_target(f"CELERY_BROKER_URL {where}", env["CELERY_BROKER_URL"], effective)
                if t is not None:
                    out.append(t)
        return out


def build_context(config, environ: dict[str, str] | None = None, *, timeout: float = 1.0) -> Context:
    ctx = Context(config, dict(os.environ if environ is None else environ), timeout=timeout)
    env_file = config.project.env_file
    if env_file:
        ctx.env_file = Path(env_file)
        try:
            ctx.file_raw = parse_env_file(ctx.env_file)
            ctx.file_vars.update(resolve_env_file(ctx.file_raw, ctx.environ))
        except ConfigError as exc:
            ctx.file_error = str(exc)
    try:
        ctx.endpoint, ctx.password_source = expected_endpoint(config, ctx.file_vars, ctx.environ)
    except DevstackError as exc:
        ctx.endpoint_error = exc.message
    if ctx.endpoint is not None and ctx.endpoint.is_sentinel:  # where is the master? ask the sentinels
        probe = SentinelProbe(ctx.endpoint)
        ctx.endpoint.master = asyncio.run(probe.ask_sentinels())
        ctx.sentinel_error = probe.last_error if ctx.endpoint.master is None else None
    ctx.interpreter = interpreter(config, ctx.environ)
    if ctx.endpoint is not None:
        ctx.worker_env = service_env(config, "worker", ctx.endpoint, ctx.environ, ctx.file_raw)
    return ctx


def expected_endpoint(config, file_vars: dict[str, str], environ: dict[str, str]) -> tuple[RedisEndpoint, str]:
    """The RedisEndpoint `devstack up` would use and where its password comes from; touches nothing.

    Mirrors redis_server.plan_redis / load_or_create_password without writing files or taking ports.
    """
    cfg = config.redis
    mode, _binary = resolve_mode(cfg)
    if mode == "external":
        return external_endpoint(cfg), "[redis] url"
    password, source = password_source(cfg, environ.get("REDIS_PASSWORD"), file_vars.get("REDIS_PASSWORD"),
                                       Path(config.project.state_dir))
    return RedisEndpoint(mode, "127.0.0.1", cfg.port, password), source


def _ping(host: str, port: int, password: str | None, timeout: float) -> str:
    auth = f":{quote(password, safe='')}@" if password else ""
    netloc = f"[{host}]" if ":" in host else quote(host, safe="")  # redis-py unquotes the host again
    client = fast_fail_client(f"redis://{auth}{netloc}:{port}/0", timeout=timeout, socket_timeout=timeout + 1)
    try:
        client.ping()
        return "ok"
    except (redis.exceptions.RedisError, OSError) as exc:
        return describe_redis_error(exc)
    finally:
        client.close()
