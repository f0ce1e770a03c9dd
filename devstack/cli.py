"""The `devstack` command line. Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import click

from .errors import DevstackError

CONFIG_OPTION = click.option("--config", "config_path", type=click.Path(path_type=Path),
                             help="Path to devstack.toml (default: search upwards, then pyproject.toml).")


def _load(config_path: Path | None):
    # devstack's config models need no pydantic plugins: skip their entry-point scan (~25 ms before Redis).
    had = os.environ.get("PYDANTIC_DISABLE_PLUGINS")
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        from .config import ConfigError, load_config

        try:
            return load_config(config_path, Path.cwd())
        except ConfigError as exc:
            raise DevstackError(str(exc), 2)
    finally:
        if had is None:
            os.environ.pop("PYDANTIC_DISABLE_PLUGINS", None)  # the apps' own pydantic keeps its plugins


def _fail(exc: DevstackError) -> None:
    click.echo(f"devstack: {exc.message}", err=True)
    sys.exit(exc.exit_code)


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DevstackError as exc:
            _fail(exc)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="devstack")
def main() -> None:
    """Run a Flask + Celery + Redis application locally: Redis, API, worker and beat, supervised."""


# ----- up ------------------------------------------------------------------------------------------
@main.command()
@CONFIG_OPTION
@click.option("--no-tui", is_flag=True, help="Print every process's lines instead of opening the TUI.")
@click.option("--solo", is_flag=True, help="Start the worker with -P solo -c 1 (breakpoint() works).")
def up(config_path: Path | None, no_tui: bool, solo: bool) -> None:
    """Start the stack in the foreground until Ctrl-C, SIGTERM or SIGHUP."""
    config = _load(config_path)
    from .demo_extra import check_demo_extra

    check_demo_extra(config)
    wants_tui = not no_tui and sys.stdout.isatty() and sys.stdin.isatty()
    run_tui = _frontend("tui") if wants_tui else None
    if run_tui is not None:
        sys.exit(run_tui(config, solo=solo))
    if wants_tui:
        click.echo("devstack: no TUI front-end is installed (the `devstack.frontends` entry point `tui`); "
                   "running with plain output. Reinstall devstack to get the TUI.", err=True)
    sys.exit(asyncio.run(run_headless(config, solo=solo)))


def _frontend(name: str):
    """A front-end registered under the `devstack.frontends` entry points (the TUI registers `tui`).

    The engine names no front-end package: a front-end plugs itself in. None when none is registered
    (`devstack up` then runs headless and says so); a registered one that fails to import is an error
    naming the package and the reason, never a quiet fallback to plain output.
    """
    from importlib.metadata import entry_points

    for entry in entry_points(group="devstack.frontends", name=name):
        try:
            return entry.load()
        except Exception as exc:  # ImportError, or any error raised while the front-end's modules load
            package = entry.value.split(":")[0].split(".")[0]
            where = f" ({entry.dist.name} {entry.dist.version})" if entry.dist is not None else ""
            raise DevstackError(
                f"the {name} front-end{where} failed to load: {type(exc).__name__}: {exc}. "
                f"The package `{package}` or one of its dependencies is broken or of an untested version; "
                f"reinstall devstack (`pip install --force-reinstall devstack`), or run without it: "
                f"`devstack up --no-tui`.", 1) from None
    return None


async def run_headless(config, *, solo: bool = False) -> int:
    from .api import Stack
    from .events import Notice
    from .headless import HeadlessPrinter

    stack = Stack.from_config(config, solo=solo)
    printer = HeadlessPrinter()
    stack.subscribe(printer)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    if config.is_demo:
        printer(_demo_notice())
    code = 0
    try:
        started = time.monotonic()
        await stack.start(stop.set)
        ready_task = loop.create_task(_announce_ready(stack, printer, started))
        await stop.wait()
        ready_task.cancel()
        printer(Notice("stopping the stack (Ctrl-C again is ignored; the worker finishes its running tasks)"))
        printer.flush()
    except DevstackError as exc:
        printer.flush()
        click.echo(f"devstack: {exc.message}", err=True)
        code = exc.exit_code
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the orderly stop short
        await stack.shutdown()
        printer(Notice("stack stopped"))
        printer.flush()
    return code


async def _announce_ready(stack, printer, started: float) -> None:
    from .events import Notice

    await stack.wait_all_ready()
    printer(Notice(f"all services ready in {time.monotonic() - started:.2f} s — "
                   f"`devstack status` in another terminal, Ctrl-C to stop"))


def _demo_notice():
    from .events import Notice

    return Notice("no devstack.toml found here or in a parent folder: running the bundled demo stack "
                  "(Flask API on http://127.0.0.1:5000 unless that port is taken: then devstack says which; try "
                  "/tasks/add?x=1&y=2). To run your own app, copy "
                  "config/devstack.example.toml from the devstack repository to devstack.toml and set "
                  "[api] app and [worker] app.")


# ----- doctor --------------------------------------------------------------------------------------
@main.command()
@CONFIG_OPTION
def doctor(config_path: Path | None) -> None:
    """Check the configured stack (running or not); OK / WARN / FAIL lines with the fix. Exit 1 on a FAIL."""
    from .doctor import FAIL, format_report, run_doctor

    checks, secrets = run_doctor(_load(config_path))
    click.echo(format_report(checks, secrets))
    sys.exit(1 if any(c.level == FAIL for c in checks) else 0)


# ----- one-off commands and the environment --------------------------------------------------------
SERVICE_OPTION = click.option("-s", "--service", "service", default=None,
                              help="Add this service's own `env` table (api, worker, beat or a [process.*]).")


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@CONFIG_OPTION
@SERVICE_OPTION
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(config_path: Path | None, service: str | None, command: tuple[str, ...]) -> None:
    """Run COMMAND in the project folder with the services' environment; exit with its code.

    Uses the running stack's Redis, or starts the stack's Redis for the command and stops it after:
    `devstack run -- flask db upgrade`.
    """
    from .oneoff import run_command

    argv = list(command[1:] if command[:1] == ("--",) else command)
    sys.exit(asyncio.run(run_command(_load(config_path), argv, service)))


@main.command()
@CONFIG_OPTION
@click.argument("service", required=False)
@click.option("--json", "as_json", is_flag=True, help="A JSON object instead of KEY=VALUE lines.")
@click.option("--export", is_flag=True, help="`export KEY='VALUE'` lines, for `eval \"$(devstack env --export)\"`.")
@click.option("--show-secrets", is_flag=True, help="Print the Redis password instead of ***.")
def env(config_path: Path | None, service: str | None, as_json: bool, export: bool, show_secrets: bool) -> None:
    """Print the environment SERVICE gets (no SERVICE: what every service shares); the password masked."""
    from urllib.parse import quote

    from .oneoff import format_env, redis_port_note, stack_env

    config = _load(config_path)
    values, password = stack_env(config, service)
    if note := redis_port_note(config):
        click.echo(note, err=True)  # stderr: stdout stays what `eval "$(devstack env --export)"` reads
    secrets = () if show_secrets else (password, quote(password, safe=""))
    click.echo(format_env(values, secrets, as_json=as_json, export=export))


@main.command()
def schema() -> None:
    """Print the JSON Schema of devstack.toml (for editors: Taplo / Even Better TOML)."""
    from .config import config_schema

    click.echo(json.dumps(config_schema(), indent=2))


@main.command()
@click.argument("folder", required=False, type=click.Path(path_type=Path, file_okay=False, exists=True))
def init(folder: Path | None) -> None:
    """Write a commented devstack.toml for the project in FOLDER (default: here): the Flask and Celery
    apps, queues, pool and beat it finds, each with where it was found. Never overwrites one."""
    from .init_config import write_config

    target, scan = write_config((folder or Path.cwd()).resolve())
    click.echo(target.read_text(), nl=False)
    click.echo(f"devstack: wrote {target}. Check the lines marked `guess`, then `devstack up`.", err=True)


# ----- control commands ----------------------------------------------------------------------------
def _state_dir(config_path: Path | None) -> Path:
    return Path(_load(config_path).project.state_dir)


@main.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config_path: Path | None, as_json: bool) -> None:
    """Show the running stack's services."""
    from .control_commands import run_status

    click.echo(run_status(_state_dir(config_path), as_json))


