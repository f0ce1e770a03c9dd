"""The typed tables of the configuration: one pydantic model per TOML table, and the names they allow.

Models validate a single table; rules spanning several tables live in :mod:`.rules`.
"""
from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ..locate import default_state_dir

__all__ = [
    "Config",
    "ProjectConfig",
    "RedisConfig",
    "ServiceConfig",
    "AppServiceConfig",
    "ApiConfig",
    "WorkerConfig",
    "BeatConfig",
    "ProcessConfig",
    "ReloadConfig",
    "TasksConfig",
    "BUILTIN_SERVICES",
    "RESERVED_NAMES",
    "TABLES",
    "PROCESS_NAME_RE",
    "LOGLEVELS",
    "REDIS_URL_SCHEMES",
    "SECRET_KEYS",
]

BUILTIN_SERVICES = ("redis", "api", "worker", "beat")
RESERVED_NAMES = frozenset(BUILTIN_SERVICES) | {"devstack", "all"}
TABLES = ("project", "redis", "api", "worker", "beat", "env", "process", "reload", "tasks")
PROCESS_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
LOGLEVELS = ("debug", "info", "warning", "error", "critical")
REDIS_URL_SCHEMES = ("redis://", "rediss://", "unix://", "sentinel://")
SECRET_KEYS = frozenset({"password"})


# --------------------------------------------------------------------------------------------
# helpers used by validators
# --------------------------------------------------------------------------------------------


def _root(info: ValidationInfo) -> Path:
    ctx = info.context or {}
    root = ctx.get("root")
    return Path(root) if root is not None else Path.cwd()


def _resolved(v: Path | None, info: ValidationInfo) -> Path | None:
    """A path from the file, absolute: relative ones are taken from the config file's folder."""
    return None if v is None else (_root(info) / v.expanduser()).resolve()


