"""Beat at a glance: each entry of the schedule beat actually uses (the app's `beat_schedule`, asked in
the app's interpreter, with last run and run count from beat's schedule file), in words, and `run now`."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import threading
import time
from pathlib import Path

from .diagnose import interpreter_for
from .errors import DevstackError

__all__ = ["read_schedule", "ScheduleCache", "schedule_words", "beat_target", "find_entry", "entry_plan",
           "offline_spec"]

PROBE_TIMEOUT = 30.0
CACHE_AT_MOST = 300.0
"""Seconds a read of the schedule is reused at most, even when no entry is due before."""
DEFAULT_SCHEDULER = ("celery.beat:PersistentScheduler", "celery.beat.PersistentScheduler")

# Run by the app's interpreter with beat's environment and cwd: argv[1] the Celery app (as `-A`),
# argv[2] beat's schedule file ("" when its scheduler keeps none). Prints one JSON object.
PROBE = r"""
import json, os, shelve, sys
from celery.app.utils import find_app
from celery.beat import ScheduleEntry
from celery.schedules import crontab, schedule as interval, solar

app = find_app(sys.argv[1])
path = sys.argv[2]
stored, file_error = {}, None
if path:
    try:
        with shelve.open(path, flag="r") as db:  # read-only: beat may hold it open
            stored = dict(db.get("entries") or {})
    except Exception as exc:
        exists = any(os.path.exists(path + ext) for ext in ("", ".dat", ".db"))
        file_error = f"{type(exc).__name__}: {exc}" if exists else "not written yet (beat has not run)"

def describe(s):
    if isinstance(s, crontab):
        minute, hour, dow, dom, moy = (str(v) for v in s.__reduce__()[1][:5])
        return {"kind": "crontab", "minute": minute, "hour": hour, "day_of_week": dow, "day_of_month": dom,
                "month_of_year": moy}
    if isinstance(s, solar):
        return {"kind": "solar", "event": s.event, "lat": s.lat, "lon": s.lon}
    if isinstance(s, interval):
        return {"kind": "interval", "seconds": s.run_every.total_seconds()}
    return {"kind": "other", "repr": repr(s)}

def epoch(dt):
    return dt.timestamp() if dt is not None else None

entries = []
for name, raw in (app.conf.beat_schedule or {}).items():
    entry = ScheduleEntry(**dict(raw, name=name, app=app))
    sched, old = entry.schedule, stored.get(name)
    # beat stores an entry's start of tracking as its last_run_at before the first run: only a counted run is one
    base = sched.maybe_make_aware(old.last_run_at) if old is not None and old.last_run_at else None
    last = base if old is not None and old.total_run_count else None
    now = sched.now()
    next_run = now + sched.remaining_estimate(base or now)
    args, kwargs, options = list(entry.args or ()), dict(entry.kwargs or {}), dict(entry.options or {})
    try:
        json.dumps([args, kwargs])
        sendable = True
    except (TypeError, ValueError):
        args, kwargs, sendable = [repr(a) for a in args], {k: repr(v) for k, v in kwargs.items()}, False
    try:
        route = app.amqp.router.route(dict(options), entry.task, tuple(args), kwargs)
        queue = route.get("queue")
        exchange = route.get("exchange")
        routing = {"queue": getattr(queue, "name", queue), "exchange": getattr(exchange, "name", exchange) or None,
                   "routing_key": route.get("routing_key") or getattr(queue, "routing_key", None)}
    except Exception as exc:
        routing = {"queue": options.get("queue"), "route_error": f"{type(exc).__name__}: {exc}"}
    entries.append({"name": name, "task": entry.task, "schedule": describe(sched), "args": args, "kwargs": kwargs,
                    "options": {k: v for k, v in options.items() if isinstance(v, (str, int, float, bool))},
                    "priority": options.get("priority"), "sendable": sendable, **routing,
                    "last_run": epoch(last), "total_run_count": old.total_run_count if old is not None else 0,
                    "next_run": epoch(next_run)})
