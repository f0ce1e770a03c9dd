"""The devstack TUI: a front-end of the engine's public API (events in, commands out).

`run_tui(config)` is what `devstack up` calls when stdout is a terminal. `DevstackApp` takes any
`Source` (tui/source.py): the running `devstack.api.Stack`, or a deterministic stub in snapshot tests.
"""
from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import threading
import time
from typing import Iterable

from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input

from devstack.errors import DevstackError
from devstack.events import LogLine, Notice, State, StateChanged

from .cadence import Cadence
from .debug_input import LEAVES_PDB, PDB_PROMPT, DebugInput
from .details import ProcessDetails
from .header import StackHeader
from .logs import LogView
from .processes import ALL, ProcessTable
from .queues import QueuesPanel
from .redis_panel import RedisPanel, fail_over
from .screens.help import HelpScreen
from .screens.messages import QueueMessagesScreen
from .screens.purge import confirm_purge
from .screens.rdb import RDB_ENDED, RdbOffer, RdbScreen, parse_rdb
from .screens.stopping import StoppingScreen
from .screens.task import TaskScreen
from .source import Source
from .tasks import TaskFeed
from .titles import set_titles

FLUSH_SECONDS = 0.08
"""How often buffered log lines, task events and state changes reach the screen."""
TICK_SECONDS = 1.0
"""How often uptimes and backoff countdowns move (and the polls' results land, in the same frame), while someone
is at the TUI; calm, every `cadence.CALM_SECONDS`."""
DEFAULT_MAX_LINES = 5000
DEVSTACK = "devstack"
"""Pseudo-service name under which the engine's own notices appear in the logs."""


FULL_COLLECTION_AFTER = 100
"""Middle-generation collections before a full one is considered (Python's default: 10). Under a task flood each full
collection still took 112-240 ms on the loop once frozen; ten times rarer, 1 key press of 20 went over 100 ms
against 4 of 20 in the run beside it (bench/task_flood.py --no-write, 2026-12-02), at ~13 MiB more RSS."""


def freeze_the_start() -> None:
    """Once per process: what exists once the stack has started (the imports, the app's widgets) leaves the garbage
    collector's generations (`gc.freeze`), so a full collection no longer scans it. Under a task flood a full
    collection came every 2-3 s, 150-240 ms on the loop (bench/task_flood.py, timed with gc.callbacks): the slow key
    presses. Frozen, the ones before a flood took 45-56 ms instead of 79-97; during one still 112-200 ms (most of what
    they scan is what the flood created): so full collections are also made rarer (FULL_COLLECTION_AFTER)."""
    if not gc.get_freeze_count():
        gc.freeze()
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)


