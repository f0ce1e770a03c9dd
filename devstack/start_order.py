"""When a service may start: its command exists, its one-shot steps (`oneshot = true`) succeeded."""
from __future__ import annotations

import os
import shutil
from typing import Callable, Mapping

from .events import LogLine, State, StateChanged
from .supervisor import Service, ServiceSpec


def missing_command(spec: ServiceSpec) -> str | None:
    """Why `spec`'s command cannot run (not found, not executable), with the fix; None when it can."""
    exe = spec.argv[0]
    if os.sep in exe:
        return None if os.access(exe, os.X_OK) else f"{spec.name}: {exe} is not an executable file. Fix the `command` of [{spec.name}]."
    if shutil.which(exe, path=spec.env.get("PATH")):
        return None
    return (f"{spec.name}: command {exe!r} was not found on PATH. Fix: install it in the environment "
            f"devstack runs in (e.g. `pip install {exe}`), or set the full path in the service's `command`.")


def block_dependents(services: Mapping[str, object], name: str, why: str) -> None:
    """Mark every service waiting (directly or not) for `name` as not started, saying why."""
    blocked = {name}
    while more := [n for n, s in services.items() if n not in blocked and isinstance(s, Service)
                   and not s.running and blocked & set(s.spec.depends_on)]:
        for other in more:
            blocked.add(other)
            services[other].fail_to_start(
                f"{other} not started: {name} {why}. Fix {name} (`devstack logs {name}`), then "
                f"`devstack restart {name}`: {other} starts once it succeeds.", State.BLOCKED)


class OneshotWatcher:
    """An event-bus subscriber judging one oneshot step: exit 0 counts as ready (its dependents start); a
    failure shows the step `failed` with its exit code and last output line, and its dependents `blocked`
    with the reason. A rerun (`devstack restart STEP`) is judged again.

    Once spawned the step is held (as at shutdown), so its exit ends its run as "stopped" with the exit
    code, never as a crash or a restart; the code is judged here."""

    def __init__(self, step: Service, notice: Callable[..., None], block: Callable[[str], None],
                 closing: Callable[[], bool]):
        self.step, self.notice, self.block, self.closing = step, notice, block, closing
        self.running = False
        self.last_line = ""  # the step's last non-blank output line: usually what went wrong

    def __call__(self, event) -> None:
        step = self.step
        if isinstance(event, LogLine) and event.service == step.name and event.text.strip():
            self.last_line = event.text.strip()
        if self.closing() or not isinstance(event, StateChanged) or event.service != step.name:
            return
        if event.state == State.STARTING and event.pid:
            self.running, self.last_line = True, ""
            step.hold()
        elif event.state == State.STOPPED and self.running:
            self.running = False
            if event.exit_code == 0:
                step.ready_event.set()
                self.notice(f"{step.name} done (exited with code 0)", service=step.name)
            else:
                why = "was stopped" if event.exit_code is None else f"exited with code {event.exit_code}"
                said = f": {self.last_line[:200]}" if self.last_line and event.exit_code is not None else ""
                step.fail_to_start(f"{step.name} {why}{said}", State.FAILED)
                self.block(why)
