"""Child side of devstack's module report: which project files a Python service has imported, and
which modules from outside the project (its libraries) a warm spare should preload next time. Also, in a
prefork worker, the heap frozen before each pool fork (`freeze_before_forks`).

devstack prepends this folder to a service's PYTHONPATH (see devstack/module_report.py), so Python
runs this file at start-up as `sitecustomize`. Why this hook: console scripts (`celery`, `flask`)
are exec'd as they are, and `sitecustomize` is the one start-up hook that needs neither a file in
the app's site-packages (`.pth`) nor the user site (off in virtualenvs) nor an interactive session.
It then gets out of the way: our folder leaves sys.path and PYTHONPATH, the variables are removed
(a subprocess the app starts does not report as the service), and the app's own `sitecustomize`,
if any, is imported as if ours never existed. Stdlib only; any failure here is swallowed, never the
app's problem.
"""
import json
import os
import sys
import threading
from time import monotonic, sleep  # bound now: gevent patches time.sleep later, this thread stays an OS thread

REPORT_VAR = "DEVSTACK_MODULES_REPORT"
ROOT_VAR = "DEVSTACK_MODULES_ROOT"
PRELOAD_VAR = "DEVSTACK_PRELOAD_REPORT"  # devstack/preload.py reads what is written there
EXCLUDE_VAR = "DEVSTACK_PRELOAD_EXCLUDE"
FREEZE_VAR = "DEVSTACK_FREEZE_BEFORE_FORK"  # devstack/app_specs.py sets it for the worker ([worker] freeze_before_fork)
COLLECTOR_VAR = "DEVSTACK_COLLECTOR_OFF_AT_START"  # devstack/app_specs.py: `collector_off_at_start` of api/worker/beat
_FORKING_MODULE = "celery.concurrency.asynpool"  # the prefork pool: only a worker that forks imports it
_OURS = ("__main__", "sitecustomize", "devstack_module_report")
HERE = os.path.dirname(os.path.realpath(__file__))
GUARD = os.path.join(os.path.dirname(HERE), "guard.py")
INTERVAL = 0.5  # seconds between two looks at len(sys.modules)
_LIBRARY_PARTS = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)


def project_files(modules, root, cache):
    """The real paths of the modules' files under `root`, installed libraries (a .venv inside it) left out."""
    prefix = root.rstrip(os.sep) + os.sep
    found = set()
    for name, module in modules:
        path = cache.get(name)
        if path is None:
            raw = getattr(module, "__file__", None)
            if not isinstance(raw, str):
                continue  # not cached: `__main__` gets its __file__ only after this hook ran
            path = cache[name] = os.path.realpath(raw)
        if path.startswith(prefix) and not any(part in path for part in _LIBRARY_PARTS):
            found.add(path)
    return found


def library_modules(modules, root, exclude):
    """Names, in import order, of the loaded modules a spare can import by name from outside the project
    (`root`, a .venv inside it excepted): its libraries and the stdlib's, never the app's own code."""
    prefix = root.rstrip(os.sep) + os.sep
    found = []
    for name, module in modules:
        spec = getattr(module, "__spec__", None)
        path = getattr(module, "__file__", None)
        # An alias (six.moves, a lazy module) has no spec of its own name: importing that name may fail.
        if name in _OURS or not isinstance(path, str) or getattr(spec, "name", None) != name:
            continue
        path = os.path.realpath(path)
        if path.startswith(HERE + os.sep) or (path.startswith(prefix) and not any(p in path for p in _LIBRARY_PARTS)):
            continue
        if not any(name == p or name.startswith(p + ".") for p in exclude):
            found.append(name)
    return found


def write_report(report, key, values):
    """Atomic: devstack never reads half a list."""
    tmp = f"{report}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"pid": os.getpid(), "time": monotonic(), key: values}, f)
    os.replace(tmp, report)


def _watch(report, root, pid, preload):
    """Write the lists once imports settle (the module count unchanged for one interval), and again each
    time new modules settle: a list caught halfway through the start-up imports would be wrong, not late."""
    cache, seen, settled, written, libraries = {}, -1, -1, None, None
    while os.getpid() == pid:  # a forked child (a prefork pool process) has no copy of this thread anyway
        count = len(sys.modules)
        if count == seen and count != settled:
            settled = count
            modules = list(sys.modules.items())
            files = project_files(modules, root, cache)
            if files != written:
                write_report(report, "files", sorted(files))
                written = files
            if preload:
                names = library_modules(modules, root, preload[1])
                if names != libraries:
                    write_report(preload[0], "modules", names)
                    libraries = names
        seen = count
        sleep(INTERVAL)


def _restore_path():
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.abspath(p) != HERE]
    if parts:
        os.environ["PYTHONPATH"] = os.pathsep.join(parts)
    else:
        os.environ.pop("PYTHONPATH", None)


class _FreezeOnPrefork:
    """A meta path finder that never finds anything: it only notices the prefork pool's import (the app
    and its libraries are loaded by then, and any gevent patch done) to connect the freeze. It stays in
    sys.meta_path, inert, afterwards: removing it from the list importlib is iterating would skip a finder."""

    done = False

    def find_spec(self, name, path=None, target=None):
        if not self.done and name == _FORKING_MODULE:
            self.done = True
            _connect_freeze()
        return None


