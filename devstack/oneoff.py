"""`devstack run` and `devstack env`: one-off commands in exactly the environment the services get,
against the running stack's Redis, or a Redis started for the command alone and stopped after it."""
from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
from pathlib import Path

from . import environment
from .errors import DevstackError
from .lockfiles import RUN, running_run
from .ports import SEARCH, is_free, port_owner, port_up_would_use, taken_message
from .redis_server import RedisEndpoint
from .topology import expected_endpoint
from .secrets import mask
from .state import is_locked, prepare_state_dir

__all__ = ["stack_env", "run_command", "format_env"]

REDIS_READY_TIMEOUT = 30.0


def _check_service(config, name: str | None) -> None:
    if name is None:
        return
    known = [n for n in config.services() if n != "redis"]
    if name not in known:
        raise DevstackError(f"unknown service {name!r}: this project's services are {', '.join(known) or 'none'}. "
                            "Fix: name one of them, or none for the environment every service shares.", 2)


def _running_endpoint(config, password: str) -> RedisEndpoint | None:
    """Where the running stack's Redis listens (its port may not be the configured one); None if no stack runs."""
    state_dir = Path(config.project.state_dir)
    if not is_locked(state_dir):
        return None
    if config.redis.mode == "external":
        return expected_endpoint(config.redis, state_dir, password)
    from .control import request

    try:
        redis = request(state_dir, "status", timeout=10)["redis"]
    except DevstackError:
        if (run := running_run(state_dir)) is not None:
            pid, command = run
            raise DevstackError(f"another `devstack run` (pid {pid}) is running `{command}` for this project, with a "
                                "Redis of its own that it stops when done: two one-offs do not share it. Fix: wait "
                                "until it has finished; to run several at once, start the stack first (`devstack up`): "
                                "one-offs then share its Redis.", 1) from None
        raise DevstackError(f"a devstack process holds this project's lock ({state_dir}) but does not answer on its "
                            "control socket: a stack still starting, or another `devstack run`. Retry once it is up "
                            "(`devstack status`) or has finished.", 1) from None
    return expected_endpoint(config.redis, state_dir, password, redis)


def stack_env(config, name: str | None = None, environ: dict[str, str] | None = None) -> tuple[dict[str, str], str]:
    """(environment of service `name`, the Redis password) without starting anything.

    With no stack running, the wiring names the port `devstack up` would take now (see `redis_port_note`).
    """
    _check_service(config, name)
    environ = dict(os.environ if environ is None else environ)
    file_vars = environment.env_file_vars(config)
    prepare_state_dir(Path(config.project.state_dir))  # where a first password is stored for `up` to use
    password = environment.stack_password(config, environ, file_vars)
    endpoint = _running_endpoint(config, password)
    if endpoint is None:
        endpoint = expected_endpoint(config.redis, Path(config.project.state_dir), password,
                                     {"port": _port_up_would_use(config.redis)})
    return environment.service_env(config, name, endpoint, environ, file_vars), password


def _port_up_would_use(redis) -> int | None:
    """The Redis port `devstack up` would take now (None: the configured one); only where `up` picks one."""
    if redis.mode == "external" or redis.topology != "standalone":
        return None  # an external server's port is the user's; a topology picks its nodes' ports at `up`
    return port_up_would_use(redis.port, explicit="port" in redis.model_fields_set)


def redis_port_note(config) -> str | None:
    """What `devstack env` says on stderr when no stack runs and the wiring is not simply the configured port."""
    redis = config.redis
    if is_locked(Path(config.project.state_dir)) or redis.mode == "external":
        return None
    if redis.topology != "standalone":
        return (f"devstack: no stack is running; the {redis.topology} nodes' ports are picked at `devstack up` "
                "(free ones near the configured ports): run `devstack env` again once it is up.")
    port = _port_up_would_use(redis)
    if port == redis.port and is_free(redis.port):
        return None
    if port is None:
        return (f"devstack: Redis port {redis.port} and the {SEARCH} above it are taken: `devstack up` will fail. "
                "Fix: set [redis] port to a free port.")
    if port == redis.port:
        return f"devstack: {taken_message(port, 'Redis', '[redis] port')} `devstack up` will refuse to start until then."
    return (f"devstack: no stack is running and Redis port {redis.port} is taken{port_owner(redis.port)}, so this "
            f"shows {port}, the port `devstack up` would take now (picked again when it starts; set [redis] port "
            "to pin one).")