class DevstackApp(App[int]):
    class Polled(Message):
        """The poll thread's tick: what it fetched this round (None: not polled this time)."""

        def __init__(self, stats, queues, usage, failure: str | None, applied: threading.Event,
                     topology=None) -> None:
            super().__init__()
            self.stats, self.queues, self.usage, self.failure, self.applied = stats, queues, usage, failure, applied
            self.topology = topology

    CSS_PATH = "app.tcss"
    TITLE = "devstack"
    BINDINGS = [
        Binding("w", "restart_worker", "Restart worker"),
        Binding("s", "toggle_solo", "Solo"),
        Binding("r", "restart_selected", "Restart"),
        Binding("R", "restart_all", "Restart all"),
        Binding("x", "toggle_selected", "Stop/start"),
        Binding("slash", "search", "Search"),
        Binding("n", "find(1)", "Next", show=False),
        Binding("N", "find(-1)", "Previous", show=False),
        Binding("f,end", "follow", "Follow"),
        Binding("c", "clear_log", "Clear"),
        Binding("p", "purge", "Purge", tooltip="Purge queue"),
        Binding("u", "requeue", "Requeue",
                tooltip="Requeue unacked (devstack requeue)"),
        Binding("d", "remote_debug", "rdb", tooltip="Open the waiting celery.contrib.rdb session"),
        Binding("F", "failover", "Failover", tooltip="Sentinel failover (devstack failover)"),
        Binding("question_mark", "help", "Help"),
        Binding("escape", "escape", show=False),
        Binding("q", "quit_stack", "Quit", priority=False),
        Binding("ctrl+q", "quit_stack", "Quit", show=False, priority=True),
    ]

    def __init__(self, source: Source, *, max_lines: int = DEFAULT_MAX_LINES) -> None:
        super().__init__()
        self.source = source
        self.max_lines = max_lines
        self.start_error: str | None = None
        self._states_dirty = True
        self._flush_armed = True  # until on_mount arms the first flush
        self._pdb_prompted = False
        self.rdb_offers: dict[int, RdbOffer] = {}  # port -> a celery.contrib.rdb session waiting for a client
        self._rdb_new: list[RdbOffer] = []
        self._stopping = False
        self.stack_stopped = threading.Event()  # set once `q`, SIGTERM or SIGHUP finished stopping the stack
        self._feed_started = False
        self._usage = {}
        self._topology = None  # the last sentinel group / cluster state polled (None: one Redis server)
        self._poll_stop = threading.Event()
        self.cadence = Cadence(TICK_SECONDS)
        self._unsubscribe = None

    # ----- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StackHeader(id="header")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield ProcessTable(id="processes")
                yield RedisPanel(id="redis")
                yield QueuesPanel(id="queues")
                yield ProcessDetails(id="details")  # the left column's free rows on a tall terminal
            with Vertical(id="right"):
                yield LogView(self.max_lines, id="logs")
                yield DebugInput(id="pdb")
                yield TaskFeed(id="tasks")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # Kept as attributes: timers and engine callbacks may still fire while the DOM is torn down.
        self.logs = self.query_one(LogView)
        self.processes = self.query_one(ProcessTable)
        self.task_feed = self.query_one(TaskFeed)
        self.debug_input = self.query_one(DebugInput)
        self.stack_header = self.query_one(StackHeader)
        self.redis_panel = self.query_one(RedisPanel)
        self.queues_panel = self.query_one(QueuesPanel)
        self.details = self.query_one(ProcessDetails)
        self.details.display = ProcessDetails.fits(self.size.height)
        self.processes.border_title = "processes"
        self.processes.on_select = self._on_process_selected
        self._unsubscribe = self.source.subscribe(self._on_event)
        # No free-running flush timer: it is armed by what needs showing (a 12.5 Hz tick alone cost an idle
        # stack ~3% of a core). The 1 s tick comes from the poll thread, with what it fetched.
        self._flush_armed = False
        self._dirty()
        threading.Thread(target=self._poll_loop, name="devstack-tui-poll", daemon=True).start()
        self.run_worker(self._start_stack(), name="start", exit_on_error=False)
        self.processes.focus()

    def _on_process_selected(self, name: str) -> None:
        self.logs.select(name)
        if self.details.display:
            self.details.show(name, self.source.services(), self.source.header())

    def on_resize(self, event) -> None:
        if not self.is_mounted or not hasattr(self, "details"):  # the first resize comes before on_mount
            return
        fits = ProcessDetails.fits(event.size.height)
        if fits != self.details.display:
            self.details.display = fits
            if fits:
                self.details.show(self.processes.selected, self.source.services(), self.source.header())

    def on_unmount(self) -> None:
        self._poll_stop.set()
        self.cadence.wake()
        if self._unsubscribe:
            self._unsubscribe()

    async def _start_stack(self) -> None:
        try:
            await self.source.start(self.request_quit)
            freeze_the_start()
        except DevstackError as exc:
            self.start_error = exc.message
            self.logs.feed(DEVSTACK, f"cannot start the stack: {exc.message}")
            self.notify(exc.message, title="cannot start the stack", severity="error", timeout=30, markup=False)

    # ----- engine events (cheap: buffer only) -----------------------------------------------------
    def _on_event(self, event) -> None:
        if not self._flush_armed:
            self._arm_flush()
        if isinstance(event, LogLine):
            self.logs.feed(event.service, event.text)
            if event.service == "worker" and PDB_PROMPT in event.text:
                self._pdb_prompted = True
            if "Remote Debugger:" in event.text:
                self._on_rdb_line(event.service, event.text)
        elif isinstance(event, StateChanged):
            self._dirty()
            if event.service == "worker" and event.state != State.READY:
                self._pdb_prompted = False
                self.debug_input.deactivate()
        elif isinstance(event, Notice):
            self.logs.feed(event.service or DEVSTACK, f"[{DEVSTACK}] {event.text}" if event.service else event.text)
            if event.level in ("warning", "error"):
                self.notify(event.text, severity="error" if event.level == "error" else "warning", timeout=8, markup=False)

    def _on_rdb_line(self, service: str, text: str) -> None:
        offer = parse_rdb(service, text)
        if offer is not None:
            self.rdb_offers[offer.port] = offer
            self._rdb_new.append(offer)
            return
        ended = RDB_ENDED.search(text)
        if ended:
            self.rdb_offers.pop(int(ended.group(1)), None)
            self.refresh_bindings()

    def _dirty(self) -> None:
        self._states_dirty = True
        if not self._flush_armed:
            self._arm_flush()

    def _arm_flush(self) -> None:
        """One flush FLUSH_SECONDS after the first buffered change: lines are batched, and nothing ticks when idle."""
        self._flush_armed = True
        try:
            self.set_timer(FLUSH_SECONDS, self._flush_buffers)
        except Exception:  # the app is closing
            pass

    def _on_task_event(self, event) -> None:
        self.task_feed.add(event)
        if not self._flush_armed:
            self._arm_flush()

    def _flush_buffers(self) -> None:
        self._flush_armed = False
        if not self.logs.is_attached:  # the app is closing: its widgets are being torn down
            return
        self.logs.flush()
        if self.logs.backlog:  # a flood left more than one batch: keep draining it
            self._arm_flush()
        self.task_feed.flush()
        if self._pdb_prompted and self.source.header().solo:
            self._pdb_prompted = False
            self._show_worker_at_breakpoint()
        if self._rdb_new:
            offers, self._rdb_new = self._rdb_new, []
            for offer in offers:
                self.notify(f"{offer.service} waits in celery.contrib.rdb on {offer.host}:{offer.port}. "
                            "Press d to debug it here.", title="remote debugger", severity="warning", timeout=15)
            self.refresh_bindings()
        if self._states_dirty:
            self._show_states()

    def _show_states(self) -> None:
        self._states_dirty = False
        rows = self.source.services()
        self.cadence.saw_states(row.state for row in rows)
        self.processes.show(rows, self._usage, self.source.now())
        header = self.source.header()
        self.stack_header.show(header)
        # The worker's pool in the list's title: the table's columns have no room left at 62 cells.
        pool = next((r.detail for r in rows if r.name == "worker" and r.detail), "")
        title = f"processes · worker {pool}" if pool else "processes"
        topology = self._topology
        if topology is not None and topology.kind == "sentinel" and topology.master not in (None, "redis"):
            title += f" · master {topology.master}"  # after a failover the names no longer say the roles
        set_titles(self.processes, title)
        if self.details.display:
            self.details.show(self.processes.selected, rows, header)
        if isinstance(self.screen, StoppingScreen):
            self.screen.show(rows)
        if self.source.redis_ready and not self._feed_started:
            self._feed_started = True
            self.run_worker(self.source.task_events(self._on_task_event), name="task-feed",
                            exit_on_error=False)

    def _show_worker_at_breakpoint(self) -> None:
        """`(Pdb)` in a solo worker: its pane, following, so the answer to each command is visible."""
        if "worker" in self.processes.rows and self.processes.selected != "worker":
            self.processes.move_cursor(row=self.processes.get_row_index("worker"))
        self.logs.select("worker")
        self.logs.follow()
        self.call_after_refresh(self.logs.follow)  # again once the pane shown has its size
        self.debug_input.activate()

    # ----- polls: one thread, one round a second, the next round once the UI took the last one -------
    def _poll_loop(self) -> None:
        """Redis and queues every `poll_seconds` (once Redis is ready), process usage every `usage_seconds`, and a
        tick every second even when nothing is due: uptimes and countdowns move with it, so an idle screen changes
        in one frame a second; calm (nobody at the TUI, nothing moving: tui/cadence.py), every CALM_SECONDS. A
        plain thread rather than a worker per poll (a worker, a call from the thread and a timer each round cost
        more than the polls), and not the loop's default executor, which the engine needs free."""
        source = self.source
        last_broker = float("-inf")
        next_usage = 0.0
        while not self._poll_stop.is_set():
            began = time.monotonic()
            stats = queues = usage = failure = topology = None
            if not self._stopping:
                if began >= next_usage:
                    try:
                        usage = source.usage()
                    except Exception:
                        usage = {}
                    next_usage = began + source.usage_seconds
                # Due by the period now; a calm spell ended by a key press polls at once (Cadence.wait).
                if began >= last_broker + max(source.poll_seconds, self.cadence.period()) and source.redis_ready:
                    try:
                        stats, queues = source.broker_poll()
                        topology = source.redis_topology()
                    except Exception as exc:  # never let a poll take the UI down
                        failure = f"broker poll failed: {exc!r}"
                    last_broker = began
            applied = threading.Event()
            if not self.post_message(self.Polled(stats, queues, usage, failure, applied, topology)):
                return  # the app is closing
            while not applied.wait(0.5):  # back-pressure: one round in flight (the app may be suspended)
                if self._poll_stop.is_set():
                    return
            if self.cadence.wait(self.cadence.period()):
                last_broker = float("-inf")

    def on_devstack_app_polled(self, message: Polled) -> None:
        try:
            if not self.logs.is_attached:  # the app is closing
                return
            if message.failure:
                self.logs.feed(DEVSTACK, message.failure)
            if message.usage is not None:
                self._usage = message.usage
            if message.stats is not None:  # before the flush: the process list's title names a moved master
                kind = message.topology and message.topology.kind
                if kind != (self._topology and self._topology.kind):
                    self.refresh_bindings()  # F exists only behind sentinels
                self._topology = message.topology
            self._states_dirty = True
            self._flush_buffers()  # the tick (uptimes, countdowns, log status) in the same frame as the panels
            if message.stats is not None:
                self.redis_panel.show(message.stats, message.topology)
            if message.queues is not None:
                self.queues_panel.show(message.queues)
                self.cadence.saw_queues(message.queues)
        finally:
            message.applied.set()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent) and not event.is_forwarded:
            self.cadence.touched()  # a key, a click, the mouse or the wheel: someone is at it
        await super().on_event(event)

    def on_app_blur(self, event: events.AppBlur) -> None:
        self.cadence.blurred(True)

    def on_app_focus(self, event: events.AppFocus) -> None:
        self.cadence.blurred(False)

    # ----- selection ---------------------------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if isinstance(event.data_table, QueuesPanel):
            self.push_screen(QueueMessagesScreen(self.source, str(event.row_key.value)))
        elif isinstance(event.data_table, TaskFeed):
            self.push_screen(TaskScreen(self.source, str(event.row_key.value)))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if not isinstance(event.input, DebugInput):
            return
        text = event.value
        event.input.value = ""
        if not self.source.send_input("worker", text):
            self.notify("the worker has no stdin pipe or is not running", severity="error")
            return
        self.logs.feed("worker", f"» {text}")
        if text.strip() in LEAVES_PDB:
            event.input.deactivate()
            self.processes.focus()

    # ----- commands ------------------------------------------------------------------------------------
    def _command(self, coro, what: str) -> None:
        async def run() -> None:
            try:
                await coro
            except DevstackError as exc:
                self.notify(exc.message, title=what, severity="error", markup=False)
        self.run_worker(run(), group="commands", exit_on_error=False)

    def _selected_service(self) -> str | None:
        name = self.processes.selected
        if name == ALL:
            self.notify("select a process first (the 'all' row is every process)", severity="warning")
            return None
        return name

    def action_restart_worker(self) -> None:
        self.notify("restarting the worker", timeout=3)
        self._command(self.source.restart(["worker"]), "restart worker")

    def action_toggle_solo(self) -> None:
        async def toggle() -> None:
            on = await self.source.set_solo(None)
            self._dirty()
            self.notify(f"solo {'on: -P solo -c 1' if on else 'off: the configured pool'}", timeout=3)
        self._command(toggle(), "solo")

    def action_restart_selected(self) -> None:
        name = self._selected_service()
        if name:
            self._command(self.source.restart([name]), f"restart {name}")

    def action_restart_all(self) -> None:
        self.notify("restarting every process", timeout=3)
        self._command(self.source.restart([]), "restart all")

    def action_toggle_selected(self) -> None:
        name = self._selected_service()
        if not name:
            return
        row = next((r for r in self.source.services() if r.name == name), None)
        if row is not None and row.state in (State.STOPPED, State.CRASHED, State.FAILED, State.BLOCKED):
            self._command(self.source.start_services([name]), f"start {name}")
        else:
            self._command(self.source.stop([name]), f"stop {name}")

    def action_search(self) -> None:
        self.logs.open_search()

    def action_find(self, direction: int) -> None:
        self.logs.find(direction)

    def action_follow(self) -> None:
        self.logs.follow()

    def action_clear_log(self) -> None:
        self.logs.clear()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "remote_debug" and not self.rdb_offers:
            return None  # shown dimmed in the footer until a debugger waits
        if action == "failover":
            return self._topology is not None and self._topology.kind == "sentinel"
        return True

    def action_remote_debug(self) -> None:
        if isinstance(self.screen, RdbScreen):
            return
        if not self.rdb_offers:
            self.notify("no celery.contrib.rdb session is waiting (a task calls rdb.set_trace())", severity="warning")
            return
        offer = list(self.rdb_offers.values())[-1]
        self.rdb_offers.pop(offer.port)  # rdb takes one client; the session's end closes the screen
        self.refresh_bindings()
        self.push_screen(RdbScreen(offer))

    def action_failover(self) -> None:
        self.notify("failing over: asking the sentinels…", timeout=3)
        self._command(fail_over(self), "failover")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_escape(self) -> None:
        if self.logs.has_class("-searching"):
            self.logs.close_search()
        elif isinstance(self.focused, DebugInput):
            self.processes.focus()

    def action_purge(self) -> None:
        queue = self.queues_panel.selected
        if queue is None:
            self.notify("no queue selected", severity="warning")
            return
        confirm_purge(self, self.source, queue.name, queue.ready, queue.reserved)

    def action_requeue(self) -> None:
        """`devstack requeue` from the TUI: the count, or why not (a worker generation still draining)."""
        async def requeue() -> None:
            count = await self.source.requeue()
            self.notify(f"requeued {count} message(s)" if count else
                        "nothing to requeue: no message is left in unacked", title="requeue", timeout=5)
        self._command(requeue(), "requeue")

    # ----- quitting ----------------------------------------------------------------------------------
    def request_quit(self) -> None:
        """From SIGTERM/SIGHUP or `devstack down`: the same orderly stop as `q`.

        Posted as a message: a signal handler runs outside the app's context (no active app)."""
        if not self._stopping:
            self.call_later(self.request_quit_now)

    def request_quit_now(self) -> None:
        if not self._stopping:
            self.action_quit_stack()

    async def action_quit(self) -> None:
        self.action_quit_stack()

    def action_quit_stack(self) -> None:
        if self._stopping:  # second q: stop waiting; run_tui's finally and the guards finish the job
            self.exit(1 if self.start_error else 0)
            return
        self._stopping = True
        self.push_screen(StoppingScreen())
        self._dirty()
        self.run_worker(self._stop_stack(), name="stop", exit_on_error=False)

    async def _stop_stack(self) -> None:
        try:
            await self.source.shutdown()
        finally:
            self.stack_stopped.set()
            self.exit(1 if self.start_error else 0)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            if isinstance(binding, Binding) and binding.description and binding.action != "quit_stack":
                yield SystemCommand(binding.tooltip or binding.description, f"key {binding.key}",
                                    lambda action=binding.action: self.run_action(action))