def _names_command(cmd: str, help_text: str):
    @main.command(name=cmd, help=help_text)
    @CONFIG_OPTION
    @click.argument("names", nargs=-1, required=True)
    def command(config_path: Path | None, names: tuple[str, ...]) -> None:
        from .control_commands import run_names

        click.echo(run_names(_state_dir(config_path), cmd, list(names)))

    return command


_names_command("restart", "Restart services (NAME... or `all`).")
_names_command("stop", "Stop services (NAME...).")
_names_command("start", "Start stopped services (NAME...).")


@main.command()
@CONFIG_OPTION
@click.argument("mode", required=False, type=click.Choice(["on", "off"]))
def solo(config_path: Path | None, mode: str | None) -> None:
    """Switch the worker into (on) or out of (off) `-P solo -c 1`; no argument toggles."""
    from .control_commands import run_solo

    click.echo(run_solo(_state_dir(config_path), mode))


@main.command()
@CONFIG_OPTION
def requeue(config_path: Path | None) -> None:
    """Put back in their queues the reserved messages a killed worker generation left in `unacked`."""
    from .control import request

    count = request(_state_dir(config_path), "requeue")
    click.echo(f"requeued {count} message(s)" if count else "nothing to requeue: no message is left in `unacked` "
               "by a stopped worker")


