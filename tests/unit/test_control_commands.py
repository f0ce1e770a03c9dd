"""What `devstack status` prints about the stack's Redis, for each topology (no process needed)."""
from __future__ import annotations

from devstack.control_commands import redis_summary, status_text


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