def _split_command(value: Any) -> Any:
    """A string is shlex-split into a list; anything else is passed on for normal validation."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:  # unbalanced quotes
            raise ValueError(f"cannot split {json.dumps(value)} into arguments ({exc}). Fix: balance the quotes or write a list of strings") from None
    return value


def _env_values(value: Any) -> Any:
    """``[env]`` tables: strings stay, ints/floats/bools become strings, anything else is an error."""
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    for k, v in value.items():
        if isinstance(v, bool):
            out[k] = "true" if v else "false"
        elif isinstance(v, (int, float)):
            out[k] = str(v)
        else:
            out[k] = v  # strings pass; tables/lists fail with a precise location
    return out


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------


class _Table(BaseModel):
    # strict: TOML values are typed, so "yes" is not silently a bool nor "8080" an int
    model_config = ConfigDict(extra="forbid", strict=True)


class ProjectConfig(_Table):
    """``[project]``: name, env file and where devstack keeps its state (pids, logs, Redis data)."""

    name: str | None = None
    env_file: Path | None = Field(None, strict=False)
    state_dir: Path | None = Field(None, strict=False)
    crash_limit: int = Field(5, ge=1)
    python: Path | None = Field(None, strict=False)  # the app's interpreter, or its virtualenv folder

    @field_validator("python")
    @classmethod
    def _python(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        if v is None:
            return None
        # absolute, symlinks kept: a venv's bin/python links out of the venv, and the venv is the point
        p = Path(os.path.abspath(_root(info) / v.expanduser()))
        if p.is_dir():
            found = next((p / "bin" / n for n in ("python", "python3") if (p / "bin" / n).exists()), None)
            if found is None:
                raise ValueError(f"the folder {str(p)!r} has no bin/python, so it is not a virtualenv. Fix: point "
                                 "python at the app's interpreter (e.g. \".venv/bin/python\") or its venv folder")
            return found
        if not os.access(p, os.X_OK) or not p.is_file():
            raise ValueError(f"{str(p)!r} is not an executable Python. Fix: create the app's venv "
                             "(python3 -m venv .venv), or point python at an existing interpreter")
        return p

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError('must not be empty. Fix: write name = "myproject" or remove the key')
        return v

    @field_validator("env_file", mode="before")
    @classmethod
    def _env_file_before(cls, v: Any) -> Any:
        return None if v == "" else v

    @field_validator("env_file")
    @classmethod
    def _env_file(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        p = _resolved(v, info)
        if p is not None and not p.is_file():
            raise ValueError(
                f"the file {str(p)!r} does not exist. Fix: create it, point env_file at an existing "
                'file, or write env_file = "" to use no env file'
            )
        return p

    @field_validator("state_dir")
    @classmethod
    def _state_dir(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        return _resolved(v, info)

    @model_validator(mode="after")
    def _defaults(self, info: ValidationInfo) -> ProjectConfig:
        root = _root(info)
        if self.name is None:
            self.name = root.resolve().name or "devstack"
        if "env_file" not in self.model_fields_set:
            dotenv = root / ".env"
            self.env_file = dotenv.resolve() if dotenv.is_file() else None
        if self.state_dir is None:
            self.state_dir = Path(default_state_dir(root))
        return self


class RedisConfig(_Table):
    """``[redis]``: how Redis is provided. ``password`` is never shown in repr or errors."""

    mode: Literal["auto", "embedded", "binary", "docker", "external"] = "auto"
    port: int = Field(6379, ge=1, le=65535)
    password: str | None = Field(None, repr=False)
    image: str = "redis:6-alpine"
    url: str | None = Field(None, repr=False)  # may embed credentials
    master_name: str | None = None
    binary: str | None = None
    persist: bool = True
    # what devstack launches (or, with mode = "external", what it attaches to): see devstack/topology/
    topology: Literal["standalone", "sentinel", "cluster"] = "standalone"
    sentinel_port: int = Field(26379, ge=1, le=65535)  # the first of the three sentinels' ports
    cluster_port: int = Field(7000, ge=1, le=55530)  # the first node's; each node's bus port is its port + 10000
    replicas: int = Field(0, ge=0, le=1)  # cluster: one replica per master with 1
    cluster_nodes: list[str] = []  # mode = "external", topology = "cluster": "host:port" of each node

    @field_validator("cluster_nodes")
    @classmethod
    def _cluster_nodes(cls, v: list[str]) -> list[str]:
        for node in v:
            host, _, port = node.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f'{node!r} is not "host:port". Fix: write e.g. cluster_nodes = ["10.0.0.1:7000"]')
        return v

    @field_validator("password")
    @classmethod
    def _password(cls, v: str | None) -> str | None:
        return v or None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        parts = [p.strip() for p in v.split(";") if p.strip()]
        if not parts or not all(p.startswith(REDIS_URL_SCHEMES) for p in parts):
            raise ValueError(
                "must start with redis://, rediss://, unix:// or sentinel:// (several sentinels are "
                'separated by ";"). Fix: write e.g. url = "redis://localhost:6379/0"'
            )
        if len(parts) > 1 and not all(p.startswith("sentinel://") for p in parts):
            raise ValueError(
                'only sentinel:// URLs can be combined with ";". Fix: give a single redis:// URL, or '
                'list only sentinels: url = "sentinel://h1:26379;sentinel://h2:26379"'
            )
        return ";".join(parts)

    @property
    def is_sentinel(self) -> bool:
        return bool(self.url and self.url.startswith("sentinel://"))

    def __repr_args__(self):  # never leak the password, even via a future field change
        for k, v in super().__repr_args__():
            if k in SECRET_KEYS:
                continue
            yield k, v
        if self.password:
            yield "password", "***"


class ServiceConfig(_Table):
    """Fields shared by ``[api]``, ``[worker]``, ``[beat]`` and ``[process.<name>]``."""

    enabled: bool = True
    cwd: Path | None = Field(None, strict=False)
    env: dict[str, str] = Field(default_factory=dict)
    args: list[str] = Field(default_factory=list)
    stop_timeout: float = Field(5.0, gt=0)
    watch: list[str] | None = None
    watch_ignore: list[str] = Field(default_factory=list)
    watch_extensions: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=lambda: ["redis"])

    _split_args = field_validator("args", mode="before")(classmethod(lambda cls, v: _split_command(v)))

    @field_validator("depends_on", mode="before")
    @classmethod
    def _deps(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [d.strip() for d in v.split(",") if d.strip()]
        return v
    _env_vals = field_validator("env", mode="before")(classmethod(lambda cls, v: _env_values(v)))

    @field_validator("watch", "watch_ignore", "watch_extensions", mode="before")
    @classmethod
    def _one_string(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("watch_extensions")
    @classmethod
    def _dot(cls, v: list[str]) -> list[str]:
        return [e if e.startswith(".") else f".{e}" for e in v]

    @field_validator("cwd")
    @classmethod
    def _cwd(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        p = _resolved(v, info)
        if p is not None and not p.is_dir():
            raise ValueError(
                f"the folder {str(p)!r} does not exist (paths are relative to the config file's folder). "
                "Fix: create it or correct the path"
            )
        return p

    @model_validator(mode="after")
    def _default_cwd(self, info: ValidationInfo):
        if self.cwd is None:
            self.cwd = _root(info).resolve()
        return self


class AppServiceConfig(ServiceConfig):
    """Fields of the Python services devstack runs itself (``[api]``, ``[worker]``, ``[beat]``)."""

    preload_exclude: list[str] = Field(default_factory=list)  # modules (and their submodules) a spare never imports
    collector_off_at_start: bool = True  # imports and start-up without the cyclic collector until imports settle

    @field_validator("preload_exclude", mode="before")
    @classmethod
    def _one_module(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class ApiConfig(AppServiceConfig):
    """``[api]``: the Flask API (``flask --app APP run``) or any ``command``."""

    app: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(5000, ge=1, le=65535)
    command: list[str] | None = None
    ready_path: str = "/"
    stop_timeout: float = Field(5.0, gt=0)

    _split_cmd = field_validator("command", mode="before")(classmethod(lambda cls, v: _split_command(v)))

    @field_validator("ready_path")
    @classmethod
    def _ready_path(cls, v: str) -> str:
        return v if v.startswith("/") else "/" + v


def _loglevel(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


class WorkerConfig(AppServiceConfig):
    """``[worker]``: the Celery worker (``celery -A APP worker``) or any ``command``."""

    app: str | None = None
    pool: Literal["prefork", "solo", "gevent", "eventlet", "threads"] = "prefork"
    concurrency: int | None = Field(None, ge=1)
    queues: list[str] = Field(default_factory=list)
    loglevel: Literal["debug", "info", "warning", "error", "critical"] = "info"
    fast_start: bool = True
    freeze_before_fork: bool = True
    events: bool = True
    name: str = "worker"
    command: list[str] | None = None
    stop_timeout: float = Field(30.0, gt=0)
    auto_requeue: bool = True

    _split_cmd = field_validator("command", mode="before")(classmethod(lambda cls, v: _split_command(v)))
    _lower = field_validator("loglevel", mode="before")(classmethod(lambda cls, v: _loglevel(v)))

    @field_validator("queues", mode="before")
    @classmethod
    def _queues(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [q.strip() for q in v.split(",") if q.strip()]
        return v


class BeatConfig(AppServiceConfig):
    """``[beat]``: Celery beat. ``app`` defaults to ``[worker] app``; enabled when an app is known."""

    enabled: bool | None = None  # type: ignore[assignment]  # None = decided by parse_config
    app: str | None = None
    loglevel: Literal["debug", "info", "warning", "error", "critical"] = "info"
    command: list[str] | None = None
    stop_timeout: float = Field(5.0, gt=0)

    _split_cmd = field_validator("command", mode="before")(classmethod(lambda cls, v: _split_command(v)))
    _lower = field_validator("loglevel", mode="before")(classmethod(lambda cls, v: _loglevel(v)))


class ProcessConfig(ServiceConfig):
    """``[process.<name>]``: any extra long-running command (a frontend dev server, flower, ...)."""

    command: list[str]
    oneshot: bool = False  # a setup step (migrations): runs once; dependents start after it exited 0
    ready_http: str | None = None
    ready_log: str | None = None
    stop_timeout: float = Field(5.0, gt=0)

    _split_cmd = field_validator("command", mode="before")(classmethod(lambda cls, v: _split_command(v)))

    @field_validator("command")
    @classmethod
    def _nonempty(cls, v: list[str]) -> list[str]:
        if not v or not v[0].strip():
            raise ValueError('must not be empty. Fix: write e.g. command = "npm run dev"')
        return v

    @field_validator("ready_http")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError('must be an http:// URL. Fix: write e.g. ready_http = "http://127.0.0.1:3000/"')
        return v

    @field_validator("ready_log")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(
                    f"is not a valid Python regular expression ({exc}). Fix: correct the pattern; in TOML "
                    "use a literal string ('...') so backslashes are kept"
                ) from None
        return v


class ReloadConfig(_Table):
    """``[reload]``: hot reload on file changes."""

    enabled: bool = True
    debounce_ms: int = Field(150, ge=0)
    polling: bool = False
    storm_limit: int = Field(10, ge=1)
    preload: bool = True


class TasksConfig(_Table):
    """``[tasks]``: the task history kept in ``.devstack/tasks.sqlite3``."""

    keep: int = Field(10_000, ge=1)


class Config(_Table):
    """The whole, validated configuration. Build it with :func:`load_config` or :func:`parse_config`."""

    root: Path = Field(strict=False)
    path: Path | None = Field(None, strict=False)
    source: Literal["devstack.toml", "pyproject.toml", "demo"] = "devstack.toml"
    project: ProjectConfig
    redis: RedisConfig
    api: ApiConfig
    worker: WorkerConfig
    beat: BeatConfig
    env: dict[str, str] = Field(default_factory=dict)
    process: dict[str, ProcessConfig] = Field(default_factory=dict)
    reload: ReloadConfig
    tasks: TasksConfig = Field(default_factory=TasksConfig)

    _env_vals = field_validator("env", mode="before")(classmethod(lambda cls, v: _env_values(v)))

    @property
    def is_demo(self) -> bool:
        return self.source == "demo"

    @property
    def state_dir(self) -> Path:
        assert self.project.state_dir is not None
        return self.project.state_dir

    def services(self) -> list[str]:
        """Enabled service names in start order: redis, api, worker, beat (enabled ones), processes."""
        names = ["redis"]
        for name in ("api", "worker", "beat"):
            if getattr(self, name).enabled:
                names.append(name)
        names.extend(n for n, p in self.process.items() if p.enabled)
        return names

    def service(self, name: str) -> ServiceConfig:
        """The config table of service ``name`` (api, worker, beat or a process name)."""
        if name in ("api", "worker", "beat"):
            return getattr(self, name)
        return self.process[name]
