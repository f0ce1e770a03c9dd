"""A tiny per-service guard process: it owns one service's process group and kills it when devstack dies.

devstack -> guard (this file, run as `python -I -S guard.py`) -> the service, in its own session.
The guard notices devstack's death three ways: PR_SET_PDEATHSIG (Linux), EOF on a lifeline pipe that
only devstack holds open (every OS), and a parent-pid check. It is a child subreaper, so grandchildren
that lose their parent (a pool child, a daemonised helper) become its children and are killed too.
Stdlib only and no site import: it starts in ~15 ms.
Test hook: `DEVSTACK_FORCE_PORTABLE=1` in the environment makes it skip prctl and /proc (the lifeline pipe
and `ps` instead), so the paths macOS takes run, and are tested, on Linux.

Protocol (the parent side is devstack/supervisor/guard_client.py): `guard.py --lifeline FD --report FD --parent PID --grace S [--spare FD --progress FD --preload MODS --patch celery] -- argv...`
- writes "<service pid>\\n" to the report fd once the service is forked;
- exits with the service's exit code (128+N when killed by signal N), after sweeping its group;
- devstack signals the service's process group directly (pgid == service pid).
"""
import os
import select
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
_STOP_SIGNALS = (signal.SIGTERM,)
# Ctrl-C and a closed terminal reach the whole foreground group, guards included: devstack itself
# handles those with an orderly (warm) shutdown, so the guard must not cut it short.
_IGNORED_SIGNALS = (signal.SIGINT, signal.SIGHUP)


def portable_forced(environ=os.environ):
    """True when the test hook asks for the code paths of a system without prctl and /proc."""
    return environ.get("DEVSTACK_FORCE_PORTABLE") == "1"


PORTABLE = portable_forced()


def _prctl(option, value):
    if PORTABLE:
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False  # not Linux: the lifeline pipe does the job


def _descendants_and_group(pgid):
    """Pids of our children (subreaped orphans included) and of the service's process group."""
    me = os.getpid()
    try:
        table = _ps_table() if PORTABLE else _proc_table()
    except OSError:
        try:
            table = _ps_table()
        except OSError:  # no /proc and no `ps`: the group probe at least says whether the group is empty
            return [pgid] if _group_alive(pgid) else []
    return [pid for pid, ppid, pgrp in table if ppid == me or pgrp == pgid]


def _proc_table():
    """(pid, ppid, pgid) of every process, from /proc (Linux)."""
    table = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        table.append((int(entry), int(fields[1]), int(fields[2])))
    return table


