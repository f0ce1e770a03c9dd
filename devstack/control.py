"""The control socket: how `devstack status/restart/stop/start/solo/logs -f/down` reach a running stack.

A Unix socket in the state directory (mode 0600; connections from other users are refused by peer
credentials). One JSON request line in; JSON lines out: `{"ok": true, "result": ...}` or
`{"ok": false, "error": "..."}`, or a stream of `{"event": ...}` lines for `follow`.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
from typing import Awaitable, Callable

from .errors import DevstackError
from .events import LogLine, Notice, StateChanged
from .control_client import RENDERED, connect, request, socket_path  # noqa: F401  (the client side lives there)
from .control_commands import status_text

RENDERERS = {"status": status_text}
"""The commands whose result the stack renders itself when asked (``render``: see control_client.request_rendered)."""


def event_to_dict(event) -> dict:
    if isinstance(event, LogLine):
        return {"type": "log", "service": event.service, "text": event.text, "time": event.time}
    if isinstance(event, StateChanged):
        return {"type": "state", "service": event.service, "state": event.state.value, "pid": event.pid,
                "exit_code": event.exit_code, "detail": event.detail}
    if isinstance(event, Notice):
        return {"type": "notice", "service": event.service, "text": event.text, "level": event.level,
                "time": event.time}
    return {"type": "unknown"}


class ControlServer:
    """Serves the commands of `stack` (a `devstack.api.Stack`: the same face the TUI uses)."""

    def __init__(self, stack, request_shutdown: Callable[[], None]):
        self.stack = stack
        self.request_shutdown = request_shutdown
        self.path = socket_path(stack.state_dir)
        self._server: asyncio.AbstractServer | None = None
        self.commands: dict[str, Callable[[list[str]], Awaitable]] = {
            "status": self._status, "restart": self._restart, "stop": self._stop, "start": self._start,
            "solo": self._solo, "down": self._down, "input": self._input,
            "requeue": self._requeue,
            "tasks": self._tasks, "task": self._task, "replay": self._replay, "revoke": self._revoke,
            "tasks_clear": self._tasks_clear,
            "failover": lambda args: self.stack.failover(), "kill": self._kill,
            "beat": lambda args: self._blocking(self.stack.beat),
            "beat_run": lambda args: self._blocking(self.stack.beat_run, args[0]),
            "debug": lambda args: self.stack.set_debug(args[0], bool(args[1]), args[2] if len(args) > 2 else None),
        }

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)
        old_umask = os.umask(0o177)  # the socket is created 0600: no window where others could connect
        try:
            self._server = await asyncio.start_unix_server(self._handle, path=str(self.path))
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self.path.unlink(missing_ok=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                                   struct.calcsize("3i")))
            if uid != os.getuid():
                await self._reply(writer, {"ok": False, "error": "refused: the stack belongs to another user"})
                return
            line = await reader.readline()
            request = json.loads(line or b"{}")
            cmd, args = request.get("cmd"), list(request.get("args", []))
            if cmd == "follow":
                await self._follow(args, writer)
                return
            handler = self.commands.get(cmd)
            if handler is None:
                await self._reply(writer, {"ok": False, "error": f"unknown command {cmd!r}"})
                return
            try:
                result = await handler(args)
                render = RENDERERS.get(cmd) if request.get("render") in ("json", "text") else None
                if render is not None:
                    text = render(result, request["render"] == "json")
                    writer.write(RENDERED + text.encode())  # control_client.request_rendered prints it as is
                    await writer.drain()
                    return
                await self._reply(writer, {"ok": True, "result": result})
            except DevstackError as exc:
                await self._reply(writer, {"ok": False, "error": exc.message})
        except (ConnectionError, ValueError, OSError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def _reply(self, writer: asyncio.StreamWriter, payload: dict) -> None:
        writer.write(json.dumps(payload).encode() + b"\n")
        await writer.drain()

    async def _status(self, args):
        return self.stack.status()

    async def _restart(self, args):
        return await self.stack.restart(args)

    async def _stop(self, args):
        return await self.stack.stop(args)

    async def _start(self, args):
        return await self.stack.start_services(args)

    async def _solo(self, args):
        on = {"on": True, "off": False}.get(args[0]) if args else None
        return await self.stack.set_solo(on)

    async def _requeue(self, args):
        return await self.stack.requeue()

    async def _blocking(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def _tasks(self, args):
        state, name, limit = (list(args) + [None, None, 100])[:3]
        return await self._blocking(self.stack.tasks, state, name, int(limit or 100))

    async def _task(self, args):
        return await self._blocking(self.stack.task, args[0])

    async def _replay(self, args):
        return await self._blocking(self.stack.replay, args[0], args[1] if len(args) > 1 else None)

    async def _revoke(self, args):
        task_id, terminate, signal = (list(args) + [False, "TERM"])[:3]
        return await self._blocking(self.stack.revoke, task_id, bool(terminate), signal)

    async def _tasks_clear(self, args):
        return await self._blocking(self.stack.clear_tasks)

    async def _kill(self, args):
        return self.stack.kill_node(args[0], bool(args[1]) if len(args) > 1 else False)

    async def _down(self, args):
        self.request_shutdown()
        return "stopping"

    async def _input(self, args):
        name, text = args[0], args[1]
        if not self.stack.send_input(name, text):
            raise DevstackError(f"{name} has no stdin pipe or is not running", 1)
        return True

    async def _follow(self, args: list[str], writer: asyncio.StreamWriter) -> None:
        wanted = set(args)
        queue, unsubscribe = self.stack.event_queue(maxsize=10000)
        try:
            while True:
                event = await queue.get()
                name = getattr(event, "service", None)
                if wanted and name not in wanted:
                    continue
                writer.write(json.dumps({"event": event_to_dict(event)}).encode() + b"\n")
                await writer.drain()
        finally:
            unsubscribe()
