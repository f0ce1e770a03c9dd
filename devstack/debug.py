"""`devstack debug worker|api [off]`: that service restarted under debugpy on a loopback port (the worker
in `-P solo`, one task at a time), for an IDE to attach. The rule lives here: `debug_spec` rewrites a
spec, `set_debug` switches a running engine (as `set_solo` does for the pool)."""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess

from .diagnose import interpreter_for
from .errors import DevstackError
from .preload import EXCLUDE_VAR, PRELOAD_VAR

__all__ = ["DEBUGGABLE", "DEFAULT_PORT", "debug_spec", "set_debug", "attach_help"]

DEBUGGABLE = ("worker", "api")
DEFAULT_PORT = 5678
HOST = "127.0.0.1"  # loopback only: debugpy runs any code its client sends
MODULES = {"worker": "celery", "api": "flask"}


def _split(argv: list[str], module: str) -> tuple[str | None, list[str]] | None:
    """(the python named in argv or None, the arguments after `celery`/`flask`), or None for another command."""
    if argv and os.path.basename(argv[0]) == module:
        return None, argv[1:]
    if len(argv) >= 3 and argv[1:3] == ["-m", module]:
        return argv[0], argv[3:]
    return None


def debug_spec(spec, port: int | None):
    """`spec` run as `python -m debugpy --listen 127.0.0.1:PORT -m celery|flask ...` (no port: unchanged).
    No warm spare: a spare would run the plain command. Nor does it write the preload list: what it loads is
    debugpy's too (its vendored pydevd, importable only under debugpy), and the next plain spare would fail on
    it. It still reports its project files, so a save still restarts it."""
    if port is None or spec.name not in MODULES:
        return spec
    module = MODULES[spec.name]
    split = _split(spec.argv, module)
    if split is None:
        raise DevstackError(f"`devstack debug {spec.name}` wraps the `{module}` command devstack builds, but "
                            f"[{spec.name}] command is set ({' '.join(spec.argv)}). Fix: remove [{spec.name}] command "
                            f"(use [{spec.name}] args for extra flags), or start it under debugpy yourself.", 2)
    python, rest = split
    python = python or interpreter_for(spec.argv, spec.env.get("PATH"))
    argv = [python, "-m", "debugpy", "--listen", f"{HOST}:{port}", "-m", module, *rest]
    env = {key: value for key, value in spec.env.items() if key not in (PRELOAD_VAR, EXCLUDE_VAR)}
    return dataclasses.replace(spec, argv=argv, preload=(), env=env)


def _free_port(wanted: int | None, taken: set[int]) -> int:
    candidates = [wanted] if wanted else range(DEFAULT_PORT, DEFAULT_PORT + 20)
    for port in candidates:
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
                return port
            except OSError:
                continue
    raise DevstackError(f"no free debug port on {HOST}: {wanted or f'{DEFAULT_PORT}-{DEFAULT_PORT + 19}'} "
                        "in use. Fix: `devstack debug NAME --port N` with a free port.", 1)


def check_debugpy(spec) -> None:
    """debugpy must be importable by the Python that runs the app, not devstack's (they may differ)."""
    python = _split(spec.argv, MODULES[spec.name])
    python = (python and python[0]) or interpreter_for(spec.argv, spec.env.get("PATH"))
    if python is None:
        raise DevstackError(f"cannot tell which Python runs {spec.name} ({spec.argv[0]}). Fix: set [project] python.", 1)
    done = subprocess.run([python, "-c", "import debugpy"], capture_output=True, text=True, env=spec.env,
                          cwd=spec.cwd, timeout=30)
    if done.returncode != 0:
        raise DevstackError(f"debugpy is not installed for the app's Python ({python}), so {spec.name} cannot run "
                            f"under it. Fix: `{python} -m pip install debugpy` (into devstack's own environment: "
                            "`pip install 'devstack[debug]'`), then `devstack debug " + spec.name + "` again.", 1)


async def set_debug(engine, name: str, on: bool, port: int | None = None) -> dict:
    """Restart `name` under debugpy (on) or as usual (off); {"service", "debug": port or None, "pid"}."""
    import asyncio

    if name not in DEBUGGABLE:
        raise DevstackError(f"`devstack debug` runs the worker or the api under debugpy, not {name!r}.", 2)
    service = engine.services.get(name)
    if service is None:
        raise DevstackError(f"this stack runs no {name} ([{name}] enabled = false in devstack.toml)", 1)
    if on:
        current = engine.debug_ports.get(name)  # bound by the process about to be replaced: kept
        chosen = current if current is not None and port in (None, current) else \
            _free_port(port, {p for n, p in engine.debug_ports.items() if n != name})
        spec = debug_spec(engine.spec_for(name), chosen)  # checked with what would run
        await asyncio.get_running_loop().run_in_executor(None, check_debugpy, spec)
        engine.debug_ports[name] = chosen
    elif engine.debug_ports.pop(name, None) is None:
        return {"service": name, "debug": None, "pid": service.pid, "changed": False}
    label = f"under debugpy on {HOST}:{engine.debug_ports[name]}" if on else "without the debugger"
    engine.notice(f"{name} restarting {label}" + (" (-P solo: one task at a time)" if on and name == "worker" else ""))
    await service.stop()
    service.respec(engine.spec_for(name))
    service.count_restart()
    service.start()
    await service.wait_settled(60)
    return {"service": name, "debug": engine.debug_ports.get(name), "pid": service.pid, "changed": True,
            "cwd": str(service.spec.cwd)}


def attach_help(result: dict) -> str:
    """What to paste into the IDE for `result` (set_debug's answer)."""
    name, port = result["service"], result["debug"]
    if port is None:
        return f"{name} runs without the debugger" + ("" if result.get("changed") else " (it was not under it)")
    launch = {"name": f"devstack: attach {name}", "type": "debugpy", "request": "attach",
              "connect": {"host": HOST, "port": port}, "justMyCode": False,
              "pathMappings": [{"localRoot": "${workspaceFolder}", "remoteRoot": result.get("cwd") or "."}]}
    return "\n".join([
        f"{name} runs under debugpy on {HOST}:{port} (pid {result.get('pid')})"
        + ("; -P solo: one task at a time" if name == "worker" else ""),
        "",
        "VS Code: add to .vscode/launch.json \"configurations\", then Run and Debug -> this entry:",
        json.dumps(launch, indent=2),
        "",
        f"PyCharm: Run -> Attach to Process... -> pid {result.get('pid')} (PyCharm attaches its own debugger; the "
        f"debugpy port {port} serves VS Code and other DAP clients such as nvim-dap).",
        f"Back to normal: `devstack debug {name} off`.",
    ])
