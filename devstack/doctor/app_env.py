"""Doctor checks of the app's own environment (the Python that runs the worker, not devstack's) and of
a running stack's crash-looping services."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ..app_specs import executable
from ..diagnose import interpreter_for
from ..errors import DevstackError
from .context import Context
from .report import FAIL, OK, WARN, Check

# Run by the app's interpreter: versions, and whether kombu's Redis transport accepts that redis-py
# (the very check a worker makes when it connects).
PROBE = """
import json, types
from importlib import metadata
out = {}
for name in ("celery", "kombu", "redis", "gevent"):
    try:
        out[name] = metadata.version(name)
    except Exception:
        out[name] = None
try:
    import redis  # the one the app imports (its PYTHONPATH included), not only the installed metadata
    out["redis"] = getattr(redis, "__version__", out["redis"])
except Exception:
    out["redis"] = None
try:
    from kombu.transport import redis as transport
    transport.Channel._get_client(types.SimpleNamespace(global_keyprefix=None))
    out["transport"] = None
except Exception as exc:
    out["transport"] = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def app_interpreter(ctx: Context) -> tuple[str | None, str]:
    """The Python that runs the worker, and how it was found (for the message)."""
    w = ctx.config.worker
    argv = list(w.command) if w.command else executable("celery", ctx.worker_env, ctx.interpreter)
    return interpreter_for(argv, ctx.worker_env.get("PATH")), argv[0]


def check_app_environment(ctx: Context) -> Check:
    name = "app environment"
    if not ctx.config.worker.enabled:
        return Check(name, OK, "no worker configured")
    python, via = app_interpreter(ctx)
    if python is None:
        return Check(name, WARN, f"cannot tell which Python runs {via}", "set [worker] command to the full path "
                     "of the celery executable of the app's virtualenv")
    try:
        done = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, timeout=30,
                              env=ctx.worker_env or None, cwd=ctx.config.worker.cwd)
        found = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return Check(name, FAIL, f"{python} (which runs {via}) could not report its packages",
                     f"check that `{python} -c 'import celery'` works")
    versions = ", ".join(f"{k} {found[k] or 'missing'}" for k in ("celery", "kombu", "redis"))
    if ctx.config.worker.pool == "gevent":
        versions += f", gevent {found['gevent'] or 'missing'}"
    missing = [k for k in ("celery", "kombu", "redis") if not found[k]]
    if ctx.config.worker.pool == "gevent" and not found["gevent"]:
        missing.append("gevent")
    if missing:
        return Check(name, FAIL, f"{python}: {versions}", f"`{python} -m pip install {' '.join(missing)}`")
    if found["transport"]:
        from ..diagnose import explain_exception

        return Check(name, FAIL, f"{python}: {versions}; kombu refuses this redis-py: {found['transport']}",
                     explain_exception(found["transport"], None, python).split(". Fix: ", 1)[-1])
    broken = _pip_check(python, ctx.worker_env or None)
    if broken:
        return Check(name, WARN, f"{python}: {versions}; `pip check` reports: {broken}",
                     f"install the versions they require: `{python} -m pip install ...` (see `{python} -m pip check`)")
    return Check(name, OK, f"{python}: {versions}; kombu accepts this redis-py; pip check clean")


def _pip_check(python: str, env: dict[str, str] | None) -> str:
    try:
        done = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if done.returncode == 0 or "No module named pip" in done.stderr:
        return ""
    lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
    return "; ".join(lines[:3]) + (f" (+{len(lines) - 3} more)" if len(lines) > 3 else "")


def check_crash_loops(ctx: Context) -> Check:
    """Ask the running stack (if any) which services it gave up restarting, or keeps restarting."""
    from ..control import request

    name = "crashing services"
    try:
        status = request(Path(ctx.config.project.state_dir), "status", timeout=5)
    except DevstackError:
        return Check(name, OK, "no stack is running for this project")
    except OSError as exc:
        return Check(name, WARN, f"the running stack did not answer ({exc})", "run `devstack status`")
    failing = {n: s for n, s in status.get("services", {}).items()
               if s.get("state") in ("crashed", "backoff") and not s.get("held")}
    if not failing:
        return Check(name, OK, "every service of the running stack is up or stopped on purpose")
    first, s = next(iter(failing.items()))
    states = ", ".join(f"{n} {v['state']} ({v['restarts']} restarts)" for n, v in failing.items())
    return Check(name, FAIL, f"{states}; {first}: {s.get('last_error') or 'no error printed'}",
                 f"fix what the error says, then save a file or `devstack restart {first}`")


APP_ENV_CHECKS = (check_app_environment, check_crash_loops)