@main.command()
@CONFIG_OPTION
@click.argument("name")
@click.option("-n", "lines", default=50, show_default=True, help="How many past lines to show.")
@click.option("-f", "follow", is_flag=True, help="Keep printing new lines.")
def logs(config_path: Path | None, name: str, lines: int, follow: bool) -> None:
    """Show a service's log (from its log file; -f follows the running stack)."""
    from .control_commands import print_logs

    print_logs(_state_dir(config_path), name, lines, follow)


@main.command()
@CONFIG_OPTION
def down(config_path: Path | None) -> None:
    """Stop the running stack and wait until everything is gone."""
    from .control import request
    from .state import is_locked, recorded_processes, wait_processes_gone

    state_dir = _state_dir(config_path)
    procs = recorded_processes(state_dir)  # before asking: the stack forgets them as it stops
    request(state_dir, "down")
    deadline = time.monotonic() + 300  # a worker finishing a long task may take a while: that is the point
    while is_locked(state_dir):
        if time.monotonic() > deadline:
            raise DevstackError("the stack is still stopping after 300 s; see `devstack logs worker`.", 1)
        time.sleep(0.05)
    # The lock goes before the `devstack up` process itself exits: `down` then `up` must not race it.
    alive = wait_processes_gone(procs, 30)
    if alive:
        names = ", ".join(f"{key} (pid {p.pid})" for key, p in alive.items())
        raise DevstackError(f"the stack released its lock but these processes are still alive 30 s later: "
                            f"{names}. Stop them (`kill PID`); the next `devstack up` stops recorded leftovers too.", 1)
    click.echo("stack stopped")


# ----- task history --------------------------------------------------------------------------------
def _stack_or_none(config_path: Path | None, cmd: str, args: list) -> tuple[Path, object]:
    """(state dir, the running stack's answer), or (state dir, None) when no stack runs."""
    from .control import request
    from .state import is_locked

    state_dir = _state_dir(config_path)
    if not is_locked(state_dir):
        return state_dir, None
    return state_dir, request(state_dir, cmd, args)


