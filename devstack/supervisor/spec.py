"""ServiceSpec: everything needed to run one service, built by the engine (and redis_server) from the config."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..probes import Probe


@dataclass
class ServiceSpec:
    """Everything needed to run one service; built by the engine from the configuration."""

    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    probe: Probe = field(default_factory=Probe)
    depends_on: list[str] = field(default_factory=list)
    stop_timeout: float = 5.0
    term_main_only: bool = False  # Celery worker: SIGTERM to the main process only = warm shutdown
    stdin_pipe: bool = False  # keep a pipe to stdin (pdb in a solo worker)
    autorestart: bool = True
    stop_hook: Callable[[], "asyncio.Future"] | None = None  # e.g. `docker rm -f` after the client exits
    preload: tuple[str, ...] = ()  # modules a warm spare imports ahead of the next (re)start; () = no spare

    def fingerprint(self) -> tuple:
        """The settings a restart applies: two specs with equal fingerprints run the same process."""
        return tuple(self.argv), tuple(sorted(self.env.items())), str(self.cwd), self.stop_timeout
