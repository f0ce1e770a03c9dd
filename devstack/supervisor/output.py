"""A child's output: read in bounded chunks, cut into capped lines, cleaned and masked, logged to a rotating file."""
from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Callable

MAX_LINE = 16 * 1024  # longer lines are cut (and marked): a child that never prints "\n" can't eat memory
PARTIAL_FLUSH = 0.15  # a prompt without newline ("(Pdb) ", "Password:") shows after this long
READ_CHUNK = 8192  # per read: bounds the work one flooding child does per event-loop turn (TUI keys stay < 100 ms)
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_line(raw: bytes, secrets: tuple[str, ...] = ()) -> str:
    """Bytes from a child -> one safe line of text: decoded, ANSI stripped, control chars shown, secrets masked."""
    text = raw.decode("utf-8", errors="replace").rstrip("\r")
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    text = _CONTROL.sub("\ufffd", text)
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


def clean_lines(raw_lines: list[bytes], secrets: tuple[str, ...] = ()) -> list[str]:
    """`clean_line` for each, after cutting any line over MAX_LINE (marked with its real length)."""
    lines = []
    for raw in raw_lines:
        if len(raw) > MAX_LINE:
            raw = raw[:MAX_LINE] + f" … [line cut: {len(raw)} bytes]".encode()
        lines.append(clean_line(raw, secrets))
    return lines


async def read_output(stream: asyncio.StreamReader, emit: Callable[[list[bytes]], None]) -> None:
    """Read `stream` to EOF, handing `emit` the raw lines of each chunk (a pending partial line after
    PARTIAL_FLUSH seconds of silence, so prompts show)."""
    partial = b""
    while True:
        try:
            if partial:
                chunk = await asyncio.wait_for(stream.read(READ_CHUNK), PARTIAL_FLUSH)
            else:
                chunk = await stream.read(READ_CHUNK)
        except asyncio.TimeoutError:
            emit([partial])  # a prompt without a newline: show it now
            partial = b""
            continue
        if not chunk:
            if partial:
                emit([partial])
            return
        parts = (partial + chunk).split(b"\n")
        partial = parts.pop()
        if len(partial) > MAX_LINE:
            parts.append(partial)
            partial = b""
        if parts:
            emit(parts)


class LogFile:
    """Append-only log of one service, rotated at `max_bytes` keeping `keep` old files."""

    def __init__(self, path: Path, max_bytes: int = 10 * 1024 * 1024, keep: int = 3):
        self.path, self.max_bytes, self.keep = path, max_bytes, keep
        self._file = None
        self._size = 0
        self.failed: str | None = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8", errors="replace")
        self._size = self._file.tell()

    def _rotate(self) -> None:
        self._file.close()
        for i in range(self.keep, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i - 1}" if i > 1 else self.path.name)
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i}"))
        self._open()

    def write(self, lines: list[str]) -> str | None:
        """Write lines; return an error message the first time writing fails (disk full, permissions)."""
        if self.failed:
            return None
        try:
            if self._file is None:
                self._open()
            data = "".join(line + "\n" for line in lines)
            self._file.write(data)
            self._file.flush()
            self._size += len(data)
            if self._size >= self.max_bytes:
                self._rotate()
        except OSError as exc:
            self.failed = f"cannot write {self.path}: {exc.strerror}. Lines still reach the screen; free space or fix permissions, then restart the service."
            return self.failed
        return None

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
