"""Running `devstack doctor`: gather the context once, run every check, mask what they say."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from ..secrets import mask
from .checks import CHECKS
from .context import Context, build_context
from .report import WARN, Check


def run_doctor(config, environ: dict[str, str] | None = None, *, timeout: float = 1.0,
               checks: Iterable[Callable[[Context], Check]] = CHECKS,
               inotify_limit_path: Path | None = None) -> tuple[list[Check], set[str]]:
    """Every check against the configured stack; returns the checks and the secrets to mask on output."""
    ctx = build_context(config, environ, timeout=timeout)
    if inotify_limit_path is not None:
        ctx.inotify_limit_files = ((inotify_limit_path, "fs.inotify.max_user_watches"),)  # a stand-in file
    results = []
    for check in checks:
        try:
            results.append(check(ctx))
        except Exception as exc:  # one broken check must not hide the others' answers
            results.append(Check(check.__name__.removeprefix("check_").replace("_", " "), WARN,
                                 f"this check could not run ({type(exc).__name__})",
                                 "report it with `devstack --version` and the lines above"))
    secrets = ctx.secrets()
    return [Check(c.name, c.level, mask(c.message, secrets), mask(c.fix, secrets)) for c in results], secrets
