"""Configuration: find, read and validate the devstack configuration.

Discovery order (the first match wins)::

    +---+-----------------------------------------------+--------------------------------------------+
    | # | Where                                         | Notes                                      |
    +===+===============================================+============================================+
    | 1 | ``--config PATH``                             | explicit; a missing file is an error       |
    +---+-----------------------------------------------+--------------------------------------------+
    | 2 | ``devstack.toml`` in the current folder,      | checked in each folder, walking up from    |
    | 3 | then ``pyproject.toml`` with a                | the current folder to ``/``; a             |
    |   | ``[tool.devstack]`` table                     | pyproject.toml without that table is       |
    |   |                                               | skipped                                    |
    +---+-----------------------------------------------+--------------------------------------------+
    | 4 | the bundled demo stack                        | ``devstack.demo.app:app`` (Flask) and      |
    |   |                                               | ``devstack.demo.app:celery`` (Celery),     |
    |   |                                               | state kept in ``<cwd>/.devstack``          |
    +---+-----------------------------------------------+--------------------------------------------+

Every path in the file is resolved relative to the folder that holds the config file (``root``).

Errors in the file are user errors: they raise :class:`ConfigError` (the CLI exits with code 2 and
prints ``str(error)``, never a traceback). Each message is one paragraph naming the file, the table
and key, what was wrong and how to fix it, e.g.::

    devstack.toml: [worker] concurency: unknown key. Did you mean "concurrency"? Valid keys: ...

The Redis password is never included in an error message or in ``repr(config)``.
"""
from __future__ import annotations

import difflib
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from .errors import DevstackError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = [
    "ConfigError",
    "Config",
    "ProjectConfig",
    "RedisConfig",
    "ServiceConfig",
    "ApiConfig",
    "WorkerConfig",
    "BeatConfig",
    "ProcessConfig",
    "ReloadConfig",
    "find_config",
    "load_config",
    "demo_config",
    "parse_config",
    "BUILTIN_SERVICES",
    "TABLES",
]

BUILTIN_SERVICES = ("redis", "api", "worker", "beat")
RESERVED_NAMES = frozenset(BUILTIN_SERVICES) | {"devstack", "all"}
TABLES = ("project", "redis", "api", "worker", "beat", "env", "process", "reload")
PROCESS_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
LOGLEVELS = ("debug", "info", "warning", "error", "critical")
REDIS_URL_SCHEMES = ("redis://", "rediss://", "unix://", "sentinel://")
SECRET_KEYS = frozenset({"password"})


class ConfigError(DevstackError):
    """A user error in the configuration. ``str(e)`` is a one-paragraph message naming file, key and fix.

    The CLI prints it and exits with :attr:`exit_code` (2), without a traceback.
    """

    def __init__(self, message: str, *, path: Path | None = None, key: str | None = None):
        super().__init__(message, 2)
        self.path = path
        self.key = key


# --------------------------------------------------------------------------------------------
# helpers used by validators
# --------------------------------------------------------------------------------------------


