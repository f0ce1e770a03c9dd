"""`devstack doctor` against real faults: a real redis-server with another password, a port nobody
listens on, a queue no real worker consumes, malformed URLs, a Docker client without an engine."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack.broker import worker_ping
from devstack.config import load_config
from devstack.doctor import FAIL, OK, WARN, format_report, run_doctor
from tests.conftest import free_port
from tests.stack import write_demo_config
from tests.waiting import poll_until

pytestmark = pytest.mark.functional

CELERY = str(Path(sys.executable).with_name("celery"))
DEVSTACK = str(Path(sys.executable).with_name("devstack"))
WRONG = "wrong-Pass-9f2c"


def clean_environ(**extra: str) -> dict[str, str]:
    """The environment doctor sees: only PATH/HOME, so the developer's own REDIS_* cannot leak in."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **extra}


def external_config(tmp_path: Path, url: str, *, env: str | None = None, queues: str | None = None) -> Path:
    """A devstack.toml attached to `url` (external mode), with an optional .env beside it."""
    if env is not None:
        (tmp_path / ".env").write_text(env)
    path = write_demo_config(tmp_path, redis=f'url = "{url}"')
    if queues is not None:
        path.write_text(path.read_text().replace('queues = ["celery", "dataset", "generation", "mail"]',
                                                 f"queues = {queues}", 1))
    return path


def doctor(path: Path, environ: dict[str, str] | None = None, **kw):
    checks, secrets = run_doctor(load_config(path, path.parent), environ or clean_environ(), **kw)
    return {c.name: c for c in checks}, format_report(checks, secrets)


# ----- passwords -----------------------------------------------------------------------------------
def test_env_file_password_differs_from_the_running_redis(tmp_path, redis_server):
    rs = redis_server
    path = external_config(tmp_path, rs.url(0), env=(
        f"REDIS_HOST=127.0.0.1\nREDIS_PORT={rs.port}\nREDIS_PASSWORD={WRONG}\n"
        f"CELERY_BROKER_URL=redis://:{WRONG}@127.0.0.1:{rs.port}/1\n"))
    checks, report = doctor(path, clean_environ(CELERY_BROKER_URL=f"redis://127.0.0.1:{rs.port}/1"))

    assert checks["redis"].level == OK  # devstack's own URL carries the right password
    pw = checks["passwords"]
    assert pw.level == FAIL
    assert f"REDIS_PASSWORD in .env differs from the password the Redis at 127.0.0.1:{rs.port} requires" in pw.message
    assert "CELERY_BROKER_URL in .env differs" in pw.message
    assert "CELERY_BROKER_URL in the environment carries no password" in pw.message and "NOAUTH" in pw.message
    assert "REDIS_PASSWORD" in pw.fix
    assert "redis://:***@127.0.0.1" in report
    assert WRONG not in report and rs.password not in report


def test_devstack_url_without_password_gets_noauth(tmp_path, redis_server):
    rs = redis_server
    path = external_config(tmp_path, f"redis://127.0.0.1:{rs.port}/0", env=f"REDIS_PASSWORD={rs.password}\n")
    checks, report = doctor(path)
    assert checks["redis"].level == FAIL
    assert "refuses devstack's credentials ([redis] url): NOAUTH" in checks["redis"].message
    assert "devstack's own ([redis] url) carries no password" in checks["passwords"].message
    assert rs.password not in report


# ----- nothing listening ---------------------------------------------------------------------------
def test_external_redis_nobody_listens(tmp_path):
    port = free_port()
    secret = "unused-Secret-77"
    path = external_config(tmp_path, f"redis://:{secret}@127.0.0.1:{port}/0",
                           env=f"CELERY_BROKER_URL=redis://:{secret}@127.0.0.1:{port}/1\n")
    checks, report = doctor(path)
    redis = checks["redis"]
    assert redis.level == FAIL
    assert f"Error 111 connecting to 127.0.0.1:{port}" in redis.message
    assert f"devstack expects an external Redis at 127.0.0.1:{port}" in redis.message
    assert "nothing listens there" in redis.message
    assert f"CELERY_BROKER_URL in .env = redis://:***@127.0.0.1:{port}/1" in redis.message
    assert "[redis] url" in redis.fix
    assert checks["pending tasks"].level == OK and "not checked" in checks["pending tasks"].message
    assert secret not in report