HANGUP_GRACE = 2.0  # s after the stack stopped for Textual to finish on its own
HANGUP_PATIENCE = 20.0  # s for the stack to stop after the terminal is gone; then the guards stop the rest


def _exit_once_stopped(app: "DevstackApp") -> None:
    """The terminal is gone (SIGHUP): once the stack has stopped, end the process even if Textual's
    teardown does not return. Seen: restoring the closed pty blocks for ever in Textual's
    WriterThread.write (its output queue full, nothing draining it), the process left behind; and with
    the loop itself blocked there the stack does not stop at all: after HANGUP_PATIENCE the process ends
    anyway and each guard stops its service, as when devstack is killed (the lifeline closes)."""
    app.stack_stopped.wait(HANGUP_PATIENCE)
    time.sleep(HANGUP_GRACE)
    os._exit(1 if app.start_error else 0)


def _silence_a_closed_terminal() -> None:
    """SIGHUP with the terminal really gone (its pty hung up, as when the window closes): what is still written
    (the stopping screen, frames, Textual's restoring sequences) goes to /dev/null instead. Writing to the dead
    pty fails (EIO), Textual's writer thread dies of it, its queue of writes fills and the event loop blocks on
    the next one: the stack then did not stop until HANGUP_PATIENCE ran out and the guards stopped it (~20 s).
    A SIGHUP sent to a live terminal (`kill -HUP`) leaves it alone: the terminal is restored as on `q`."""
    import select

    null = None
    try:
        for fd in (1, 2):
            try:
                poller = select.poll()
                poller.register(fd, select.POLLOUT)
                hung_up = any(events & (select.POLLHUP | select.POLLERR) for _, events in poller.poll(0))
            except (OSError, ValueError):
                continue
            if hung_up:
                null = os.open(os.devnull, os.O_WRONLY) if null is None else null
                os.dup2(null, fd)
    finally:
        if null is not None:
            os.close(null)


