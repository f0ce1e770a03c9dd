"""Whether the Python that would run the bundled demo has its `demo` extra (Flask): checked by `devstack up`
before anything starts, so a plain `pip install devstack` gets the fix instead of a crashing API."""
from __future__ import annotations

import importlib.util
import os
import subprocess

from .environment import interpreter
from .errors import DevstackError

DEMO_NEEDS = ("flask",)  # gevent is in the extra too, but only a `-P gevent` worker needs it
INSTALL = 'pip install "devstack[demo]"'
TOOL_INSTALL = 'uv tool install "devstack[demo]"` or `pipx install "devstack[demo]"'
_PROBE = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec(sys.argv[1]) else 1)"


def missing_modules(python: str, own: bool, names=DEMO_NEEDS) -> list[str]:
    """The modules of `names` that `python` cannot import (devstack's own one is asked in-process)."""
    if own:
        return [n for n in names if importlib.util.find_spec(n) is None]
    missing = []
    for name in names:
        try:
            done = subprocess.run([python, "-c", _PROBE, name], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return list(names)
        if done.returncode != 0:
            missing.append(name)
    return missing


def check_demo_extra(config, environ=os.environ) -> None:
    """Raise a DevstackError with the install command when the demo cannot run; nothing for an app's config."""
    if not config.is_demo:
        return
    python = interpreter(config, environ)
    missing = missing_modules(python.python, python.own)
    if not missing:
        return
    what = ", ".join(missing)
    if python.own:
        fix = f"`{INSTALL}` (installed as a tool: `{TOOL_INSTALL}`)"
    else:
        fix = f"`{python.python} -m pip install {what}`, or leave that virtualenv ({python.source}) first"
    raise DevstackError(
        f"no devstack.toml found here or in a parent folder, so `devstack up` would run the bundled demo, "
        f"which needs {what} (the `demo` extra); {python.python} has no {what}. Fix: {fix}. "
        f"To run your own app instead, write its devstack.toml (`devstack init` in its folder).", 1)