def _root(info: ValidationInfo) -> Path:
    ctx = info.context or {}
    root = ctx.get("root")
    return Path(root) if root is not None else Path.cwd()


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
        if v is None:
            return None
        p = (_root(info) / v.expanduser()).resolve()
        if not p.is_file():
            raise ValueError(
                f"the file {str(p)!r} does not exist. Fix: create it, point env_file at an existing "
                'file, or write env_file = "" to use no env file'
            )
        return p

    @field_validator("state_dir")
    @classmethod
    def _state_dir(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        if v is None:
            return None
        return (_root(info) / v.expanduser()).resolve()

    @model_validator(mode="after")
    def _defaults(self, info: ValidationInfo) -> ProjectConfig:
        root = _root(info)
        if self.name is None:
            self.name = root.resolve().name or "devstack"
        if "env_file" not in self.model_fields_set:
            dotenv = root / ".env"
            self.env_file = dotenv.resolve() if dotenv.is_file() else None
        if self.state_dir is None:
            self.state_dir = (root / ".devstack").resolve()
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

    _split_args = field_validator("args", mode="before")(classmethod(lambda cls, v: _split_command(v)))
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
        if v is None:
            return None
        p = (_root(info) / v.expanduser()).resolve()
        if not p.is_dir():
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


class ApiConfig(ServiceConfig):
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


class WorkerConfig(ServiceConfig):
    """``[worker]``: the Celery worker (``celery -A APP worker``) or any ``command``."""

    app: str | None = None
    pool: Literal["prefork", "solo", "gevent", "eventlet", "threads"] = "prefork"
    concurrency: int | None = Field(None, ge=1)
    queues: list[str] = Field(default_factory=list)
    loglevel: Literal["debug", "info", "warning", "error", "critical"] = "info"
    fast_start: bool = True
    events: bool = True
    name: str = "worker"
    command: list[str] | None = None
    stop_timeout: float = Field(30.0, gt=0)

    _split_cmd = field_validator("command", mode="before")(classmethod(lambda cls, v: _split_command(v)))
    _lower = field_validator("loglevel", mode="before")(classmethod(lambda cls, v: _loglevel(v)))

    @field_validator("queues", mode="before")
    @classmethod
    def _queues(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [q.strip() for q in v.split(",") if q.strip()]
        return v


class BeatConfig(ServiceConfig):
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
    depends_on: list[str] = Field(default_factory=lambda: ["redis"])
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

    @field_validator("depends_on", mode="before")
    @classmethod
    def _deps(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [d.strip() for d in v.split(",") if d.strip()]
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


# --------------------------------------------------------------------------------------------
# error formatting
# --------------------------------------------------------------------------------------------


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        s = "true" if v else "false"
    elif isinstance(v, dict):
        s = "a table"
    elif isinstance(v, (str, int, float, list)):
        try:
            s = json.dumps(v)
        except (TypeError, ValueError):
            s = repr(v)
    else:
        s = repr(v)
    return s if len(s) <= 80 else s[:77] + "..."


def _unwrap_optional(ann: Any) -> tuple[Any, bool]:
    origin = get_origin(ann)
    if origin is Union or (origin is not None and str(origin) == "types.UnionType") or type(ann).__name__ == "UnionType":
        args = [a for a in get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return ann, False


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _expected(model: type[BaseModel] | None, key: str | None) -> tuple[str, str | None]:
    """Human description of what ``key`` accepts, and an example value in TOML syntax."""
    if model is None or key is None or key not in model.model_fields:
        return "a valid value", None
    field = model.model_fields[key]
    ann, _ = _unwrap_optional(field.annotation)
    lo = hi = gt = None
    for m in field.metadata:
        lo = getattr(m, "ge", lo)
        hi = getattr(m, "le", hi)
        gt = getattr(m, "gt", gt)
    default = field.default if field.default is not None and not callable(field.default) else None
    origin = get_origin(ann)
    if origin is Literal:
        opts = get_args(ann)
        return "one of " + ", ".join(json.dumps(o) for o in opts), json.dumps(default if default is not None else opts[0])
    if ann is bool:
        return "true or false", "true" if default in (None, True) else "false"
    if ann is int:
        if lo is not None and hi is not None:
            desc = f"an integer between {lo} and {hi}"
        elif lo is not None:
            desc = f"an integer of at least {lo}"
        else:
            desc = "an integer"
        return desc, str(default if default is not None else (lo if lo is not None else 1))
    if ann is float:
        desc = "a number greater than 0" if gt == 0 else "a number"
        return desc, str(default if default is not None else 1)
    if ann is str:
        return "a string", json.dumps(default if default is not None else "...")
    if ann is Path:
        return "a path (a string)", '"..."'
    if origin is list:
        if key in ("command", "args"):
            return "a list of strings or a single command-line string", '["python", "-m", "app"]'
        if key in ("queues", "depends_on"):
            return "a list of strings or a comma-separated string", '["a", "b"]'
        return "a list of strings", '["..."]'
    if origin is dict:
        return "a table of string values", None
    return "a valid value", None


def _locate(loc: tuple[Any, ...]) -> tuple[type[BaseModel] | None, list[str], list[Any]]:
    """Split a pydantic error location into (model of the table, table path, key path)."""
    model: type[BaseModel] | None = Config
    table: list[str] = []
    i = 0
    while i < len(loc) and model is not None:
        name = loc[i]
        if not isinstance(name, str) or name not in model.model_fields:
            break
        ann, _ = _unwrap_optional(model.model_fields[name].annotation)
        if _is_model(ann):
            table.append(name)
            model = ann
            i += 1
            continue
        if get_origin(ann) is dict and _is_model(get_args(ann)[1]) and i + 1 < len(loc):
            table += [name, str(loc[i + 1])]
            model = get_args(ann)[1]
            i += 2
            continue
        break
    rest = list(loc[i:])
    if model is Config and rest:
        # a top-level table itself ([env] KEY, or "redis = 5")
        table = [str(rest[0])]
        rest = rest[1:]
        model = None
    return model, table, rest


class _Where:
    """Formats the 'file: [table] key:' prefix of messages."""

    def __init__(self, path: Path | None, source: str, cwd: Path):
        self.path = path
        self.source = source
        if path is None:
            self.file = "bundled demo config"
        else:
            try:
                self.file = str(path.resolve().relative_to(cwd.resolve()))
            except ValueError:
                self.file = str(path)

    def table(self, parts: list[str]) -> str:
        name = ".".join(parts)
        if self.source == "pyproject.toml":
            name = "tool.devstack" + ("." + name if name else "")
        return f"[{name}]" if name else "(top level)"

    def error(self, table: list[str], key: str | None, message: str) -> ConfigError:
        prefix = f"{self.file}: {self.table(table)}"
        if key:
            prefix += f" {key}"
        return ConfigError(f"{prefix}: {message}", path=self.path, key=key)


def _key_text(rest: list[Any]) -> str | None:
    if not rest:
        return None
    out = ""
    for part in rest:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _visible_fields(model: type[BaseModel]) -> list[str]:
    return [k for k in model.model_fields if not (model is Config and k in ("root", "path", "source"))]


def _translate(err: dict[str, Any], where: _Where) -> ConfigError:
    model, table, rest = _locate(tuple(err["loc"]))
    key = _key_text(rest)
    top_key = rest[0] if rest and isinstance(rest[0], str) else None
    secret = top_key in SECRET_KEYS
    typ = err["type"]
    raw = err.get("input")
    got = "a value (hidden)" if secret else _fmt_value(raw)
    if top_key == "url" and isinstance(raw, str):
        got = _fmt_value(re.sub(r"//[^@/]*@", "//***@", raw))

    if typ == "extra_forbidden" and model is not None and len(rest) == 1:
        valid = _visible_fields(model)
        close = difflib.get_close_matches(str(rest[0]), valid, n=1, cutoff=0.6)
        hint = f' Did you mean "{close[0]}"?' if close else ""
        return where.error(table, key, f"unknown key.{hint} Valid keys: {', '.join(valid)}. Fix: rename or remove it.")
    if typ == "missing":
        desc, example = _expected(model, top_key)
        ex = f" {top_key} = {example}" if example else ""
        return where.error(table, key, f"required key is missing. Fix: add{ex or ' it'} ({desc}).")
    if typ == "value_error":
        msg = str(err.get("msg", ""))
        msg = msg.removeprefix("Value error, ")
        if secret:
            msg = "invalid value"
        return where.error(table, key, msg if msg.endswith(".") else msg + ".")
    if typ in ("model_type", "model_attributes_type", "dict_type") and not rest:
        return where.error(table, None, f"expected a table, got {got}. Fix: write it as a [{'.'.join(table)}] table of key = value lines.")
    if model is None and table and table[0] == "env" or (model is not None and top_key == "env" and len(rest) >= 2):
        return where.error(table, key, f"expected a string, got {got}. Fix: write the value in quotes, e.g. {rest[-1]} = \"...\".")
    if len(rest) > 1 and isinstance(rest[1], int):
        return where.error(table, key, f"expected a string, got {got}. Fix: write every list item in quotes.")
    desc, example = _expected(model, top_key)
    fix = f"Fix: write {top_key} = {example}." if example and top_key else "Fix: correct the value."
    if typ == "literal_error" and isinstance(raw, str) and model is not None and top_key:
        ann, _ = _unwrap_optional(model.model_fields[top_key].annotation)
        close = difflib.get_close_matches(raw, [str(o) for o in get_args(ann)], n=1, cutoff=0.5)
        if close:
            fix = f'Did you mean "{close[0]}"? Fix: write {top_key} = "{close[0]}".'
    return where.error(table, key, f"expected {desc}, got {got}. {fix}")


def _raise_validation(exc: ValidationError, where: _Where) -> None:
    errors = exc.errors(include_url=False)
    first = _translate(errors[0], where)
    if len(errors) > 1:
        more = len(errors) - 1
        first = ConfigError(
            f"{first} ({more} more problem{'s' if more > 1 else ''} in this file; fix this one and run again.)",
            path=first.path,
            key=first.key,
        )
    raise first from None


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: the config file does not exist. Fix: check the path or create it.", path=path) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file. Fix: pass the path of a devstack.toml or pyproject.toml.", path=path) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc}). Fix: check its permissions.", path=path) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not valid UTF-8 text ({exc.reason} at byte {exc.start}). Fix: save the file as UTF-8.", path=path) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        where = f"line {m.group(1)}, column {m.group(2)}" if m else "somewhere in the file"
        reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", msg)
        if "end of document" in msg:
            where = "end of file"
        raise ConfigError(
            f"{path}: {where}: invalid TOML: {reason}. Fix: correct the syntax at that position "
            "(strings need quotes, tables are written [name], each key once).",
            path=path,
        ) from None


