"""The environment a stack's children get, from the configuration and where Redis is: the one rule
behind the engine's services, `devstack run` and `devstack env`."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from .app_specs import Interpreter, choose_interpreter
from .envfile import compose_env, parse_env_file
from .redis_server import RedisEndpoint, load_or_create_password

__all__ = ["env_file_vars", "stack_password", "child_env", "service_env", "interpreter"]


def env_file_vars(config) -> dict[str, str]:
    """The raw values of `[project] env_file` ({} without one)."""
    env_file = config.project.env_file
    return parse_env_file(Path(env_file)) if env_file else {}


def stack_password(config, environ: Mapping[str, str], file_vars: Mapping[str, str]) -> str:
    """The password of the Redis the stack launches: [redis] password, REDIS_PASSWORD from the
    environment, then from the env file, then the stored (or a new, stored) one."""
    return load_or_create_password(config.redis, environ.get("REDIS_PASSWORD") or file_vars.get("REDIS_PASSWORD"),
                                   Path(config.project.state_dir))


def child_env(config, endpoint: RedisEndpoint, environ: Mapping[str, str], file_vars: Mapping[str, str],
              table_env: Mapping[str, str]) -> dict[str, str]:
    """What a child gets: see :func:`devstack.envfile.compose_env` for the precedence; then the app's
    interpreter activated, as if its virtualenv were (PATH, VIRTUAL_ENV)."""
    env = compose_env(environ=environ, env_file=file_vars, wiring=endpoint.wiring(), global_env=config.env,
                      service_env=table_env)
    return interpreter(config, environ).activate(env)


def interpreter(config, environ: Mapping[str, str]) -> Interpreter:
    """The Python that runs the app (see :func:`devstack.app_specs.choose_interpreter`)."""
    return choose_interpreter(config.project.python, Path(config.root), environ)


def service_env(config, name: str | None, endpoint: RedisEndpoint, environ: Mapping[str, str],
                file_vars: Mapping[str, str]) -> dict[str, str]:
    """The environment of service `name` (its table's `env` on top), or of none (only [env])."""
    return child_env(config, endpoint, environ, file_vars, config.service(name).env if name else {})
