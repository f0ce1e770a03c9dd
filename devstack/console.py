"""The `devstack` console script: status, restart, stop, start, solo and logs answer at once (no click,
asyncio or pydantic import: devstack/control_commands.py); anything else (`up`, `--help`, a usage error,
a config that takes validation to read, no stack running) goes on to the click CLI in devstack/cli.py."""
from __future__ import annotations

import os
import sys

from .control_commands import NAMES_COMMANDS, print_logs, run_names, run_solo, run_status
from .errors import DevstackError


class _Fallback(Exception):
    """Not a command line the fast path handles exactly as click would: let click have it."""


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

    from .control_client import socket_file

    state_dir = locate_state_dir(os.getcwd(), opts.get("--config"))
    if state_dir is None or not (cmd == "logs" or os.path.exists(socket_file(state_dir))):
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


def check_cwd() -> None:
    """A current folder deleted under the shell (a regenerated or re-cloned project) is a user error."""
    try:
        os.getcwd()
    except FileNotFoundError:
        raise DevstackError("the current folder no longer exists (deleted or replaced since this shell "
                            "entered it). Fix: `cd` into the project folder again, e.g. `cd \"$PWD\"`.", 2)


def main() -> None:
    argv = sys.argv[1:]
    try:
        check_cwd()
        _run(*_parse(argv))
    except _Fallback:
        from .cli import main as click_main

        click_main(prog_name="devstack")
    except DevstackError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"devstack: {exc.message}\n")
        sys.exit(exc.exit_code)
