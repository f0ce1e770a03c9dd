"""The engine: turns a Config into a running stack and exposes the commands every front-end uses.

Public API (the TUI, the headless printer and the control socket use only this):
    engine = Engine(config, solo=False)
    engine.bus.subscribe(callback)            # LogLine / StateChanged / Notice events
    await engine.start()                      # Redis first, then the rest in parallel as deps get ready
    await engine.restart([...]) / stop([...]) / start_services([...]) / set_solo(True|False|None)
    engine.send_input("worker", "p x")        # pdb in a solo worker
    engine.status()                           # the dict behind `devstack status --json`
    await engine.shutdown()                   # reverse order, warm worker shutdown
"""
from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from urllib.parse import quote

from . import app_specs, environment, module_report
from .debug import debug_spec
from .errors import DevstackError
from .events import EventBus, Notice, State, StateChanged
from .attached import AttachedRedis
from .auto_requeue import AutoRequeue
from .ports import choose_port, moved_notice
from .redis_server import RedisEndpoint, remove_stale_containers
from .resp import redis_version
from .start_order import OneshotWatcher, block_dependents, missing_command
from .state import ProcessRecord, StackLock, cleanup_stale, prepare_state_dir
from .supervised import Supervised
from .supervisor import Service, ServiceSpec
from .topology import node_ports, plan_topology

APP_SERVICES = ("api", "worker", "beat")
RESTART_TIMEOUT = 60.0  # `devstack restart` waits this long for readiness (the control client waits 120 s)


