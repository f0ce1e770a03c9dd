"""AttachedRedis: the redis service in external mode, nothing to launch, ready once PING answers."""
from __future__ import annotations

import asyncio
import time

from .events import EventBus, Notice, State, StateChanged
from .probes import RedisProbe, SentinelProbe
from .redis_server import RedisEndpoint

ATTACH_PATIENCE = 3.0  # seconds an external Redis may take before devstack says it does not answer


class AttachedRedis:
    """Stands in for the redis service in external mode (a `Supervised`): ready once PING answers."""

    name = "redis"

    def __init__(self, endpoint: RedisEndpoint, bus: EventBus):
        self.endpoint, self.bus = endpoint, bus
        self.state = State.STOPPED
        self.ready_event = asyncio.Event()
        self.pid = None
        self.restarts = 0
        self.exit_code = None
        self.started_at = None
        self.held = False
        self.probe = SentinelProbe(endpoint) if endpoint.is_sentinel else RedisProbe(endpoint.connect_kwargs())

    def start(self) -> None:
        self.held = False
        asyncio.get_running_loop().create_task(self._attach())

    async def _attach(self) -> None:
        self.state = State.STARTING
        self.bus.emit(StateChanged("redis", State.STARTING, detail=f"connecting to {self.endpoint.describe()}"))
        probe = self.probe
        waiting = asyncio.ensure_future(probe.wait())
        done, _ = await asyncio.wait({waiting}, timeout=ATTACH_PATIENCE)
        if not done:  # say what is wrong instead of sitting in "starting"; keep trying meanwhile
            self.bus.emit(Notice(
                f"the external Redis ({self.endpoint.describe()}) does not answer yet: "
                f"{probe.last_error or 'no answer'}. devstack keeps trying; the apps start once it answers. "
                f"Check [redis] url (and master_name), or that the server is running.", "warning", "redis"))
            await waiting
        if self.endpoint.master is not None:
            host, port = self.endpoint.master
            self.bus.emit(Notice(f"the sentinels name {host}:{port} as master {self.endpoint.master_name!r}",
                                 service="redis"))
        self.state = State.READY
        self.started_at = time.time()
        self.ready_event.set()
        self.bus.emit(StateChanged("redis", State.READY, detail="external Redis answers PING"))

    async def stop(self) -> None:
        self.state = State.STOPPED
        self.bus.emit(StateChanged("redis", State.STOPPED))

    async def restart(self) -> None:
        return None

    def hold(self) -> None:
        """Nothing restarts by itself here."""

    def close(self) -> None:
        """No log file: the external server's output is not ours."""

    async def wait_ready(self) -> None:
        await self.ready_event.wait()

    async def wait_spawned(self) -> None:
        """Nothing to spawn."""

    def send_input(self, text: str) -> bool:
        return False

    @property
    def running(self) -> bool:
        return self.state == State.READY

    def status(self) -> dict:
        return {"state": self.state.value, "pid": None, "ready": self.state == State.READY, "restarts": 0,
                "exit_code": None, "command": [], "uptime": None, "backoff_until": None,
                "last_error": None, "held": self.held}