print(json.dumps({"entries": entries, "file": path or None, "file_error": file_error}))
"""


def _option(argv: list[str], short: str, long: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg in (short, long) and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(long + "="):
            return arg.split("=", 1)[1]
        if arg.startswith(short) and len(arg) > len(short) and not arg.startswith("--"):
            return arg[len(short):]
    return None


def beat_target(argv: list[str], cwd: Path, fallback_app: str | None) -> tuple[str, str | None]:
    """(the Celery app beat runs, its schedule file or None) from beat's command line, as Celery reads it:
    `-A/--app`, `-s/--schedule` (default `celerybeat-schedule` in beat's folder); a custom `-S` scheduler
    keeps no file."""
    app = _option(argv, "-A", "--app") or fallback_app
    if not app:
        raise DevstackError(f"cannot tell which Celery app beat runs: its command ({' '.join(argv)}) has no -A/--app. "
                            "Fix: set [beat] app (or [worker] app) in devstack.toml.", 2)
    scheduler = _option(argv, "-S", "--scheduler")
    if scheduler and scheduler not in DEFAULT_SCHEDULER:
        return app, None
    schedule = _option(argv, "-s", "--schedule") or "celerybeat-schedule"
    return app, str(Path(cwd) / schedule)


def read_schedule(argv: list[str], env: dict[str, str], cwd: Path, fallback_app: str | None = None,
                  python: str | None = None) -> dict:
    """{"entries": [...], "file": ..., "file_error": ...} for beat started with `argv` in `cwd`; each entry
    gets `every` (its schedule in words). Blocking: runs the app's interpreter, which imports the app (a few
    hundred ms for the demo, seconds for a big app: a running stack keeps the answer in a `ScheduleCache`)."""
    app, schedule_file = beat_target(argv, cwd, fallback_app)
    python = interpreter_for(argv, env.get("PATH")) or python
    if not python:
        raise DevstackError(f"cannot tell which Python runs beat ({argv[0]}). Fix: set [beat] command to the full "
                            "path of the celery executable of the app's virtualenv, or [project] python.", 1)
    try:
        done = subprocess.run([python, "-c", PROBE, app, schedule_file or ""], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT, env=env, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DevstackError(f"could not ask {python} for beat's schedule of {app}: {exc}", 1) from None
    try:
        found = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DevstackError(f"{python} could not load the Celery app {app} to read its beat_schedule: {last}. "
                            f"Fix: check that `celery -A {app} beat` starts (`devstack logs beat`).", 1) from None
    for entry in found["entries"]:
        entry["every"] = schedule_words(entry["schedule"])
    return found


class ScheduleCache:
    """The last read of one beat process's schedule, reused until its first entry is due. A read imports the
    whole app in its interpreter (6 s for the big bench app: every `b` in the TUI and every `devstack beat`
    paid it), and nothing in the answer changes before beat sends an entry (which rewrites its schedule file)
    or restarts (another key: a new pid after a code or configuration change). A read whose schedule file is
    not written yet is not kept; a failed read raises and keeps nothing. Callers at once share one read."""

    def __init__(self, clock=time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._key: object = None
        self._value: dict | None = None
        self._until = float("-inf")

    def get(self, key: object, read) -> dict:
        with self._lock:
            if self._value is None or key != self._key or self._clock() >= self._until:
                self._value = None
                value = read()
                self._key, self._value, self._until = key, value, good_until(value, self._clock())
            return copy.deepcopy(self._value)  # callers may change theirs


def good_until(schedule: dict, now: float) -> float:
    """Until when `schedule`, read at `now`, stays true: the first next run among its entries."""
    if schedule.get("file_error"):
        return now
    due = [e["next_run"] for e in schedule.get("entries", ()) if e.get("next_run") is not None]
    return min([now + CACHE_AT_MOST, *due])


def offline_spec(config):
    """Beat's spec as `devstack up` would run it, for reading the schedule while no stack runs."""
    from . import app_specs, environment
    from .oneoff import stack_env

    env, _ = stack_env(config, "beat")
    return app_specs.beat_spec(config.beat, config.worker.app, env, Path(config.project.state_dir), False,
                               environment.interpreter(config, os.environ))


