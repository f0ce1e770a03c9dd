"""Rules that span tables or come before them: table and process names, Redis mode and URL, apps
the enabled services need, beat's defaults from ``[worker]``, and ``depends_on`` (targets, cycles).
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .messages import Where
from .models import BUILTIN_SERVICES, PROCESS_NAME_RE, RESERVED_NAMES, TABLES, Config

__all__ = ["check_names", "apply_rules"]


def check_names(data: dict[str, Any], where: Where, path: Path | None) -> None:
    """Reject unknown top-level tables and bad ``[process.<name>]`` names before validation.

    Names are dict keys, which pydantic's messages cannot point at precisely.
    """
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
    procs = data.get("process", {})
    if isinstance(procs, dict):
        for name in procs:
            if name in RESERVED_NAMES:
                raise where.error(["process", name], None, f'the name "{name}" is reserved (redis, api, worker, beat, devstack, all). Fix: rename the table, e.g. [process.{name}-2].')
            if not PROCESS_NAME_RE.match(name):
                raise where.error(["process", name], None, "invalid process name: use lowercase letters, digits, _ and -, starting with a letter or digit. Fix: rename the table, e.g. [process.frontend].")


def apply_rules(cfg: Config, where: Where, *, beat_given: bool) -> None:
    """Check the validated ``cfg`` as a whole and fill the defaults that depend on other tables."""
    _redis_rules(cfg, where)
    _app_rules(cfg, where, beat_given)
    _depends_on_rules(cfg, where)
    _check_cycles(cfg, where)


def _redis_rules(cfg: Config, where: Where) -> None:
    if cfg.redis.url and cfg.redis.mode == "auto":
        cfg.redis.mode = "external"
    if cfg.redis.mode == "external" and not cfg.redis.url:
        raise where.error(["redis"], "url", 'mode = "external" needs the URL of your Redis. Fix: add url = "redis://host:6379/0", or use mode = "auto" to let devstack start one.')
    if cfg.redis.is_sentinel and not cfg.redis.master_name:
        raise where.error(["redis"], "master_name", 'a sentinel:// url needs the name of the monitored master. Fix: add master_name = "mymaster".')
    from ..topology.rules import topology_rules  # the [redis] topology keys (devstack/topology/rules.py)

    topology_rules(cfg.redis, lambda key, text: where.error(["redis"], key, text))


def _app_rules(cfg: Config, where: Where, beat_given: bool) -> None:
    if (cfg.api.enabled and cfg.redis.mode != "external" and cfg.redis.topology == "standalone"
            and cfg.api.port == cfg.redis.port):
        # Else Redis takes the port first and the API crash-loops on "Address already in use".
        raise where.error(["api"], "port", f"{cfg.api.port} is also [redis] port, the Redis devstack starts: the API "
                          f"could not listen on it. Fix: give one of them another port, e.g. [api] port = "
                          f"{5000 if cfg.redis.port != 5000 else 5001}.")
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


def _tables(cfg: Config) -> dict[str, tuple[list[str], Any]]:
    """Every service that can depend on others: its table path and its config."""
    tables: dict[str, tuple[list[str], Any]] = {n: ([n], getattr(cfg, n)) for n in ("api", "worker", "beat")}
    tables.update({n: (["process", n], p) for n, p in cfg.process.items()})
    return tables


def _depends_on_rules(cfg: Config, where: Where) -> None:
    known = set(BUILTIN_SERVICES) | set(cfg.process)
    for name, (table, svc) in _tables(cfg).items():
        for dep in svc.depends_on:
            if dep == name:
                raise where.error(table, "depends_on", f'a service cannot depend on itself ("{dep}"). Fix: remove it from depends_on.')
            if dep not in known:
                close = difflib.get_close_matches(dep, sorted(known), n=1, cutoff=0.5)
                hint = f' Did you mean "{close[0]}"?' if close else ""
                raise where.error(table, "depends_on", f'"{dep}" is not a service.{hint} Valid names: {", ".join(sorted(known))}. Fix: correct or remove it.')
    for name, proc in cfg.process.items():
        if proc.oneshot and (proc.ready_http or proc.ready_log):
            raise where.error(["process", name], "oneshot", "a oneshot step is done when it exits with code 0, so ready_http / ready_log never apply. Fix: remove them, or set oneshot = false for a long-running process.")


def _check_cycles(cfg: Config, where: Where) -> None:
    tables = _tables(cfg)
    graph = {n: [d for d in svc.depends_on if d in tables] for n, (_t, svc) in tables.items()}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in graph[node]:
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep] if dep in stack else [node, dep]
                raise where.error(tables[node][0], "depends_on", f"dependency cycle: {' -> '.join(cycle)}. Fix: remove one of these depends_on entries.")
            if state.get(dep) is None:
                visit(dep, stack + [dep])
        state[node] = 2

    for n in graph:
        if n not in state:
            visit(n, [n])
