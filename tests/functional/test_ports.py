"""Default ports move when taken; an explicit port that is taken names its owner (another stack: its folder)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.functional.test_cli import Stack, run_cli, wait_for
from tests.functional.test_oneoff import stacks  # noqa: F401  (the fixture)
from tests.stack import http_get

pytestmark = pytest.mark.functional

NO_PORTS = """
[api]
app = "devstack.demo.app:app"

[worker]
app = "devstack.demo.app:celery"
concurrency = 1

[beat]
enabled = false
"""


def api_port(stack: Stack) -> int:
    """The API's port, from the `flask run` line in its log (the config does not set it)."""
    log = stack.folder / ".devstack" / "logs" / "api.log"
    return int(re.search(r"Running on http://127\.0\.0\.1:(\d+)", log.read_text()).group(1))


@pytest.fixture
def two_folders(tmp_path, stacks):
    def make(name: str) -> Stack:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "devstack.toml").write_text(NO_PORTS)
        return stacks(folder / "devstack.toml", folder)

    return make


def test_two_stacks_in_two_folders_both_start_without_any_port_configured(two_folders):
    first = two_folders("first")
    first.wait_ready()
    second = two_folders("second")
    second.wait_ready()
    one, two = first.status(), second.status()
    assert one["redis"]["port"] != two["redis"]["port"]
    assert api_port(first) != api_port(second)
    for stack in (first, second):
        assert http_get(f"http://127.0.0.1:{api_port(stack)}/") is not None
    if one["redis"]["port"] == 6379:  # the default was free for the first (no other stack on this machine)
        assert f"Redis: port 6379 is taken by the devstack stack of {first.folder}, so this stack uses " \
               f"{two['redis']['port']}" in second.output
    # the apps get the port chosen through their environment
    env = run_cli("env", "worker", "--json", cwd=second.folder)
    assert f'"REDIS_PORT": "{two["redis"]["port"]}"' in env.stdout
    task = http_get(f"http://127.0.0.1:{api_port(second)}/tasks/add?x=2&y=2")
    wait_for(lambda: (http_get(f"http://127.0.0.1:{api_port(second)}/tasks/{task['id']}") or {}).get("result") == 4,
             30, what="a task through the second stack")

    # an edit of devstack.toml restarts the API on the port it was given, not on the taken default
    port, pid = api_port(second), two["services"]["api"]["pid"]
    (second.folder / "devstack.toml").write_text(NO_PORTS + '\n[env]\nEDITED = "1"\n')
    wait_for(lambda: (st := second.status()["services"]["api"])["pid"] != pid and st["state"] == "ready", 60,
             what="the api restarted for the config change")
    assert http_get(f"http://127.0.0.1:{port}/") is not None, second.output[-3000:]


def test_a_taken_explicit_port_names_the_stack_that_holds_it(two_folders, tmp_path):
    first = two_folders("first")
    first.wait_ready()
    port = first.status()["redis"]["port"]
    folder = tmp_path / "third"
    folder.mkdir()
    (folder / "devstack.toml").write_text(f"[redis]\nport = {port}\n" + NO_PORTS)
    res = run_cli("up", "--no-tui", cwd=folder, timeout=60)
    assert res.returncode == 1
    assert f"Port {port} for Redis is already in use by the devstack stack of {first.folder}" in res.stderr
    assert f"`devstack down` in {first.folder}" in res.stderr
    assert "Traceback" not in res.stderr
    assert first.status()["services"]["redis"]["state"] == "ready"  # the first stack is untouched
    assert not Path(folder / ".devstack" / "processes.json").exists()
