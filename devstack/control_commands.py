"""The `devstack` console script's fast path: status, restart, stop, start, solo and logs talk to the
running stack without importing click, asyncio or pydantic; anything else (`--help`, `up`, a usage
error, a config that takes validation to read) goes to the click CLI in devstack/cli.py, which uses
the same output functions below, so both print the same bytes."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .errors import DevstackError

NAMES_COMMANDS = ("restart", "stop", "start")


class _Fallback(Exception):
    """Not a command line the fast path handles exactly as click would: let click have it."""


def status_text(result: dict, as_json: bool) -> str:
    if as_json:
        return json.dumps(result, indent=2)
    redis = result["redis"]
    lines = [f"{result['project']}  ·  Redis {redis['mode']} {redis['host']}:{redis['port']} "
             f"v{redis['version'] or '?'}  ·  solo {'on' if result['solo'] else 'off'}"]
    for name, s in result["services"].items():
        uptime = f"{s['uptime']:.0f}s" if s.get("uptime") is not None else "-"
        state = f"{s['state']} (held)" if s.get("held") else s["state"]
        lines.append(f"  {name:<10} {state:<14} pid {s['pid'] or '-':<8} up {uptime:<7} restarts {s['restarts']}")
        if s.get("last_error"):
            lines.append(f"  {'':<10} last error: {s['last_error']}")
    return "\n".join(lines)


def names_text(cmd: str, done: list[str]) -> str:
    # `restart` returns once every new generation is ready (Engine.restart): say so.
    return f"{cmd}: {', '.join(done)}" + (" (ready)" if cmd == "restart" else "")


def solo_text(on: bool) -> str:
    return f"solo {'on' if on else 'off'}: the worker restarted with -P {'solo' if on else 'its configured pool'}"


def run_status(state_dir: Path, as_json: bool) -> str:
    from .control_client import request

    return status_text(request(state_dir, "status"), as_json)


def run_names(state_dir: Path, cmd: str, names: list[str]) -> str:
    from .control_client import request

    return names_text(cmd, request(state_dir, cmd, names))


def run_solo(state_dir: Path, mode: str | None) -> str:
    from .control_client import request

    return solo_text(request(state_dir, "solo", [mode] if mode else []))


def print_logs(state_dir: Path, name: str, lines: int, follow: bool, write=None) -> None:
    """Past lines from the log file, then (-f) the live stream from the running stack."""
    write = write or sys.stdout.write
    path = state_dir / "logs" / f"{name}.log"
    if not path.exists() and not follow:
        known = sorted(p.stem for p in (state_dir / "logs").glob("*.log")) if (state_dir / "logs").exists() else []
        raise DevstackError(f"no log for {name!r} in {path.parent}. Known: {', '.join(known) or 'none yet'}.", 1)
    if path.exists() and lines:
        from collections import deque

        with open(path, encoding="utf-8", errors="replace") as f:
            for line in deque(f, maxlen=lines):
                write(line)
    if follow:
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


def _parse(argv: list[str]) -> tuple[str, dict, list[str]]:
    """(command, options, arguments) for the forms click accepts for these commands, else _Fallback."""
    if not argv or argv[0] not in (*NAMES_COMMANDS, "status", "solo", "logs"):
        raise _Fallback
    cmd, rest, opts, args = argv[0], list(argv[1:]), {}, []
    flags = {"status": {"--json"}, "logs": {"-f"}}.get(cmd, set())
    valued = {"--config", "-n"} if cmd == "logs" else {"--config"}
    while rest:
        word = rest.pop(0)
        if word == "--":
            args += rest
            break
        key, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if key in flags and not eq:
            opts[key] = True
        elif key in valued:
            if not eq:
                if not rest:
                    raise _Fallback
                value = rest.pop(0)
            opts[key] = value
        elif word.startswith("-") and word != "-":
            raise _Fallback  # --help, a typo, a combined short flag: click's own message
        else:
            args.append(word)
    if cmd == "status" and args or cmd in NAMES_COMMANDS and not args or cmd == "logs" and len(args) != 1:
        raise _Fallback
    if cmd == "solo" and (len(args) > 1 or args and args[0] not in ("on", "off")):
        raise _Fallback
    if "-n" in opts and not opts["-n"].isdigit():
        raise _Fallback
    return cmd, opts, args


def _run(cmd: str, opts: dict, args: list[str]) -> None:
    from .locate import state_dir as locate_state_dir

    from .control_client import socket_path

    state_dir = locate_state_dir(Path.cwd(), opts.get("--config"))
    if state_dir is None or not (cmd == "logs" or socket_path(state_dir).exists()):
        # Reading the config takes validation, or no stack runs: the full CLI validates the config first,
        # so a broken file is reported as such rather than as "no stack is running".
        raise _Fallback
    if cmd == "logs":
        print_logs(state_dir, args[0], int(opts.get("-n", 50)), bool(opts.get("-f")))
        return
    if cmd == "status":
        out = run_status(state_dir, bool(opts.get("--json")))
    elif cmd == "solo":
        out = run_solo(state_dir, args[0] if args else None)
    else:
        out = run_names(state_dir, cmd, args)
    sys.stdout.write(out + "\n")


def main() -> None:
    argv = sys.argv[1:]
    try:
        _run(*_parse(argv))
    except _Fallback:
        from .cli import main as click_main

        click_main()
    except DevstackError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"devstack: {exc.message}\n")
        sys.exit(exc.exit_code)