def _echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@main.group(invoke_without_command=True)
@CONFIG_OPTION
@click.option("--state", help="Only tasks in this state (received, started, retried, succeeded, failed, revoked).")
@click.option("--name", help="Only tasks whose name contains this.")
@click.option("-n", "limit", default=50, show_default=True, help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def tasks(ctx, config_path: Path | None, state: str | None, name: str | None, limit: int, as_json: bool) -> None:
    """List the tasks seen (newest first), from the running stack or, when none runs, the history file."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = config_path
        return
    from .tasks import STATES, TaskHistory, store_path

    if state and state not in STATES:
        raise DevstackError(f"unknown state {state!r}: use one of {', '.join(STATES)}", 2)
    state_dir, rows = _stack_or_none(config_path, "tasks", [state, name, limit])
    if rows is None:
        rows = TaskHistory(store_path(state_dir)).list(state, name, limit)
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("no tasks seen yet" + (" matching" if state or name else ""))
    for row in rows:
        runtime = f"{float(row['runtime']):.3f}s" if row.get("runtime") else "-"
        click.echo(f"{row['id'][:8]}  {row['state']:<9} {row.get('name') or '?':<28} {row.get('queue') or '-':<12} "
                   f"{runtime:>9}  {row.get('hostname') or '-'}")


@tasks.command(name="clear")
@CONFIG_OPTION
@click.pass_obj
def tasks_clear(group_config: Path | None, config_path: Path | None) -> None:
    """Empty the task history."""
    config_path = config_path or group_config
    from .tasks import TaskStore, store_path

    state_dir, count = _stack_or_none(config_path, "tasks_clear", [])
    if count is None:
        store = TaskStore(store_path(state_dir))
        count = store.clear()
        store.close()
    click.echo(f"forgot {count} task(s)")


@main.command()
@CONFIG_OPTION
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def task(config_path: Path | None, task_id: str, as_json: bool) -> None:
    """One task: its history, and where it is now (queued, reserved, running, scheduled, done or unknown)."""
    from .tasks import TaskHistory, find_row, log_path, offline_answer, store_path, task_log_lines

    state_dir, detail = _stack_or_none(config_path, "task", [task_id])
    if detail is None:
        row = find_row(TaskHistory(store_path(state_dir)), task_id)
        answer = offline_answer(row)
        detail = {**row, "where": answer["where"], "where_detail": answer,
                  "log": task_log_lines(log_path(state_dir), row["id"])}
    if as_json:
        _echo_json(detail)
        return
    click.echo(f"{detail['id']}  {detail.get('name') or '?'}  [{detail.get('state') or '?'}]")
    click.echo(f"  where: {detail['where_detail']['detail']}")
    for key in ("args", "kwargs", "queue", "hostname", "pid", "retries", "eta", "runtime", "result", "replay_of"):
        if detail.get(key) not in (None, ""):
            click.echo(f"  {key}: {detail[key]}")
    for state_name, at in (detail.get("times") or {}).items():
        click.echo(f"  {state_name}: {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(at))}")
    if detail.get("exception"):
        click.echo(f"  exception: {detail['exception']}")
    if detail.get("traceback"):
        click.echo(detail["traceback"].rstrip())
    if detail.get("log"):
        click.echo("  worker log:\n" + "\n".join(f"    {line}" for line in detail["log"]))


def _running_only(config_path: Path | None, cmd: str, args: list):
    state_dir, result = _stack_or_none(config_path, cmd, args)
    if result is None:
        raise DevstackError(f"`devstack {cmd}` needs the running stack (it talks to the broker), and none runs for "
                            f"{state_dir}. Start it with `devstack up`.", 1)
    return result


@main.command()
@CONFIG_OPTION
@click.argument("task_id")
@click.option("--queue", help="Send it to this queue (when the original queue is unknown, or to move it).")
def replay(config_path: Path | None, task_id: str, queue: str | None) -> None:
    """Send a task again with the same name, args, kwargs and queue; prints the new id."""
    result = _running_only(config_path, "replay", [task_id, queue])
    for note in result.get("notes") or []:
        click.echo(f"devstack: note: {note}", err=True)
    click.echo(result["id"])


@main.command()
@CONFIG_OPTION
@click.argument("task_id")
@click.option("--terminate", is_flag=True, help="Also stop it if it is running (SIGTERM to its pool process).")
@click.option("--signal", "sig", type=click.Choice(["TERM", "KILL"]), default="TERM", show_default=True,
              help="The signal --terminate sends.")
def revoke(config_path: Path | None, task_id: str, terminate: bool, sig: str) -> None:
    """Revoke a queued or reserved task (it will not run); --terminate stops a running one."""
    result = _running_only(config_path, "revoke", [task_id, terminate, sig])
    click.echo(f"{result['id']}: {result['detail']}")


from .cli_redis import register as _register_redis  # noqa: E402  (the commands need main defined)

_register_redis(main, CONFIG_OPTION, _state_dir)

from . import cli_tasks  # noqa: E402  (beat, debug: their own module, registered here)

cli_tasks.register(main, CONFIG_OPTION, _load, _state_dir)

if __name__ == "__main__":
    main()