def run_tui(config, *, solo: bool = False) -> int:
    """Run the stack under the TUI until `q`, SIGTERM or SIGHUP; the stack is stopped on every path."""
    from devstack.api import Stack

    max_lines = int(os.environ.get("DEVSTACK_TUI_MAX_LINES", DEFAULT_MAX_LINES))
    source = Stack.from_config(config, solo=solo)
    app = DevstackApp(source, max_lines=max_lines)

    def hang_up() -> None:
        app.request_quit()
        threading.Thread(target=_exit_once_stopped, args=(app,), name="hangup-exit", daemon=True).start()

    async def main() -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, app.request_quit)

        def on_hangup(signum, frame) -> None:
            # A plain handler, not the loop's: a closed terminal sends SIGHUP then SIGCONT, whose handler
            # (Textual's, resuming after Ctrl-Z) writes to the terminal at once; Python runs pending handlers
            # in signal-number order, so this one silences the dead terminal first.
            _silence_a_closed_terminal()
            loop.call_soon_threadsafe(hang_up)

        previous_hangup = signal.signal(signal.SIGHUP, on_hangup)
        code = None
        try:
            code = await app.run_async()
            return code if code is not None else 1
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGHUP, previous_hangup)
            if code is None:
                print("devstack: the TUI stopped unexpectedly; stopping the stack…", file=sys.stderr)
            await source.shutdown()  # a no-op if `q` already stopped it; the crash path needs it

    return asyncio.run(main())