def _connect_freeze():
    try:
        from celery.signals import worker_before_create_process  # Celery >= 5.3
    except Exception:  # an older Celery forks as it always did
        return
    worker_before_create_process.connect(_freeze, weak=False)  # weak: this module may not stay referenced


def _freeze(**_):
    import gc

    gc.freeze()


def freeze_before_forks():
    """Celery's prefork pool runs a full `gc.collect()` in the worker before it forks each pool process
    (celery/concurrency/asynpool.py, `_create_worker_process`; its comment cites celery/celery#2927): on a
    big app's heap 0.2 s each (bench/bigapp: 361,000 objects), so `-c 8` waits 1.7 s before it is ready.
    Just before, on Celery's own `worker_before_create_process` signal, `gc.freeze()` (CPython's API for
    pre-fork servers) moves every object alive to the permanent generation: that collection then walks only
    what came since (the pool processes inherit the frozen generation: their own collections skip it too). What
    was garbage at that moment stays allocated: since the start-up runs without the collector
    (`collector_off_while_starting`), more of it. The big app's worker tree, RSS as devstack shows it: 492 MB
    with, 445 MB with `collector_off_at_start = false`; a collection before the first freeze did not move it
    (freed memory stays in the allocator's arenas) and cost ~0.2 s a restart, so there is none. The pool
    processes share those pages copy-on-write and, as nothing references that garbage, never copy them."""
    if os.environ.pop(FREEZE_VAR, None) != "1":
        return
    if _FORKING_MODULE in sys.modules:  # a warm spare preloaded the pool already
        _connect_freeze()
    else:
        sys.meta_path.insert(0, _FreezeOnPrefork())


GC_OFF_SETTLE = 2.0  # seconds without a new module after which the start-up counts as done
GC_OFF_MAX = 30.0  # the collector is back after this long whatever happens


def collector_off_while_starting():
    """The service's start-up (its imports, create_app) runs without the cyclic collector. An import
    allocates container objects by the thousand and frees almost none, so each of the collections their
    count triggers walked the young heap again to find next to no garbage. The big app's API process (`python
    -c "import app"`, which runs create_app(), CPU user+sys, 5 runs alternating): 4.4 s with the collector,
    3.55 s without; 4.1 s when it came back after 0.5 s without a new module, since create_app() then ran
    1.7 s importing nothing, hence GC_OFF_SETTLE = 2 s. The project part of a warm start, after preloaded
    and frozen libraries: 1.38 s with it, 1.17 s without (bench/bigapp_floor.py). The collector is back
    once no module was imported for GC_OFF_SETTLE s (or after GC_OFF_MAX s), and in any process forked
    meanwhile (a prefork pool process) at once; what became garbage meanwhile is collected then. Not in a
    process gevent patched already (a warm spare of a gevent worker): this thread would be a greenlet that
    never runs during the imports. Cold, this runs before any patch, in an OS thread like the report's."""
    if os.environ.pop(COLLECTOR_VAR, None) != "1":
        return
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return
    import gc

    off = True

    def back_on():
        nonlocal off
        if off:
            off = False
            gc.enable()

    def watch():
        deadline = monotonic() + GC_OFF_MAX
        seen, quiet_since = -1, monotonic()
        while monotonic() < deadline:
            count = len(sys.modules)
            if count != seen:
                seen, quiet_since = count, monotonic()
            elif monotonic() - quiet_since >= GC_OFF_SETTLE:
                break
            sleep(0.1)
        back_on()

    gc.disable()
    os.register_at_fork(after_in_child=back_on)
    threading.Thread(target=watch, name="devstack-gc-back-on", daemon=True).start()


def activate():
    """Take the report variables out of the environment and start reporting (once per process)."""
    _restore_path()
    collector_off_while_starting()
    freeze_before_forks()
    report, root = os.environ.pop(REPORT_VAR, None), os.environ.pop(ROOT_VAR, None)
    preload_report, exclude = os.environ.pop(PRELOAD_VAR, None), os.environ.pop(EXCLUDE_VAR, "")
    if not report or not root:
        return
    preload = (preload_report, [p for p in exclude.split(",") if p]) if preload_report else None
    try:
        os.makedirs(os.path.dirname(report), exist_ok=True)
        if preload:
            os.makedirs(os.path.dirname(preload_report), exist_ok=True)
    except OSError:
        return
    threading.Thread(target=_safe_watch, args=(report, root, os.getpid(), preload), name="devstack-module-report",
                     daemon=True).start()


def _safe_watch(report, root, pid, preload):
    try:
        _watch(report, root, pid, preload)
    except Exception:  # a report is a hint for reloading, never worth disturbing the app
        pass


def _chain():
    """Import the sitecustomize ours shadows (a virtualenv's or the distribution's), if there is one."""
    import importlib

    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
    ours = sys.modules.pop("sitecustomize", None)
    try:
        importlib.import_module("sitecustomize")
    except ImportError as exc:
        if exc.name != "sitecustomize":
            raise  # the app's own sitecustomize is broken: the same message as without devstack
        if ours is not None:
            sys.modules["sitecustomize"] = ours


if __name__ == "sitecustomize":
    try:
        # A warm spare's guard runs with the service's environment too: the spare's child reports
        # after "go" (devstack/guard.py calls activate()), the guard itself never does.
        if os.path.realpath(sys.argv[0] if sys.argv else "") == GUARD:
            _restore_path()
        else:
            activate()
    except Exception:
        pass
    _chain()
