"""The words of `devstack doctor`: a :class:`Check` (one line: OK / WARN / FAIL and the fix) and the report."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..secrets import mask

OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclass
class Check:
    """One line of `devstack doctor`: what was checked, how it went, and what to do about it."""

    name: str
    level: str  # OK | WARN | FAIL
    message: str
    fix: str = ""


def format_report(checks: list[Check], secrets: Iterable[str] = ()) -> str:
    lines = []
    for c in checks:
        lines.append(mask(f"{c.level:<4} {c.name}: {c.message}", secrets))
        if c.fix and c.level != OK:
            lines.append(mask(f"     fix: {c.fix}", secrets))
    fails = sum(c.level == FAIL for c in checks)
    warns = sum(c.level == WARN for c in checks)
    lines.append(f"{fails} failed, {warns} warning(s), {len(checks) - fails - warns} ok")
    return "\n".join(lines)