def format_env(env: dict[str, str], secrets: tuple[str, ...], *, as_json: bool, export: bool) -> str:
    """The environment as text: KEY=VALUE lines, `export KEY='VALUE'` lines, or a JSON object; `secrets`
    (empty with --show-secrets) are masked, and so is every URL's password."""
    # *_PASSWORD by name too: a topology's other passwords (the sentinels') are not in `secrets`
    shown = {k: ("***" if v and k.endswith("_PASSWORD") else mask(v, secrets)) if secrets else v
             for k, v in sorted(env.items())}
    if as_json:
        return json.dumps(shown, indent=2)
    if export:
        return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in shown.items())
    return "\n".join(f"{k}={v}" for k, v in shown.items())


def _redis_only(config):
    """The configuration with every service but Redis switched off (and no file watching)."""
    copy = config.model_copy(deep=True)
    for name in ("api", "worker", "beat"):
        getattr(copy, name).enabled = False
    copy.process = {}
    copy.reload.enabled = False
    return copy


async def run_command(config, argv: list[str], name: str | None = None) -> int:
    """Run `argv` in the project folder with the stack's environment; its exit code (128+N if killed by signal N).

    With no stack running, the stack's Redis is launched as `devstack up` would (supervised, tied to
    this process by the lifeline, so it goes even if devstack is killed) and stopped afterwards.
    """
    _check_service(config, name)
    if not argv:
        raise DevstackError("no command given. Fix: `devstack run -- flask db upgrade` (the command after --).", 2)
    cwd = Path(config.service(name).cwd) if name else Path(config.root)
    if is_locked(Path(config.project.state_dir)):
        env, _ = stack_env(config, name)
        return await _run(argv, env, cwd)
    from .engine import Engine

    engine = Engine(_redis_only(config))
    try:
        await engine.start()
        _say_who_holds_the_lock(engine.state_dir, argv, engine.secrets)
        redis = engine.services["redis"]
        try:
            await asyncio.wait_for(redis.wait_ready(), REDIS_READY_TIMEOUT)
        except asyncio.TimeoutError:
            raise DevstackError(f"the stack's Redis ({engine.endpoint.describe()}) was not ready within "
                                f"{REDIS_READY_TIMEOUT:.0f} s, so `{argv[0]}` did not run. See "
                                f"{engine.state_dir / 'logs' / 'redis.log'}, or run `devstack doctor`.", 1) from None
        env = environment.service_env(config, name, engine.endpoint, engine.environ, engine.env_file_vars)
        return await _run(argv, env, cwd)
    finally:
        await engine.shutdown()
        (Path(config.project.state_dir) / RUN).unlink(missing_ok=True)


def _say_who_holds_the_lock(state_dir: Path, argv: list[str], secrets: tuple[str, ...]) -> None:
    """Name the command in the state folder, so a `devstack up` or another `run` meanwhile says who holds the lock."""
    command = mask(shlex.join(argv), secrets)
    (state_dir / RUN).write_text(json.dumps({"pid": os.getpid(), "command": command[:200]}))


async def _run(argv: list[str], env: dict[str, str], cwd: Path) -> int:
    try:
        proc = await asyncio.create_subprocess_exec(*argv, env=env, cwd=cwd)
    except FileNotFoundError:
        raise DevstackError(f"command {argv[0]!r} was not found on the PATH of the stack's environment. Fix: install "
                            "it in the app's environment, or give its full path.", 127) from None
    except PermissionError:
        raise DevstackError(f"{argv[0]!r} is not executable. Fix: `chmod +x {argv[0]}`, or run it through its "
                            "interpreter.", 126) from None
    loop = asyncio.get_running_loop()
    # Ctrl-C reaches the command from the terminal by itself; devstack waits for it to finish, then
    # stops Redis. SIGTERM/SIGHUP are sent on to it.
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, proc.send_signal, sig)
    try:
        code = await proc.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    return 128 - code if code < 0 else code
