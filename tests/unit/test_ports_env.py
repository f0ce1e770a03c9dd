"""`devstack env` with no stack running wires the Redis port `devstack up` would take (ports.py's one
rule), and says so on stderr when that is not simply the configured port. Real sockets hold the ports."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from devstack.config import load_config
from devstack.errors import DevstackError
from devstack.oneoff import redis_port_note, stack_env
from devstack.ports import choose_port, is_free, port_up_would_use

from tests.stack import free_port

DEFAULT_REDIS_PORT = 6379


def hold(port: int) -> socket.socket | None:
    """A listening socket on `port`, or None if something else already holds it (taken either way)."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    s.listen()
    return s


@pytest.fixture
def held_default():
    s = hold(DEFAULT_REDIS_PORT)
    yield DEFAULT_REDIS_PORT
    if s is not None:
        s.close()


def write_config(folder: Path, redis: str = "") -> Path:
    path = folder / "devstack.toml"
    path.write_text(f'[project]\nname = "p"\n\n[redis]\nmode = "embedded"\n{redis}\n\n'
                    '[api]\napp = "devstack.demo.app:app"\n\n[worker]\nenabled = false\n')
    return path


def test_a_taken_default_moves_to_the_first_free_port_above_it(held_default):
    chosen = port_up_would_use(held_default, explicit=False)
    assert chosen is not None and chosen > held_default and is_free(chosen)
    assert not any(is_free(p) for p in range(held_default, chosen))
    assert choose_port(held_default, explicit=False, what="Redis", key="[redis] port") == chosen


def test_a_taken_explicit_port_stays_and_up_would_refuse(held_default):
    assert port_up_would_use(held_default, explicit=True) == held_default
    with pytest.raises(DevstackError, match=r"Port 6379 for Redis is already in use.*Fix:"):
        choose_port(held_default, explicit=True, what="Redis", key="[redis] port")


def test_env_shows_the_port_up_would_take_and_says_why(tmp_path, held_default):
    config = load_config(write_config(tmp_path))
    env, _ = stack_env(config, environ={})
    port = int(env["REDIS_PORT"])
    assert port == port_up_would_use(held_default, explicit=False) and port != held_default
    assert f"127.0.0.1:{port}/" in env["REDIS_URL"]
    note = redis_port_note(config)
    assert f"Redis port {held_default} is taken" in note and f"shows {port}" in note and "[redis] port" in note


def test_env_keeps_an_explicit_port_and_warns_when_it_is_taken(tmp_path, held_default):
    config = load_config(write_config(tmp_path, f"port = {held_default}"))
    assert stack_env(config, environ={})[0]["REDIS_PORT"] == str(held_default)
    assert "`devstack up` will refuse to start" in redis_port_note(config)


def test_env_says_nothing_when_the_configured_port_is_free(tmp_path):
    port = free_port()
    config = load_config(write_config(tmp_path, f"port = {port}"))
    assert stack_env(config, environ={})[0]["REDIS_PORT"] == str(port)
    assert redis_port_note(config) is None
