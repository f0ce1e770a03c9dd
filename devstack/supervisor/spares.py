"""Warm spares: a guard whose child already imported a service's libraries, waiting to run its next start."""
from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass

from .guard_client import launch_guard, send_go
from .spec import ServiceSpec

_NO_SPARE_POOLS = {"gevent", "eventlet"}  # they must monkey-patch before anything is imported


def spare_interpreter(spec: ServiceSpec) -> tuple[str, str] | None:
    """(interpreter, script) when the service is a Python console script a warm spare can run in-process.

    Only for an absolute `#!/path/to/python` shebang: the spare then runs under exactly the interpreter
    (and virtualenv) the script would have used. Anything else just starts cold.
    """
    if not spec.preload or not spec.argv:
        return None
    argv = spec.argv
    pools = {a.split("=", 1)[1] for a in argv if a.startswith("--pool=")}
    pools |= {argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-P", "--pool")}
    if pools & _NO_SPARE_POOLS:
        return None
    script = shutil.which(argv[0], path=spec.env.get("PATH"))
    if not script:
        return None
    try:
        with open(script, "rb") as f:
            first = f.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    parts = first[2:].decode(errors="replace").split()
    if len(parts) != 1 or not os.path.isabs(parts[0]) or "python" not in os.path.basename(parts[0]):
        return None
    return parts[0], os.path.abspath(script)


@dataclass
class Spare:
    """A guard whose child already imported the service's libraries and waits for "go"."""

    process: asyncio.subprocess.Process
    go_w: int
    report_r: int
    spec: ServiceSpec  # what it was prepared for: its guard's command line shows exactly this argv
    script: str

    def usable_for(self, spec: ServiceSpec) -> bool:
        mine = self.spec
        return (self.process.returncode is None and spec.argv == mine.argv and spec.env == mine.env
                and str(spec.cwd) == str(mine.cwd) and spec.stdin_pipe == mine.stdin_pipe)

    def go(self, spec: ServiceSpec) -> bool:
        """Run `spec` in this spare now. False (and discarded) if the spare died meanwhile: start cold."""
        try:
            send_go(self.go_w, spec, self.script)
        except OSError:
            self.discard()
            return False
        return True

    def discard(self) -> None:
        for fd in (self.go_w, self.report_r):
            try:
                os.close(fd)
            except OSError:
                pass
        # EOF on "go": the spare exits by itself; reap its guard so no zombie is left.
        asyncio.get_running_loop().create_task(self.process.wait())


async def launch_spare(spec: ServiceSpec, lifeline_fd: int) -> Spare | None:
    """Start a warm spare prepared for `spec`; None if the service cannot have one (or it failed to start)."""
    found = spare_interpreter(spec)
    if found is None:
        return None
    interpreter, script = found
    go_r, go_w = os.pipe()
    try:
        process, report_r = await launch_guard(
            spec, [interpreter], ["--spare", str(go_r), "--preload", ",".join(spec.preload)], lifeline_fd, (go_r,))
    except OSError:
        os.close(go_w)
        return None
    finally:
        os.close(go_r)
    return Spare(process, go_w, report_r, spec, script)
