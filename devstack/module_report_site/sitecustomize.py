"""Child side of devstack's module report: which project files a Python service has imported.

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


def write_report(report, files):
    """Atomic: devstack never reads half a list."""
    tmp = f"{report}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"pid": os.getpid(), "time": monotonic(), "files": sorted(files)}, f)
    os.replace(tmp, report)


def _watch(report, root, pid):
    """Write the list once imports settle (the module count unchanged for one interval), and again each
    time new modules settle: a list caught halfway through the start-up imports would be wrong, not late."""
    cache, seen, settled, written = {}, -1, -1, None
    while os.getpid() == pid:  # a forked child (a prefork pool process) has no copy of this thread anyway
        count = len(sys.modules)
        if count == seen and count != settled:
            settled = count
            files = project_files(list(sys.modules.items()), root, cache)
            if files != written:
                write_report(report, files)
                written = files
        seen = count
        sleep(INTERVAL)


def _restore_path():
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.abspath(p) != HERE]
    if parts:
        os.environ["PYTHONPATH"] = os.pathsep.join(parts)
    else:
        os.environ.pop("PYTHONPATH", None)


def activate():
    """Take the report variables out of the environment and start reporting (once per process)."""
    _restore_path()
    report, root = os.environ.pop(REPORT_VAR, None), os.environ.pop(ROOT_VAR, None)
    if not report or not root:
        return
    try:
        os.makedirs(os.path.dirname(report), exist_ok=True)
    except OSError:
        return
    threading.Thread(target=_safe_watch, args=(report, root, os.getpid()), name="devstack-module-report",
                     daemon=True).start()


def _safe_watch(report, root, pid):
    try:
        _watch(report, root, pid)
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