def test_launched_redis_port_taken_by_another_process(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        path = write_demo_config(tmp_path)
        text = path.read_text()
        path.write_text(text.replace("[redis]\nmode = \"auto\"\nport = ", f"[redis]\nmode = \"auto\"\nport = {port}\n#", 1))
        checks, _ = doctor(path)
    redis = checks["redis"]
    assert redis.level == FAIL
    assert f"port {port} is taken by" in redis.message and f"(pid {os.getpid()})" in redis.message
    assert "Address already in use" in redis.message and "[redis] port" in redis.fix


# ----- stuck in PENDING, visibility timeout --------------------------------------------------------
def test_queue_nobody_consumes_and_eta_beyond_visibility_timeout(tmp_path, redis_server):
    from celery import Celery

    rs = redis_server
    path = external_config(tmp_path, rs.url(0), queues='["other"]')
    producer = Celery("doctor-test", broker=rs.url(1), set_as_current=False)
    try:
        producer.send_task("tasks.orphan", args=(1,), queue="orphanq")
        # A task the bare worker knows (a Celery built-in), so it holds it reserved until the ETA.
        producer.send_task("celery.accumulate", args=(1,), queue="other", countdown=7200)
    finally:
        producer.close()

    checks, report = doctor(path)  # no worker at all yet
    pending = checks["pending tasks"]
    assert pending.level == FAIL and "no worker answers" in pending.message
    assert "1 in 'orphanq'" in pending.message and "add 'orphanq' to [worker] queues" in pending.fix
    assert checks["visibility timeout"].level == WARN  # the ETA message still waits in its list

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    worker = subprocess.Popen(
        [CELERY, "-b", rs.url(1), "worker", "-Q", "other", "-P", "solo", "--without-mingle", "--without-gossip",
         "-n", "doctortest@%h", "-l", "info"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        for line in worker.stdout:
            if " ready." in line or time.monotonic() > deadline:
                break
        # a busy machine: consuming before it answers the broadcast
        poll_until(lambda: any(worker_ping(rs.url(1)).values()), max(0.0, deadline - time.monotonic()), 0.2)
        checks, report = doctor(path)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)

    pending = checks["pending tasks"]
    assert pending.level == FAIL, report
    assert "no running worker consumes (1 in 'orphanq')" in pending.message
    assert "doctortest@" in pending.message and "consumes other" in pending.message
    vt = checks["visibility timeout"]
    assert vt.level == WARN, report
    assert "celery.accumulate" in vt.message and "3600 s (the default)" in vt.message
    assert "runs twice" in vt.message and "visibility_timeout" in vt.fix
    assert rs.password not in report


# ----- malformed URLs ------------------------------------------------------------------------------
def test_malformed_broker_urls(tmp_path, redis_server):
    rs = redis_server
    secret = "Hash#In-Pw"
    path = external_config(tmp_path, rs.url(0), env=f"CELERY_BROKER_URL=redis://:{secret}@127.0.0.1:{rs.port}/1\n")
    checks, report = doctor(path, clean_environ(CELERY_BROKER_URL=f"redis://{rs.password}@localhost:63x9/one"))
    url = checks["broker URL"]
    assert url.level == FAIL
    assert "CELERY_BROKER_URL in .env has a password containing '/', '?' or '#' that is not percent-encoded" in url.message
    assert "CELERY_BROKER_URL in the environment has no ':' before the password" in url.message
    assert "has the port '63x9', which is not a number" in url.message
    assert "has the database 'one'" in url.message
    assert secret not in report and "In-Pw" not in report and rs.password not in report


# ----- docker, inotify, events ---------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client on PATH")
def test_docker_client_without_engine(tmp_path):
    path = write_demo_config(tmp_path, extra="")
    path.write_text(path.read_text().replace('mode = "auto"', 'mode = "docker"', 1))
    checks, _ = doctor(path, clean_environ(DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock"))
    docker = checks["docker"]
    assert docker.level == FAIL and "no Docker engine answers" in docker.message
    assert "start Docker" in docker.fix


def test_low_inotify_limit_and_events_off(tmp_path):
    project = tmp_path / "proj"
    for i in range(40):
        (project / "pkg" / f"sub{i}").mkdir(parents=True)
    (project / "node_modules" / "x").mkdir(parents=True)
    path = write_demo_config(project, worker="events = false")
    limit = tmp_path / "max_user_watches"

    limit.write_text("30\n")
    checks, _ = doctor(path, inotify_limit_path=limit)
    assert checks["inotify"].level == FAIL and "fs.inotify.max_user_watches = 30" in checks["inotify"].message
    assert "sysctl" in checks["inotify"].fix
    assert checks["events"].level == WARN and "task feed will be empty" in checks["events"].message

    limit.write_text("60\n")
    assert doctor(path, inotify_limit_path=limit)[0]["inotify"].level == WARN  # 42 folders: over half
    limit.write_text("1000\n")
    assert doctor(path, inotify_limit_path=limit)[0]["inotify"].level == OK


# ----- the command line ----------------------------------------------------------------------------
def test_cli_doctor_exit_code_and_lines(tmp_path):
    port = free_port()
    secret = "cli-Secret-31"
    path = write_demo_config(tmp_path, redis=f'url = "redis://:{secret}@127.0.0.1:{port}/0"')
    proc = subprocess.run([DEVSTACK, "doctor", "--config", str(path)], cwd=tmp_path, env=clean_environ(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(ln.startswith("FAIL redis: Error 111 connecting to 127.0.0.1:") for ln in lines)
    assert any(ln.startswith("     fix: ") for ln in lines)
    assert any(ln.startswith("OK   events:") for ln in lines)
    assert lines[-1].startswith("1 failed")
    assert secret not in proc.stdout + proc.stderr

    ok = write_demo_config(tmp_path / "ok")
    proc = subprocess.run([DEVSTACK, "doctor", "--config", str(ok)], cwd=tmp_path, env=clean_environ(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 failed" in proc.stdout


# ----- in-context diagnosis: the engine watches its children's lines ------------------------------
def test_running_stack_explains_a_wrong_password_once(tmp_path, redis_server):
    rs = redis_server
    path = write_demo_config(
        tmp_path, redis=f'url = "{rs.url(0)}"', api="enabled = false", beat="enabled = false",
        worker=f'env = {{ CELERY_BROKER_URL = "redis://:{WRONG}@127.0.0.1:{rs.port}/1" }}')
    checks, _ = doctor(path)  # doctor says so before anything runs
    assert checks["passwords"].level == FAIL
    assert "CELERY_BROKER_URL in [worker] env differs from the password" in checks["passwords"].message
    proc = subprocess.Popen([DEVSTACK, "up", "--no-tui", "--config", str(path)], cwd=tmp_path,
                            env={**clean_environ(), "NO_COLOR": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 40
        seen_at = None
        for line in proc.stdout:
            lines.append(line.rstrip())
            if seen_at is None and "devstack | warning: worker: the Redis password this process sent is wrong" in line:
                seen_at = time.monotonic()
            # Celery retries after 2 s, 4 s...: wait for two more attempts to prove the notice is not repeated.
            if (seen_at and sum("invalid username-password" in ln for ln in lines) >= 3) \
                    or time.monotonic() > deadline or (seen_at and time.monotonic() > seen_at + 12):
                break
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            rest, _ = proc.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rest, _ = proc.communicate()
    output = "\n".join(lines) + rest
    notices = [ln for ln in output.splitlines() if "the Redis password this process sent is wrong" in ln]
    assert len(notices) == 1, output[-3000:]
    assert "WRONGPASS" in notices[0] and "CELERY_BROKER_URL" in notices[0]
    assert WRONG not in output and rs.password not in output


def test_sentinel_setup_checks_the_master_the_sentinels_name(tmp_path, redis_server, sentinel):
    url = f"sentinel://:{redis_server.password}@127.0.0.1:{sentinel}"
    path = external_config(tmp_path, url)
    path.write_text(path.read_text().replace(f'url = "{url}"', f'url = "{url}"\nmaster_name = "mymaster"'))
    checks, report = doctor(path)
    assert checks["redis"].level == OK, report
    assert f"master 'mymaster' at 127.0.0.1:{redis_server.port}" in checks["redis"].message
    assert checks["pending tasks"].level == OK and "not checked" not in checks["pending tasks"].message
    assert redis_server.password not in report

    path.write_text(path.read_text().replace('master_name = "mymaster"', 'master_name = "nosuch"'))
    checks, report = doctor(path)
    assert checks["redis"].level == FAIL, report
    assert "knows no master named 'nosuch'" in checks["redis"].message and "master_name" in checks["redis"].fix