class Engine:
    def __init__(self, config, *, solo: bool = False, environ: dict[str, str] | None = None):
        self.config = config
        self.solo = solo
        self.debug_ports: dict[str, int] = {}  # service -> debugpy port (`devstack debug`, devstack/debug.py)
        self.environ = dict(os.environ if environ is None else environ)
        self.bus = EventBus()
        self.services: dict[str, Supervised] = {}  # every app service is a Service (see _app)
        self.state_dir: Path = Path(config.project.state_dir)
        self.endpoint: RedisEndpoint | None = None
        self.redis_nodes: tuple[str, ...] = ("redis",)  # every Redis node of the topology, `redis` first
        self.redis_version: str | None = None
        self.secrets: tuple[str, ...] = ()
        self.started_at = time.time()
        self._lock: StackLock | None = None
        self._record: ProcessRecord | None = None
        self._lifeline_r = self._lifeline_w = -1
        self._closing = False
        self._tasks: set[asyncio.Task] = set()
        self.env_file_vars: dict[str, str] = {}
        self.reloader = None  # devstack.reload.Reloader once started ([reload] enabled)
        self.worker_generation = 1  # each hot reload of the worker starts a new generation (its own nodename)
        self.draining: dict[str, Service] = {}  # old worker generations finishing their tasks, by label
        self._drains: set[asyncio.Task] = set()  # not cancelled at shutdown: they end by themselves
        self.auto_requeue = AutoRequeue(lambda: self._stale_unacked(True), lambda: bool(self.draining) or self._closing,
                                        lambda: self.config.worker.auto_requeue, self.notice, self._spawn_task)

    # ----- start-up ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Prepare state, launch Redis, then every other service as soon as what it needs is ready."""
        prepare_state_dir(self.state_dir)
        self._lock = StackLock(self.state_dir)
        self._lock.acquire()
        stale = cleanup_stale(self.state_dir)
        if stale:
            self.notice(f"stopped processes a previous, killed run left behind: {', '.join(stale)}", "warning")
        if self.config.redis.mode == "docker":
            removed = await remove_stale_containers(self.state_dir, self.environ)
            if removed:
                self.notice(f"removed {removed} stale Docker container(s) of this project", "warning")
        self._record = ProcessRecord(self.state_dir)
        self._lifeline_r, self._lifeline_w = os.pipe()
        os.set_inheritable(self._lifeline_r, False)

        self.env_file_vars = environment.env_file_vars(self.config)
        password = environment.stack_password(self.config, self.environ, self.env_file_vars)
        base_env = {**self.env_file_vars, **self.environ}
        self.endpoint, redis_specs = plan_topology(self.config.redis, self.state_dir, password, base_env)
        known = [p for p in (self.endpoint.password, self.endpoint.sentinel_password) if p]
        self.secrets = tuple({*known, *(quote(p, safe="") for p in known)})
        self._check_app_ports()

        if not redis_specs:
            self.services["redis"] = AttachedRedis(self.endpoint, self.bus)
        for redis_spec in redis_specs:
            redis_spec.env = self._child_env({})
            self.services[redis_spec.name] = self._make_service(redis_spec)
        self.redis_nodes = tuple(s.name for s in redis_specs) or ("redis",)
        for spec in self._app_specs():
            self.services[spec.name] = self._make_service(spec)

        self.bus.subscribe(self._tell_about_redis)
        # Known errors in a child's output become one notice per diagnosis per service (devstack doctor's detectors).
        from .diagnose import LogDiagnoser

        self.bus.subscribe(LogDiagnoser(self.notice))
        self.bus.subscribe(self.auto_requeue)
        self.notice(f"state in {self.state_dir}; Redis: {self.endpoint.describe()} (password protected)")
        for name, service in self.services.items():
            if name in self.redis_nodes:
                service.start()
            else:
                self._spawn_task(self._start_when_ready(service))
        self._spawn_task(self._read_redis_version())
        self._spawn_task(self._warm_ping_import())
        if self.config.reload.enabled:
            from .reload import Reloader

            self.reloader = Reloader(self)
            self._spawn_task(self._start_reloader())

    def _tell_about_redis(self, event) -> None:
        """A Redis that dies under the stack is restarted by its supervisor; the apps need to know why
        they see connection errors meanwhile."""
        if not isinstance(event, StateChanged) or event.service != "redis" or self._closing:
            return
        if event.state == State.BACKOFF:
            others = ", ".join(n for n in self.services if n != "redis")
            self.notice(f"Redis went away ({event.detail}). {others} will see connection errors until it is "
                        "back; Celery and redis-py reconnect by themselves. Data is kept (appendonly).", "warning")
        elif event.state == State.READY and event.restarts:
            self.notice("Redis is back and answers PING; the other services reconnect on their own.")

    def _make_service(self, spec: ServiceSpec) -> Service:
        service = Service(spec, self.bus, self.state_dir / "logs", self._lifeline_r, self.secrets,
                          on_pid=self._record_pid, crash_limit=self.config.project.crash_limit)
        if spec.name == "worker":  # the next start is the next generation: prepare its spare for that
            service.spare_spec = lambda: self.worker_spec(self.worker_generation + 1)
        service.spare_gate = lambda: not any(other is not service and (other.state == State.STARTING or other.spare_busy)
                                             for name, other in self.services.items() if name not in self.redis_nodes)
        return service

    def _app(self, name: str) -> Service | None:
        """The app service `name`: every service but redis is launched by the engine (redis may be an
        AttachedRedis), so these are the ones whose spec and generations the engine changes."""
        return None if name in self.redis_nodes else self.services.get(name)

    def _record_pid(self, service: Service) -> None:
        if self._record is not None and service.pid:
            self._record.add(service.name, service.pid)
            if service.guard is not None:
                self._record.add(f"{service.name}-guard", service.guard.pid)

    def _check_app_ports(self) -> None:
        """The API's port, like Redis's (chosen by plan_redis), moves up when only defaulted and taken."""
        redis = self.config.redis
        if self.endpoint.mode != "external" and self.endpoint.port != redis.port:
            self.notice(moved_notice(redis.port, self.endpoint.port, "Redis", "[redis] port"), "warning")
        api = self.config.api
        if api.enabled and not api.command:
            port = choose_port(api.port, explicit="port" in api.model_fields_set, what="the API", key="[api] port")
            if port != api.port:
                self.notice(moved_notice(api.port, port, "the API", "[api] port") + f" API: http://127.0.0.1:{port}/",
                            "warning")
                api.port = port

    def _keep_chosen_port(self, config) -> None:
        """A re-read config that sets no API port keeps the port the API has (one _check_app_ports chose
        when the default was taken): restarting on the default would hit the same owner again."""
        if "port" not in config.api.model_fields_set:
            config.api.port = self.config.api.port

    async def _start_when_ready(self, service: Service) -> None:
        for dep in service.spec.depends_on:
            if dep in self.services:
                await self.services[dep].wait_ready()
        if self._closing:
            return
        missing = missing_command(service.spec)
        if missing:
            service.fail_to_start(missing)
            self._block_dependents(service.name, "could not start")
            return
        if self._is_oneshot(service.name):
            self.bus.subscribe(self._oneshot_watcher(service))
        service.start()

    def _is_oneshot(self, name: str) -> bool:
        proc = self.config.process.get(name)
        return bool(proc and proc.oneshot)

    def _oneshot_watcher(self, step: Service) -> OneshotWatcher:
        return OneshotWatcher(step, self.notice, lambda why: self._block_dependents(step.name, why),
                              lambda: self._closing)

    def _block_dependents(self, name: str, why: str) -> None:
        block_dependents(self.services, name, why)

    async def _start_reloader(self) -> None:
        """Watch files from the moment the apps are spawned, not before: starting the watchers costs
        ~50 ms of imports on the event loop, which would otherwise delay Redis's readiness and the spawns.
        The apps take far longer than that to import the code being watched."""
        apps = [s for name, s in self.services.items() if name != "redis"]
        try:
            await asyncio.wait_for(self.services["redis"].wait_ready(), 5)
            await asyncio.wait_for(asyncio.gather(*(s.wait_spawned() for s in apps)), 2)
        except asyncio.TimeoutError:
            pass  # Redis or an app is not up (yet): watch anyway, a fix to the code must still reload
        if not self._closing and self.reloader is not None:
            self.reloader.start()

    async def _warm_ping_import(self) -> None:
        """Warm up the worker's readiness ping (imports, a bare Celery app) once the apps are spawned,
        not before: on a 2-core laptop an import competing with the spawns delays the whole start."""
        worker = self._app("worker")
        if worker is None:
            return
        await worker.wait_spawned()
        broker = self.internal_broker_url(worker.spec.env.get("CELERY_BROKER_URL"))
        try:
            await asyncio.get_running_loop().run_in_executor(None, _warm_up_broker, broker)
        except Exception:
            pass  # only a head start: the ping itself reports real problems

    async def _read_redis_version(self) -> None:
        await self.services["redis"].wait_ready()
        self.redis_version = await redis_version(self.endpoint.connect_kwargs())

    # ----- specs --------------------------------------------------------------------------------------
    def _child_env(self, service_env: dict[str, str]) -> dict[str, str]:
        return environment.child_env(self.config, self.endpoint, self.environ, self.env_file_vars, service_env)

    def interpreter(self) -> app_specs.Interpreter:
        """The Python that runs flask/celery: the app's, not devstack's (see app_specs.choose_interpreter)."""
        return environment.interpreter(self.config, self.environ)

    def _app_specs(self) -> list[ServiceSpec]:
        cfg = self.config
        names = [n for n in APP_SERVICES if getattr(cfg, n).enabled]
        return [self.spec_for(n) for n in names + [n for n, proc in cfg.process.items() if proc.enabled]]

    def worker_pool(self) -> tuple[str, int | None]:
        w = self.config.worker
        return ("solo", 1) if self.solo or "worker" in self.debug_ports else (w.pool, w.concurrency)

    def worker_spec(self, generation: int | None = None) -> ServiceSpec:
        w = self.config.worker
        pool, concurrency = self.worker_pool()
        return self._reporting(app_specs.worker_spec(
            w, self._child_env(w.env), pool, concurrency, self.worker_generation if generation is None else generation,
            self.config.reload.preload, lambda node, broker: self._confirm_worker(node, self.internal_broker_url(broker)),
            self.interpreter()))

    def _reporting(self, spec: ServiceSpec) -> ServiceSpec:
        """With hot reload on, api/worker/beat report the project files they import: a change then
        restarts only the services that imported it (devstack/module_report.py)."""
        if self.config.reload.enabled and spec.name in module_report.REPORTING_SERVICES:
            spec.env = module_report.child_env(spec.env, spec.name, self.state_dir, Path(self.config.root),
                                               self.config.reload.preload, self.config.service(spec.name).preload_exclude)
        return debug_spec(spec, self.debug_ports.get(spec.name))  # under debugpy after `devstack debug`

    async def _confirm_worker(self, nodename: str, broker: str) -> None:
        """The `ready.` line says it consumes; a ping through the broker proves it answers."""
        from .broker import worker_ping

        loop = asyncio.get_running_loop()
        for _ in range(10):
            try:
                answers = await loop.run_in_executor(None, lambda: worker_ping(broker, [nodename], timeout=1.0))
                if answers.get(nodename):
                    return
            except Exception:
                pass
            await asyncio.sleep(0.2)
        self.notice(f"worker {nodename} logged ready but does not answer a ping through the broker", "warning")

    def spec_for(self, name: str) -> ServiceSpec:
        cfg = self.config
        if name == "worker":
            return self.worker_spec()
        if name == "api":
            return self._reporting(app_specs.api_spec(cfg.api, self._child_env(cfg.api.env), cfg.reload.preload,
                                                      self.interpreter()))
        if name == "beat":
            return self._reporting(app_specs.beat_spec(cfg.beat, cfg.worker.app, self._child_env(cfg.beat.env),
                                                       self.state_dir, cfg.reload.preload, self.interpreter()))
        proc = cfg.process[name]
        return app_specs.process_spec(name, proc, self._child_env(proc.env))

    # ----- commands -----------------------------------------------------------------------------------
    def resolve(self, names: list[str]) -> list[str]:
        if not names or names == ["all"]:
            return [n for n in self.services if n not in self.redis_nodes]
        unknown = [n for n in names if n not in self.services]
        if unknown:
            raise DevstackError(f"unknown service {', '.join(unknown)}; this stack runs: {', '.join(self.services)}", 2)
        return names

    async def restart(self, names: list[str]) -> None:
        """`devstack restart`, the TUI's w and r: the same overlap as a hot reload (`reload_service`): a new
        worker generation starts at once while the old one drains. Returns once each new one is ready and
        no old generation is left, so a restart costs the slower of the two instead of their sum. One that
        does not come back is said in a notice (and by its state: `devstack restart` prints it)."""
        names = self.resolve(names)
        if self.reloader is not None:
            self.reloader.resume(names)  # a manual restart ends a reload-storm pause
        draining = set(self._drains)
        ready = await asyncio.gather(*(self._restart_one(n) for n in names))
        await asyncio.gather(*(self._drains - draining), return_exceptions=True)
        for name, ok in zip(names, ready):
            if not ok:
                self.notice(f"restart: {name} did not come back within {RESTART_TIMEOUT:.0f} s "
                            f"({self.services[name].state.value}); `devstack logs {name}` shows why.", "error", name)

    async def _restart_one(self, name: str) -> bool:
        if self._app(name) is None:  # Redis: stopped and started again in place
            await self.services[name].restart()
            return True
        return await self.reload_service(name, RESTART_TIMEOUT) is not None

    async def stop(self, names: list[str]) -> None:
        """Stop and hold: neither a reload nor a config edit starts them again, only a start or restart."""
        names = self.resolve(names)
        await asyncio.gather(*(self.services[n].stop() for n in names))
        for n in names:
            self.services[n].held = True

    async def start_services(self, names: list[str]) -> None:
        for n in self.resolve(names):
            app = self._app(n)
            if app is not None:
                app.respec(self.spec_for(n))
            self.services[n].start()

    async def set_solo(self, on: bool | None = None) -> bool:
        """Switch the worker into (or out of) `-P solo -c 1` and restart it. Returns the new setting."""
        self.solo = (not self.solo) if on is None else on
        worker = self._app("worker")
        if worker is not None:
            pool, _ = self.worker_pool()
            self.notice(f"worker restarting with -P {pool}" + (" (solo: breakpoint() works)" if self.solo else ""))
            await worker.stop()
            worker.respec(self.worker_spec())
            worker.count_restart()
            worker.start()
        return self.solo

    # ----- hot reload (devstack/reload.py decides when; this does it: the engine is its ReloadTarget) --
    def service_names(self) -> list[str]:
        return list(self.services)

    def held(self, name: str) -> bool:
        """Stopped by a command: a reload must leave it stopped."""
        service = self.services.get(name)
        return bool(service is not None and service.held)

    def service_state(self, name: str) -> State | None:
        service = self.services.get(name)
        return service.state if service is not None else None

    def apply_config(self, config, env_file_vars: dict[str, str]) -> list[str]:
        """Switch to a re-read configuration (and env file); return the app services whose settings
        (argv, env, cwd) changed, which the caller restarts. A setting the running stack cannot apply
        raises, with the previous configuration kept."""
        names = [n for n in self.services if n != "redis" and n in config.services()]
        before = {n: self.spec_for(n).fingerprint() for n in names}
        previous = self.config, self.env_file_vars
        self._keep_chosen_port(config)
        self.config, self.env_file_vars = config, env_file_vars
        try:
            return [n for n in names if self.spec_for(n).fingerprint() != before[n]]
        except Exception:
            self.config, self.env_file_vars = previous
            raise

    async def reload_service(self, name: str, timeout: float = 60.0) -> float | None:
        """Restart `name` for a code change; seconds until ready again, None if it crashed or timed out.

        The worker is not stopped first: its old generation gets a warm shutdown and drains beside the
        new one, which starts at once (the old one stops consuming on SIGTERM, so nothing runs twice).
        """
        service = self._app(name)
        if service is None or self._closing:
            return None
        began = time.monotonic()
        if name == "worker" and service.running and service.spec.term_main_only:
            label = f"worker#{self.worker_generation}"
            self.worker_generation += 1
            fresh = self._make_service(self.worker_spec())
            fresh.continue_from(service)  # the warm spare serves the new generation
            self.services["worker"] = fresh
            self.draining[label] = service
            task = asyncio.get_running_loop().create_task(self._drain(service, label))
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
            service = fresh
        else:
            service.count_restart()
            await service.stop()
            service.respec(self.spec_for(name))
        service.start_reload()
        ready = await service.wait_settled(timeout)
        return time.monotonic() - began if ready else None

    async def _drain(self, old: Service, label: str) -> None:
        try:
            killed = await old.drain(label)
        finally:
            self.draining.pop(label, None)
        if self.config.worker.auto_requeue:  # also what waited for this drain to end
            await self.auto_requeue.run(f"{label} had to be killed" if killed else f"{label} has stopped")
        elif killed:
            stale = await asyncio.get_running_loop().run_in_executor(None, self._stale_unacked, False)
            if stale:
                self.notice(f"{label} had to be killed: {stale} reserved message(s) are left in Redis' `unacked` "
                            "and would only come back after the visibility timeout (1 h). Put them back in their "
                            "queues now with `devstack requeue`.", "warning", "worker")

    def _stale_unacked(self, requeue: bool) -> int:
        """Count (or requeue) the messages in `unacked` delivered before the live worker started: after a
        killed generation nobody holds them any more. No worker running: every entry is stale."""
        from .broker import QueueInspector, fast_fail_client

        worker = self._app("worker")
        broker_url = self.internal_broker_url(worker.spec.env.get("CELERY_BROKER_URL") if worker else None)
        live_since = max(worker.started_at, self.auto_requeue.broker_since) if worker is not None \
            and worker.running and worker.started_at else None
        if not broker_url.startswith(("redis://", "rediss://", "unix://")):
            raise DevstackError(f"requeue works on a redis:// broker only; this stack's broker is {broker_url.split(':')[0]}://", 1)
        client = fast_fail_client(broker_url, timeout=5)
        try:
            return QueueInspector(client).requeue_stale(live_since, requeue)
        finally:
            client.close()

    async def requeue_unacked(self) -> int:
        """`devstack requeue`: return messages a killed worker generation left in `unacked` to their queues."""
        if self.draining:
            raise DevstackError(f"{', '.join(self.draining)} is still draining and holds its messages; run "
                                "`devstack requeue` again once it has stopped.", 1)
        return await asyncio.get_running_loop().run_in_executor(None, self._stale_unacked, True)

    def send_input(self, name: str, text: str) -> bool:
        service = self.services.get(name)
        return bool(service and service.send_input(text))

    def status(self) -> dict:
        return {
            "project": self.config.project.name,
            "config": str(self.config.path) if self.config.path else "(bundled demo)",
            "state_dir": str(self.state_dir),
            "solo": self.solo,
            "pid": os.getpid(),
            "auto_requeued": self.auto_requeue.count,
            "python": {"path": (python := self.interpreter()).python, "source": python.source},
            "redis": {"mode": self.endpoint.mode if self.endpoint else self.config.redis.mode,
                      "host": self.endpoint.host if self.endpoint else None,
                      "port": self.endpoint.port if self.endpoint else None,
                      "version": self.redis_version, **(node_ports(self.endpoint) if self.endpoint else {})},
            "services": {**{name: s.status() for name, s in self.services.items()},
                         **{label: s.status() for label, s in self.draining.items()}},
        }

    def internal_broker_url(self, app_url: str | None = None) -> str:
        """The broker URL devstack itself uses to ping workers and read queues: the worker's own
        CELERY_BROKER_URL, except a sentinel:// one (or none), which becomes the master found."""
        return self.endpoint.internal_broker_url(app_url)

    def notice(self, text: str, level: str = "info", service: str | None = None) -> None:
        self.bus.emit(Notice(text, level, service))

    # ----- shutdown -----------------------------------------------------------------------------------
    async def shutdown(self) -> None:
        """Stop everything in reverse dependency order (apps first, Redis last)."""
        if self._closing:
            return
        self._closing = True
        if self.reloader is not None:
            await self.reloader.close()
        for task in self._tasks:
            task.cancel()
        for service in self.services.values():
            service.hold()
        apps = [s for n, s in self.services.items() if n not in self.redis_nodes]
        extras = [s for s in apps if s.name not in APP_SERVICES]
        await asyncio.gather(*(s.stop() for s in extras))
        await asyncio.gather(*(s.stop() for s in apps if s.name in APP_SERVICES))
        await asyncio.gather(*self._drains, return_exceptions=True)  # they need Redis to return messages
        await asyncio.gather(*(self.services[n].stop() for n in self.redis_nodes if n in self.services))
        for s in self.services.values():
            s.close()
        if self._record is not None:
            self._record.clear()
        for fd in (self._lifeline_r, self._lifeline_w):
            if fd >= 0:
                os.close(fd)
        self._lifeline_r = self._lifeline_w = -1
        if self._lock is not None:
            self._lock.release()

    def _spawn_task(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_all_ready(self, timeout: float | None = None) -> bool:
        async def all_ready():
            await asyncio.gather(*(s.wait_ready() for s in self.services.values()))
        try:
            await asyncio.wait_for(all_ready(), timeout)
            return True
        except asyncio.TimeoutError:
            return False


def _warm_up_broker(broker_url: str) -> None:
    """In a worker thread: even importing devstack.broker (redis-py) must stay off the event loop."""
    from .broker import warm_up

    warm_up(broker_url)