def find_entry(schedule: dict, name: str) -> dict:
    for entry in schedule["entries"]:
        if entry["name"] == name:
            return entry
    names = ", ".join(e["name"] for e in schedule["entries"]) or "none"
    raise DevstackError(f"no beat entry {name!r} in the app's beat_schedule; its entries: {names}.", 2)


def entry_plan(entry: dict):
    """What `beat run NAME` sends: the entry's task, args, kwargs and route, as beat would."""
    from .tasks import ReplayPlan

    if not entry["sendable"]:
        raise DevstackError(f"beat entry {entry['name']!r} has args/kwargs that are not JSON values "
                            f"({entry['args']!r}, {entry['kwargs']!r}): devstack cannot send them. Fix: call "
                            f"{entry['task']}.delay(...) from `devstack run -- flask shell`.", 1)
    if not entry.get("queue"):
        raise DevstackError(f"beat entry {entry['name']!r}: no queue for {entry['task']} "
                            f"({entry.get('route_error') or 'no route'}).", 1)
    return ReplayPlan(entry["task"], list(entry["args"]), dict(entry["kwargs"]), entry["queue"],
                      entry.get("routing_key") or entry["queue"], entry.get("exchange") or None, entry.get("priority"),
                      notes=[f"beat entry {entry['name']}"])


_UNITS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))
_DAYS = {"0": "Sunday", "1": "Monday", "2": "Tuesday", "3": "Wednesday", "4": "Thursday", "5": "Friday",
         "6": "Saturday", "7": "Sunday"}


def _seconds_words(seconds: float) -> str:
    for size, unit in _UNITS:
        if seconds >= size and seconds % size == 0:
            return f"every {int(seconds // size)} {unit}"
    return f"every {seconds:g} s"


def schedule_words(s: dict) -> str:
    """A schedule in words: "every 10 s", "daily at 03:00", "cron 0 */2 * * 1-5 (min hour dom month dow)"."""
    kind = s.get("kind")
    if kind == "interval":
        return _seconds_words(float(s["seconds"]))
    if kind == "solar":
        return f"at {s['event'].replace('_', ' ')} (lat {s['lat']}, lon {s['lon']})"
    if kind != "crontab":
        return s.get("repr", "?")
    minute, hour, dow, dom, moy = (s[k] for k in ("minute", "hour", "day_of_week", "day_of_month", "month_of_year"))
    if minute.isdigit() and hour.isdigit() and dom == moy == "*":
        at = f"at {int(hour):02d}:{int(minute):02d}"
        if dow == "*":
            return f"daily {at}"
        if dow in _DAYS:
            return f"every {_DAYS[dow]} {at}"
    if minute.isdigit() and hour == dom == moy == dow == "*":
        return f"hourly at minute {int(minute)}"
    if minute == hour == dom == moy == dow == "*":
        return "every minute"
    return f"cron {minute} {hour} {dom} {moy} {dow} (min hour day month weekday)"


def span_words(seconds: float) -> str:
    """A duration, two units at most: "7 s", "3 min 20 s", "2 h 53 min", "1 d 4 h"."""
    seconds = int(round(seconds))
    parts = []
    for size, unit in _UNITS:
        if seconds >= size or (size == 1 and not parts):
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
    return " ".join(parts[:2])


def when_words(at: float | None, now: float | None = None) -> str:
    """A time as HH:MM:SS with how far it is: "12:00:05 (in 4 s)", "11:59:50 (10 s ago)"."""
    if at is None:
        return "-"
    now = time.time() if now is None else now
    delta = at - now
    far = f"in {span_words(delta)}" if delta >= 0.5 else ("due now" if delta > -1 else f"{span_words(-delta)} ago")
    return f"{time.strftime('%H:%M:%S', time.localtime(round(at)))} ({far})"
