"""The `devstack beat` and `devstack debug` commands, registered on the `main` group by `cli.py`
(`register`): cli.py hands over its config option and loaders, so this module never imports it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import click

from .errors import DevstackError


def _ask(state_dir: Path, cmd: str, args: list):
    """The running stack's answer, or None when no stack runs for `state_dir`."""
    from .control import request
    from .state import is_locked

    return request(state_dir, cmd, args) if is_locked(state_dir) else None


def _needs_stack(state_dir: Path, cmd: str, args: list, what: str):
    result = _ask(state_dir, cmd, args)
    if result is None:
        raise DevstackError(f"`devstack {what}` needs the running stack, and none runs for {state_dir}. "
                            "Start it with `devstack up`.", 1)
    return result


def format_beat(schedule: dict, now: float | None = None) -> str:
    from .beat import when_words

    lines = []
    for e in schedule["entries"]:
        lines.append(f"{e['name']:<22} {e['task']:<24} {e['every']:<22} last {when_words(e['last_run'], now):<24} "
                     f"next {when_words(e['next_run'], now):<24} runs {e['total_run_count']:<5} "
                     f"queue {e.get('queue') or '?'}")
    if not lines:
        lines.append("the app's beat_schedule has no entries")
    if schedule.get("file_error"):
        lines.append(f"schedule file {schedule['file']}: {schedule['file_error']}")
    return "\n".join(lines)


def register(main: click.Group, config_option, load: Callable, state_dir_of: Callable[[Path | None], Path]) -> None:
    @main.group(invoke_without_command=True)
    @config_option
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @click.pass_context
    def beat(ctx, config_path: Path | None, as_json: bool) -> None:
        """Beat's schedule: each entry's task, schedule in words, last and next run (`beat run NAME` sends one now)."""
        if ctx.invoked_subcommand is not None:
            ctx.obj = config_path
            return
        config = load(config_path)
        schedule = _ask(Path(config.project.state_dir), "beat", [])
        if schedule is None:  # no stack: ask the app and read the file beat left
            from .beat import offline_spec, read_schedule

            if not config.beat.enabled:
                raise DevstackError("beat is switched off in devstack.toml ([beat] enabled = false)", 1)
            spec = offline_spec(config)
            schedule = read_schedule(spec.argv, spec.env, spec.cwd, config.beat.app or config.worker.app)
        click.echo(json.dumps(schedule, indent=2) if as_json else format_beat(schedule))

    @beat.command(name="run")
    @config_option
    @click.argument("name")
    @click.pass_obj
    def beat_run(group_config: Path | None, config_path: Path | None, name: str) -> None:
        """Send beat entry NAME's task now (its args, kwargs and queue); prints the new task id."""
        result = _needs_stack(state_dir_of(config_path or group_config), "beat_run", [name], "beat run")
        click.echo(f"devstack: sent {name} to queue {result['queue']}", err=True)
        click.echo(result["id"])

    @main.command()
    @config_option
    @click.argument("name", type=click.Choice(["worker", "api"]))
    @click.argument("mode", required=False, type=click.Choice(["on", "off"]), default="on")
    @click.option("--port", type=int, help="The debugpy port (default: 5678, or the next free one).")
    def debug(config_path: Path | None, name: str, mode: str, port: int | None) -> None:
        """Restart NAME (worker or api) under debugpy on 127.0.0.1 for an IDE to attach; `off` back to normal.
        The worker runs with -P solo (one task at a time). Needs debugpy in the app's Python."""
        from .debug import attach_help

        result = _needs_stack(state_dir_of(config_path), "debug", [name, mode == "on", port], f"debug {name}")
        click.echo(attach_help(result))