def _ps_table():
    """(pid, ppid, pgid) of every living process but `ps` itself, from `ps` (macOS and the BSDs have no
    /proc). Zombies are left out: without a subreaper an orphan's zombie waits for init, and holds nothing."""
    import subprocess

    ps = subprocess.Popen(["ps", "-A", "-o", "pid=,ppid=,pgid=,stat="], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    out, _ = ps.communicate()
    if ps.returncode != 0:
        raise OSError(f"ps exited with {ps.returncode}")
    rows = (line.split() for line in out.decode().splitlines())
    return [(int(r[0]), int(r[1]), int(r[2])) for r in rows
            if len(r) == 4 and not r[3].startswith("Z") and int(r[0]) != ps.pid]


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _signal_all(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in _descendants_and_group(pgid):
        if pid != os.getpid():
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def _reap():
    """Reap every exited child; return {pid: status}."""
    reaped = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped[pid] = status


def _exit_code(status):
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _terminate(pgid, grace, main_status):
    """TERM the whole group, give it `grace` seconds, KILL what is left, reap everything."""
    _signal_all(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        reaped = _reap()
        main_status = reaped.get(pgid, main_status)
        if not _descendants_and_group(pgid):
            return main_status
        time.sleep(0.05)
    _signal_all(pgid, signal.SIGKILL)
    for _ in range(40):
        reaped = _reap()
        main_status = reaped.get(pgid, main_status)
        if not _descendants_and_group(pgid):
            break
        time.sleep(0.025)
    return main_status


def _run_spare(go_fd, exec_w, opts, command):
    """Warm spare: import the service's libraries now, wait for devstack's "go", then run the service's
    console script in this very process (fork-after-import: a restart skips the libraries' imports).

    The "go" message (JSON: argv, env, cwd, script) arrives on go_fd; EOF without one means devstack
    discarded the spare (or died): exit quietly. Closing exec_w tells the guard the service now runs.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    # `python guard.py` put devstack/ first on sys.path: its config.py/state.py must never shadow the app's.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    progress = int(opts["--progress"]) if "--progress" in opts else None
    if opts.get("--patch") == "celery":
        # A gevent pool must patch before anything else is imported: exactly what `celery` itself does
        # first (celery/__main__.py); its own call after "go" then finds everything patched already.
        import celery

        celery.maybe_patch_concurrency(command)
    tainted = _preload(filter(None, _module_list(opts.get("--preload", "")).split(",")), progress)
    if progress is not None:
        os.close(progress)
    if tainted:  # project code is loaded: a change to it would not be seen. devstack starts cold instead
        os._exit(3)
    chunks = []
    while True:
        try:
            chunk = os.read(go_fd, 65536)
        except InterruptedError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
    os.close(go_fd)
    if not chunks:
        os._exit(0)
    import json

    spec = json.loads(b"".join(chunks))
    os.chdir(spec["cwd"])
    os.environ.clear()
    os.environ.update(spec["env"])
    signal.signal(signal.SIGINT, signal.default_int_handler)  # what a fresh interpreter would have
    _report_modules(here)  # and the start-up without the collector (sitecustomize.py collector_off_while_starting)
    os.close(exec_w)
    import runpy

    script = spec["script"]
    sys.argv = [script, *spec["argv"][1:]]
    sys.path.insert(0, os.path.dirname(script))
    runpy.run_path(script, run_name="__main__")
    sys.exit(0)


def _module_list(value):
    """`--preload` names, or `@FILE` holding them (a long list: see devstack/preload.py guard_arg)."""
    if not value.startswith("@"):
        return value
    try:
        with open(value[1:], encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""  # gone: nothing preloaded, the start is only slower
    finally:
        try:
            os.unlink(value[1:])
        except OSError:
            pass


def _preload(names, progress):
    """Import `names`, telling devstack on `progress` what it tries, what fails and which import loaded a
    project module (see devstack/preload.py `Progress`); True if one did."""
    import importlib

    root = os.environ.get("DEVSTACK_MODULES_ROOT")
    prefix = root.rstrip(os.sep) + os.sep if root else None

    def say(line):
        nonlocal progress
        if progress is not None:
            try:
                os.write(progress, (line[:500] + "\n").encode(errors="replace"))
            except OSError:  # devstack stopped listening (discarded the spare): keep going quietly
                progress = None

    tainted = False
    for name in names:
        if name in sys.modules:
            continue
        before = len(sys.modules)
        say(f"try {name}")
        try:
            importlib.import_module(name)
        except (Exception, SystemExit) as exc:  # the real run reports what is really missing
            say(f"fail {name}\t{type(exc).__name__}: {exc}".replace("\n", " "))
            continue
        if prefix and any(_in_project(m, prefix) for m in list(sys.modules.values())[before:]):
            say(f"taint {name}")
            tainted = True
    # The libraries stay loaded for the service's life: frozen (CPython's gc.freeze, after one collection of
    # the imports' garbage), no later collection walks them again. The project's imports after "go" trigger
    # full collections of their own: each walked the whole preloaded heap too (the big app's API floor, its
    # project's imports after the libraries: 1.69 s without the freeze, 1.38 s with it; bench/bigapp_floor.py).
    import gc

    gc.collect()
    gc.freeze()
    say("ready")
    return tainted


def _in_project(module, prefix):
    path = getattr(module, "__file__", None)
    if not isinstance(path, str):
        return False
    path = os.path.realpath(path)
    return path.startswith(prefix) and os.sep + "site-packages" + os.sep not in path


def _report_modules(here):
    """A spare never ran its service's start-up hook as that service (devstack/module_report_site/
    sitecustomize.py skips guards): start the module report (the worker's freeze before its pool forks, the
    start-up without the collector) now, as a cold start would have."""
    if not any(v in os.environ for v in ("DEVSTACK_MODULES_REPORT", "DEVSTACK_FREEZE_BEFORE_FORK",
                                         "DEVSTACK_COLLECTOR_OFF_AT_START")):
        return
    import importlib.util

    path = os.path.join(here, "module_report_site", "sitecustomize.py")
    try:
        spec = importlib.util.spec_from_file_location("devstack_module_report", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.activate()
    except Exception:  # only a hint for the reloader: the service runs regardless
        pass


def main(argv):
    sep = argv.index("--")
    opts = dict(zip(argv[:sep:2], argv[1:sep:2]))
    command = argv[sep + 1:]
    lifeline = int(opts["--lifeline"])
    report = int(opts["--report"])
    parent = int(opts["--parent"])
    grace = float(opts.get("--grace", "2"))
    spare = int(opts["--spare"]) if "--spare" in opts else None

    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    if os.getppid() != parent:  # devstack died before we set PDEATHSIG: no signal will come
        return 1

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    for sig in (*_STOP_SIGNALS, signal.SIGCHLD):
        signal.signal(sig, lambda *_: None)
    for sig in _IGNORED_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.set_wakeup_fd(wake_w)

    # Close-on-exec pipe: EOF on exec_r means the child has exec'd (or died). The pid is reported only
    # then, so devstack records the service's identity (command line, executable), not a forked guard's.
    exec_r, exec_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            signal.set_wakeup_fd(-1)
            for sig in (*_STOP_SIGNALS, *_IGNORED_SIGNALS, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            for fd in (lifeline, report, wake_r, wake_w, exec_r):
                os.close(fd)
            if spare is not None:
                _run_spare(spare, exec_w, opts, command)
            os.execvp(command[0], command)
        except OSError as exc:
            os.write(2, f"devstack: cannot run {command[0]!r}: {exc.strerror}\n".encode())
        os._exit(127)

    os.close(exec_w)
    if spare is not None:
        os.close(spare)
        if "--progress" in opts:
            os.close(int(opts["--progress"]))
    while True:  # a spare waits here until devstack says go (or goes away: the child then exits)
        try:
            if not os.read(exec_r, 1):
                break
        except InterruptedError:
            continue
    os.close(exec_r)
    try:
        os.write(report, f"{pid}\n".encode())
    except OSError:
        pass  # devstack is gone: the loop below notices the lifeline and cleans up
    os.close(report)

    main_status = None
    watch = [lifeline, wake_r]
    while main_status is None:
        try:
            readable, _, _ = select.select(watch, [], [])
        except InterruptedError:
            readable = []
        stop = False
        if wake_r in readable:
            signums = os.read(wake_r, 512)
            # A SIGTERM while devstack lives came from a group-wide kill (`timeout`, `kill -- -PGID`):
            # devstack gets it too and stops the stack in order; only PDEATHSIG's SIGTERM counts here.
            stop = any(s in signums for s in _STOP_SIGNALS) and os.getppid() != parent
        if lifeline in readable:
            try:
                stop = stop or os.read(lifeline, 64) == b""
            except OSError:
                stop = True
        if os.getppid() != parent:
            stop = True
        main_status = _reap().get(pid)
        if stop:
            main_status = _terminate(pid, grace, main_status)
            break
    # The service's main process is gone: nothing it started may outlive it.
    if _descendants_and_group(pid):
        _terminate(pid, 0.5, main_status)
    _reap()
    return _exit_code(main_status) if main_status is not None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