def _has_devstack_table(path: Path) -> bool:
    """Whether a pyproject.toml has [tool.devstack]. A broken one counts only if it mentions it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return False
    except tomllib.TOMLDecodeError:
        try:
            return "[tool.devstack" in path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
    tool = data.get("tool")
    return isinstance(tool, dict) and "devstack" in tool


def find_config(cwd: Path, explicit: Path | None = None) -> tuple[Path, str] | None:
    """Locate the config: ``(path, "devstack.toml" | "pyproject.toml")``, or None (use the demo)."""
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_absolute():
            p = Path(cwd) / p
        if not p.exists():
            raise ConfigError(
                f"{explicit}: --config names a file that does not exist. Fix: check the path, or leave "
                "--config out to search for devstack.toml / pyproject.toml from the current folder.",
                path=p,
            )
        if p.is_dir():
            raise ConfigError(f"{explicit}: --config names a folder. Fix: pass the path of the devstack.toml or pyproject.toml file.", path=p)
        if p.name == "pyproject.toml":
            if not _has_devstack_table(p):
                raise ConfigError(f"{explicit}: has no [tool.devstack] table. Fix: add one, or pass a devstack.toml.", path=p, key="tool.devstack")
            return p.resolve(), "pyproject.toml"
        return p.resolve(), "devstack.toml"
    here = Path(cwd).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "devstack.toml"
        if candidate.is_file():
            return candidate, "devstack.toml"
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and _has_devstack_table(candidate):
            return candidate, "pyproject.toml"
    return None


def load_config(explicit: Path | None = None, cwd: Path | None = None) -> Config:
    """Find, read and validate the configuration (the bundled demo when none is found)."""
    cwd = Path(cwd) if cwd is not None else Path.cwd()
    found = find_config(cwd, explicit)
    if found is None:
        return demo_config(cwd)
    path, source = found
    data = _read_toml(path)
    if source == "pyproject.toml":
        tool = data.get("tool", {})
        data = tool.get("devstack") if isinstance(tool, dict) else None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: [tool.devstack] must be a table. Fix: write it as a [tool.devstack] section.", path=path)
    return parse_config(data, root=path.parent, path=path, source=source, cwd=cwd)


DEMO_APP = "devstack.demo.app:app"
DEMO_CELERY = "devstack.demo.app:celery"
DEMO_QUEUES = ["celery", "dataset", "generation", "mail"]


def demo_root() -> Path:
    import devstack

    return Path(devstack.__file__).resolve().parent / "demo"


def demo_config(cwd: Path) -> Config:
    """The bundled demo stack: Flask app + Celery worker + beat, state in ``<cwd>/.devstack``."""
    cwd = Path(cwd)
    # The services run from the package's parent, not from inside demo/: `flask --app a.b.c` run
    # inside a package folder would rewrite the module name from the folder's __init__.py files.
    run_dir = str(demo_root().parent.parent)
    data = {
        "project": {"name": "demo", "env_file": "", "state_dir": str((cwd / ".devstack").resolve())},
        "api": {"app": DEMO_APP, "port": 5000, "cwd": run_dir},
        "worker": {"app": DEMO_CELERY, "queues": list(DEMO_QUEUES), "concurrency": 2, "cwd": run_dir},
        "beat": {"enabled": True, "app": DEMO_CELERY, "cwd": run_dir},
    }
    return parse_config(data, root=demo_root(), path=None, source="demo", cwd=cwd)


def parse_config(data: dict, *, root: Path, path: Path | None, source: str, cwd: Path) -> Config:
    """Validate the parsed TOML table ``data`` into a :class:`Config` (raises :class:`ConfigError`)."""
    root = Path(root).resolve()
    cwd = Path(cwd)
    where = _Where(path, source, cwd)
    if not isinstance(data, dict):
        raise where.error([], None, "expected a table of settings. Fix: write the settings as TOML tables like [api].")

    # unknown top-level tables (and the internal root/path/source keys) get a suggestion
    for key in data:
        if key not in TABLES:
            close = difflib.get_close_matches(str(key), TABLES, n=1, cutoff=0.5)
            hint = f' Did you mean "[{close[0]}]"?' if close else ""
            raise ConfigError(
                f"{where.file}: {where.table([str(key)])}: unknown table.{hint} Valid tables: "
                f"{', '.join('[' + t + ']' for t in TABLES)}. Fix: rename or remove it.",
                path=path,
                key=str(key),
            )

    beat_given = "beat" in data
    full: dict[str, Any] = {k: (dict(data[k]) if isinstance(data.get(k), dict) else data[k]) for k in data}
    for table in ("project", "redis", "api", "worker", "beat", "reload"):
        full.setdefault(table, {})

    # process names are dict keys; check them before validation for a precise message
    procs = full.get("process", {})
    if isinstance(procs, dict):
        for name in procs:
            if name in RESERVED_NAMES:
                raise where.error(["process", name], None, f'the name "{name}" is reserved (redis, api, worker, beat, devstack, all). Fix: rename the table, e.g. [process.{name}-2].')
            if not PROCESS_NAME_RE.match(name):
                raise where.error(["process", name], None, "invalid process name: use lowercase letters, digits, _ and -, starting with a letter or digit. Fix: rename the table, e.g. [process.frontend].")

    full.update(root=root, path=path, source=source)
    try:
        cfg = Config.model_validate(full, context={"root": root})
    except ValidationError as exc:
        _raise_validation(exc, where)
        raise  # unreachable

    # ---- cross-table rules ----
    if cfg.redis.url and cfg.redis.mode == "auto":
        cfg.redis.mode = "external"
    if cfg.redis.mode == "external" and not cfg.redis.url:
        raise where.error(["redis"], "url", 'mode = "external" needs the URL of your Redis. Fix: add url = "redis://host:6379/0", or use mode = "auto" to let devstack start one.')
    if cfg.redis.is_sentinel and not cfg.redis.master_name:
        raise where.error(["redis"], "master_name", 'a sentinel:// url needs the name of the monitored master. Fix: add master_name = "mymaster".')

    if cfg.api.enabled and not cfg.api.app and not cfg.api.command:
        raise where.error(["api"], "app", 'the API is enabled but neither app nor command is set. Fix: add app = "module:app" (the Flask app), or command = "...", or enabled = false.')
    if cfg.worker.enabled and not cfg.worker.app and not cfg.worker.command:
        raise where.error(["worker"], "app", 'the worker is enabled but neither app nor command is set. Fix: add app = "module.celery" (the Celery app), or command = "...", or enabled = false.')

    if cfg.beat.app is None:
        cfg.beat.app = cfg.worker.app
    if cfg.beat.enabled is None:
        # enabled by default only when an app is known (and the worker it schedules for runs)
        cfg.beat.enabled = bool(cfg.beat.app or cfg.beat.command) and (beat_given or cfg.worker.enabled)
    elif cfg.beat.enabled and not cfg.beat.app and not cfg.beat.command:
        raise where.error(["beat"], "app", 'beat is enabled but no Celery app is known. Fix: add app = "module.celery" to [beat] or [worker], or set enabled = false.')

    known = set(BUILTIN_SERVICES) | set(cfg.process)
    for name, proc in cfg.process.items():
        for dep in proc.depends_on:
            if dep == name:
                raise where.error(["process", name], "depends_on", f'a process cannot depend on itself ("{dep}"). Fix: remove it from depends_on.')
            if dep not in known:
                close = difflib.get_close_matches(dep, sorted(known), n=1, cutoff=0.5)
                hint = f' Did you mean "{close[0]}"?' if close else ""
                raise where.error(["process", name], "depends_on", f'"{dep}" is not a service.{hint} Valid names: {", ".join(sorted(known))}. Fix: correct or remove it.')
    _check_cycles(cfg, where)
    return cfg


def _check_cycles(cfg: Config, where: _Where) -> None:
    graph = {n: [d for d in p.depends_on if d in cfg.process] for n, p in cfg.process.items()}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in graph[node]:
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep] if dep in stack else [node, dep]
                raise where.error(["process", node], "depends_on", f"dependency cycle: {' -> '.join(cycle)}. Fix: remove one of these depends_on entries.")
            if state.get(dep) is None:
                visit(dep, stack + [dep])
        state[node] = 2

    for n in graph:
        if n not in state:
            visit(n, [n])
