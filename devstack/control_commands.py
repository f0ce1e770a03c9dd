"""What the control commands (status, restart, stop, start, solo, logs) send and print, without click,
asyncio or pydantic: the console script's fast path (devstack/console.py) and the click CLI
(devstack/cli.py) both call these, so both print the same bytes."""
from __future__ import annotations

import os
import sys

from .errors import DevstackError

NAMES_COMMANDS = ("restart", "stop", "start")


def redis_summary(redis: dict) -> str:
    """One line about the stack's Redis, e.g. "embedded 127.0.0.1:6379" or, for a launched topology,
    "embedded sentinel ×3 · master at start 127.0.0.1:6379" (the header and `status`; the ports are in --json)."""
    where = f"{redis['host']}:{redis['port']}" if redis.get("host") else "(starting)"
    if redis.get("sentinels"):
        return f"{redis['mode']} sentinel ×{len(redis['sentinels'])} · master at start {where}"
    if redis.get("cluster"):
        return f"{redis['mode']} cluster ×{len(redis['cluster'])} · broker {where}"
    return f"{redis['mode']} {where}"


def status_text(result: dict, as_json: bool) -> str:
    if as_json:
        import json  # here, not at the top: `devstack status` has the stack render it (no json import)

        return json.dumps(result, indent=2)
    redis = result["redis"]
    lines = [f"{result['project']}  ·  Redis {redis_summary(redis)} "
             f"v{redis['version'] or '?'}  ·  solo {'on' if result['solo'] else 'off'}"]
    width = max([10, *map(len, result["services"])])  # a topology's node names (sentinel-1, redis-replica)
    for name, s in result["services"].items():
        uptime = f"{s['uptime']:.0f}s" if s.get("uptime") is not None else "-"
        state = f"{s['state']} (held)" if s.get("held") else s["state"]
        if s["state"] == "failed" and s.get("exit_code") is not None:
            state = f"failed (exit {s['exit_code']})"  # a oneshot step: its code is the news
        debug = f"  debug :{s['debug']}" if s.get("debug") else ""  # as the TUI's process list shows it
        lines.append(f"  {name:<{width}} {state:<14} pid {s['pid'] or '-':<8} up {uptime:<7} restarts {s['restarts']}"
                     f"{debug}")
        if s.get("last_error"):
            lines.append(f"  {'':<{width}} last error: {s['last_error']}")
    return "\n".join(lines)


def names_text(cmd: str, done: list[str], states: dict[str, str] | None = None) -> str:
    """`restart: worker (ready)`: a restart returns once the new generations are ready (Engine.restart),
    and `states` (from the status that follows it) says whether each one is."""
    text = f"{cmd}: {', '.join(done)}"
    if states is None:
        return text
    bad = [name for name in done if states.get(name) != "ready"]
    if not bad:
        return text + " (ready)"
    return text + (f" (not ready: {', '.join(f'{n} {states.get(n)}' for n in bad)}; "
                   f"`devstack logs {bad[0]}` shows why)")


def solo_text(on: bool) -> str:
    return f"solo {'on' if on else 'off'}: the worker restarted with -P {'solo' if on else 'its configured pool'}"


def run_status(state_dir: str | os.PathLike, as_json: bool) -> str:
    from .control_client import request_rendered

    out = request_rendered(state_dir, "status", "json" if as_json else "text")
    return out if isinstance(out, str) else status_text(out, as_json)


def run_names(state_dir: str | os.PathLike, cmd: str, names: list[str]) -> str:
    from .control_client import request

    done = request(state_dir, cmd, names)
    if cmd != "restart":
        return names_text(cmd, done)
    services = request(state_dir, "status")["services"]
    return names_text(cmd, done, {n: services.get(n, {}).get("state") for n in done})


def run_solo(state_dir: str | os.PathLike, mode: str | None) -> str:
    from .control_client import request

    return solo_text(request(state_dir, "solo", [mode] if mode else []))


def print_logs(state_dir: str | os.PathLike, name: str, lines: int, follow: bool, write=None) -> None:
    """Past lines from the log file, then (-f) the live stream from the running stack."""
    write = write or sys.stdout.write
    logs = os.path.join(state_dir, "logs")
    path = os.path.join(logs, f"{name}.log")
    if not os.path.exists(path) and not follow:
        known = sorted(f[:-4] for f in os.listdir(logs) if f.endswith(".log")) if os.path.isdir(logs) else []
        raise DevstackError(f"no log for {name!r} in {logs}. Known: {', '.join(known) or 'none yet'}.", 1)
    if os.path.exists(path) and lines:
        from collections import deque

        with open(path, encoding="utf-8", errors="replace") as f:
            for line in deque(f, maxlen=lines):
                write(line)
    if follow:
        import json

        from .control_client import connect

        sys.stdout.flush()
        with connect(state_dir, timeout=None) as sock:
            sock.sendall(json.dumps({"cmd": "follow", "args": [name]}).encode() + b"\n")
            with sock.makefile("r", encoding="utf-8") as stream:
                try:
                    for raw in stream:
                        event = json.loads(raw).get("event", {})
                        if event.get("type") == "log":
                            write(event["text"] + "\n")
                            sys.stdout.flush()
                except KeyboardInterrupt:
                    pass
