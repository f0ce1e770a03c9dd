"""What `devstack status` prints about the stack's Redis, for each topology (no process needed)."""
from __future__ import annotations

import os

import pytest

from devstack.control_commands import redis_summary, status_text
from devstack.errors import DevstackError


def test_standalone_is_mode_and_address():
    assert redis_summary({"mode": "embedded", "host": "127.0.0.1", "port": 6379}) == "embedded 127.0.0.1:6379"
    assert redis_summary({"mode": "binary", "host": None, "port": None}) == "binary (starting)"


def test_a_sentinel_topology_names_its_sentinels_and_the_first_master():
    text = redis_summary({"mode": "embedded", "host": "127.0.0.1", "port": 6379, "sentinels": [26379, 26380, 26381]})
    assert text == "embedded sentinel ×3 · master at start 127.0.0.1:6379"


def test_a_cluster_names_its_nodes_and_the_broker():
    text = redis_summary({"mode": "embedded", "host": "127.0.0.1", "port": 6379,
                          "cluster": ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"]})
    assert text == "embedded cluster ×3 · broker 127.0.0.1:6379"


def test_status_columns_fit_the_longest_name():
    row = {"state": "ready", "pid": 1, "uptime": 3.0, "restarts": 0}
    text = status_text({"project": "p", "solo": False, "redis": {"mode": "embedded", "host": "h", "port": 1,
                                                                  "version": "6.2"},
                        "services": {"redis-replica": row, "api": row}}, as_json=False)
    lines = text.splitlines()[1:]
    assert lines[0].index("ready") == lines[1].index("ready")


def test_status_shows_the_debugpy_port_of_a_service_under_debug():
    ready = {"state": "ready", "pid": 1, "uptime": 3.0, "restarts": 0}
    text = status_text({"project": "p", "solo": True, "redis": {"mode": "embedded", "host": "h", "port": 1,
                                                                "version": "6.2"},
                        "services": {"worker": {**ready, "debug": 5678}, "api": {**ready, "debug": None}}},
                       as_json=False)
    worker, api = text.splitlines()[1:]
    assert worker.endswith("restarts 0  debug :5678") and "debug" not in api


def _one_reply_server(tmp_path, reply: bytes) -> list[bytes]:
    """A control socket in `tmp_path` that answers one request with `reply` (a thread, no process)."""
    import socket
    import threading

    from devstack.control_client import socket_file

    requests: list[bytes] = []
    path = socket_file(tmp_path)
    if os.path.exists(path):
        os.unlink(path)  # the previous reply's
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def answer():
        conn, _ = server.accept()
        with conn:
            requests.append(conn.recv(65536))
            conn.sendall(reply)
        server.close()

    threading.Thread(target=answer, daemon=True).start()
    return requests


def test_status_prints_what_the_stack_rendered_and_decodes_an_older_stacks_reply(tmp_path):
    import json

    from devstack.control_commands import run_status

    status = {"project": "p", "solo": False, "services": {},
              "redis": {"mode": "embedded", "host": "h", "port": 1, "version": "6.2"}}
    requests = _one_reply_server(tmp_path, b"OK\n" + b'{\n  "as": "rendered"\n}')
    assert run_status(tmp_path, as_json=True) == '{\n  "as": "rendered"\n}'
    assert json.loads(requests[0]) == {"cmd": "status", "args": [], "render": "json"}
    _one_reply_server(tmp_path, json.dumps({"ok": True, "result": status}).encode() + b"\n")  # no `render` known
    assert run_status(tmp_path, as_json=False) == status_text(status, as_json=False)
    _one_reply_server(tmp_path, json.dumps({"ok": False, "error": "refused: another user"}).encode() + b"\n")
    with pytest.raises(DevstackError) as raised:  # not printed as a status
        run_status(tmp_path, as_json=True)
    assert raised.value.message == "refused: another user"
