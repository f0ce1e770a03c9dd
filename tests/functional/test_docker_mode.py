"""`[redis] mode = "docker"` against tests/fakes/docker (no Docker engine runs on CI).

The stand-in accepts the docker CLI subset devstack uses and runs the real redis-server, so what is
tested is the contract: the argv devstack passes (published on 127.0.0.1 only, labelled, no password),
stale labelled containers removed at start, and no container left after shutdown.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import psutil
import pytest
import redis

from devstack.redis_server import DOCKER_LABEL, project_label
from tests.conftest import answers, free_port, redis_server_binary
from tests.functional.test_orphans import KILL_WAIT, DevstackRun, alive
from tests.stack import http_get
from tests.stack import write_demo_config
from tests.waiting import poll_until, wait_until

pytestmark = pytest.mark.functional

FAKES = Path(__file__).resolve().parent.parent / "fakes"


@pytest.fixture
def docker_env(tmp_path) -> dict[str, str]:
    state = tmp_path / "fake-docker-state"
    env = dict(os.environ, PATH=f"{FAKES}{os.pathsep}{os.environ.get('PATH', '')}",
               FAKE_DOCKER_STATE=str(state), FAKE_DOCKER_REDIS_SERVER=redis_server_binary())
    yield env
    # whatever a failed test left: remove every fake container it created
    _docker(env, "rm", "-f", *_docker(env, "ps", "-aq").stdout.split())


def _docker(env: dict[str, str], *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(FAKES / "docker"), *args], env=env, capture_output=True, text=True, timeout=30, **kw)


def _containers(env: dict[str, str]) -> list[dict]:
    return [json.loads(p.read_text()) for p in Path(env["FAKE_DOCKER_STATE"]).glob("*.json")]


def _docker_config(folder: Path) -> Path:
    return write_demo_config(folder, redis='mode = "docker"')


def _wait_task(run: DevstackRun, path: str, timeout: float = 20) -> dict:
    with urllib.request.urlopen(urllib.request.Request(run.api_url(path), method="POST"), timeout=5) as resp:
        task_id = json.loads(resp.read())["id"]

    def finished() -> dict | None:
        body = http_get(run.api_url(f"/tasks/{task_id}"))
        return body if body and body["state"] in ("SUCCESS", "FAILURE") else None

    return run.wait_for(finished, timeout, f"task {path} to finish")


def test_docker_mode_runs_the_stack_and_leaves_no_container(tmp_path, docker_env):
    run = DevstackRun(_docker_config(tmp_path), env=docker_env).start()
    try:
        run.wait_ready()
        result = _wait_task(run, "/tasks/add?x=20&y=22")
        assert result["state"] == "SUCCESS" and result["result"] == 42

        port = run.settings()["redis"]["port"]
        label = project_label(run.state_dir)
        status = json.loads(run.cli("status", "--json").stdout)
        assert status["redis"]["mode"] == "docker"
        argv = status["services"]["redis"]["command"]
        assert argv[1] == "run" and "--rm" in argv
        assert argv[argv.index("-p") + 1] == f"127.0.0.1:{port}:6379", argv
        assert argv[argv.index("--label") + 1] == f"{DOCKER_LABEL}={label}", argv
        password = (run.state_dir / "redis.password").read_text().strip()
        assert not any(password in arg for arg in argv), "the password is on docker's command line"
        assert not any("requirepass" in arg for arg in argv)

        containers = _containers(docker_env)
        assert len(containers) == 1 and containers[0]["labels"] == {DOCKER_LABEL: label}
        container_pid = containers[0]["pid"]
        server = psutil.Process(container_pid)
        assert not any(password in arg for arg in server.cmdline())
        assert _docker(docker_env, "ps", "-aq", "--filter", f"label={DOCKER_LABEL}={label}").stdout.split() \
            == [containers[0]["id"][:12]]

        down = run.cli("down")
        assert down.returncode == 0, down.stderr
        run.proc.wait(30)
        assert _containers(docker_env) == [], "a container outlived `devstack down`"
        assert not alive([server])
    finally:
        run.stop()


def _start_stale_container(tmp_path: Path, env: dict[str, str], label: str, port: int) -> dict:
    """What a killed run leaves: a labelled container whose client is gone (real Docker keeps it running)."""
    root = tmp_path / f"stale-{label}"
    (root / "data").mkdir(parents=True)
    conf = root / "redis.conf"
    conf.write_text("bind 0.0.0.0\nport 6379\ndir /data\nrequirepass stale-pw\nappendonly no\nsave \"\"\n")
    client = subprocess.Popen(
        [str(FAKES / "docker"), "run", "--rm", "--name", f"devstack-{label}-redis", "--label",
         f"{DOCKER_LABEL}={label}", "-p", f"127.0.0.1:{port}:6379", "-v",
         f"{conf}:/usr/local/etc/redis/redis.conf:ro", "-v", f"{root / 'data'}:/data", "redis:6-alpine",
         "redis-server", "/usr/local/etc/redis/redis.conf"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_until(lambda: answers(redis.Redis(port=port, password="stale-pw")), 10, "the stale container's Redis")
    client.send_signal(signal.SIGKILL)
    client.wait()
    (container,) = [c for c in _containers(env) if c["labels"].get(DOCKER_LABEL) == label]
    assert psutil.pid_exists(container["pid"]), "the fake should keep a container whose client was killed"
    return container


def test_stale_labelled_container_is_removed_at_next_start(tmp_path, docker_env):
    config = _docker_config(tmp_path)
    port = DevstackRun(config).settings()["redis"]["port"]
    ours = _start_stale_container(tmp_path, docker_env, project_label(tmp_path / ".devstack"), port)
    other = _start_stale_container(tmp_path, docker_env, "otherproject", free_port())
    stale = psutil.Process(ours["pid"])
    unrelated = psutil.Process(other["pid"])

    run = DevstackRun(config, env=docker_env).start()
    try:
        run.wait_ready()
        assert "removed 1 stale Docker container" in run.output()
        assert not alive([stale]), "the stale container of this project is still running"
        assert alive([unrelated]), "a container of another project was removed"
        ids = {c["id"] for c in _containers(docker_env)}
        assert ours["id"] not in ids and other["id"] in ids
        result = _wait_task(run, "/tasks/add?x=1&y=1")
        assert result["result"] == 2
    finally:
        run.stop()
    assert [c["id"] for c in _containers(docker_env)] == [other["id"]]


def test_sigkill_of_devstack_stops_the_container(tmp_path, docker_env):
    """The guard's SIGTERM reaches the container through the client's signal proxy, as with real Docker."""
    run = DevstackRun(_docker_config(tmp_path), env=docker_env).start()
    try:
        run.wait_ready()
        (container,) = _containers(docker_env)
        tree = run.tree() + [psutil.Process(container["pid"])]
        run.kill()
        poll_until(lambda: not alive(tree), KILL_WAIT)
        assert not alive(tree)
        assert _docker(docker_env, "ps", "-q").stdout.split() == [], "a container still runs"
    finally:
        run.stop()
