"""The parent side of the guard protocol (devstack/guard.py is the child side): launch a guard, read
the service pid it reports, tell a warm spare to go."""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from .output import MAX_LINE
from .spec import ServiceSpec

GUARD = str(Path(__file__).resolve().parent.parent / "guard.py")


async def launch_guard(spec: ServiceSpec, interpreter: list[str], extra: list[str], lifeline_fd: int,
                       extra_fds: tuple[int, ...] = ()) -> tuple[asyncio.subprocess.Process, int]:
    """Start a guard for `spec`; returns (process, fd the guard reports the service's pid on)."""
    report_r, report_w = os.pipe()
    argv = [*interpreter, GUARD, "--lifeline", str(lifeline_fd), "--report", str(report_w),
            "--parent", str(os.getpid()), "--grace", "2", *extra, "--", *spec.argv]
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=spec.cwd, env=spec.env,
            stdin=asyncio.subprocess.PIPE if spec.stdin_pipe else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            pass_fds=(lifeline_fd, report_w, *extra_fds), limit=MAX_LINE * 2,
        )
    except BaseException:
        os.close(report_r)
        raise
    finally:
        os.close(report_w)
    return process, report_r


def send_go(go_fd: int, spec: ServiceSpec, script: str) -> None:
    """Tell a waiting spare what to run (the "go" message), then close its pipe. Raises OSError if it died."""
    go = {"argv": spec.argv, "env": spec.env, "cwd": str(spec.cwd), "script": script}
    os.write(go_fd, json.dumps(go).encode())  # far below the pipe buffer: never blocks
    os.close(go_fd)


async def read_reported_pid(fd: int) -> int | None:
    """The service pid the guard writes to its report fd (None if it exec'd nothing)."""
    data = await _read_until_eof(fd)
    return int(data) if data.strip().isdigit() else None


async def _read_until_eof(fd: int) -> str:
    """Read a pipe to EOF on the event loop itself. Not in an executor thread: when the shared pool is
    busy (readiness pings, Redis polls) a spawn would wait for a free thread, with its pid unknown."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    chunks: list[bytes] = []
    os.set_blocking(fd, False)

    def on_readable() -> None:
        try:
            data = os.read(fd, 64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            chunks.append(data)
        elif not done.done():
            done.set_result(None)

    loop.add_reader(fd, on_readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return b"".join(chunks).decode()
