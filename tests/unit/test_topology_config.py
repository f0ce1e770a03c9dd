"""The [redis] topology keys: which combinations are refused and with what message; the wiring each gives."""
from __future__ import annotations

import pytest

from devstack.config import ConfigError, load_config
from devstack.redis_server import RedisEndpoint
from devstack.topology.cluster import SLOTS, slot_ranges

APPS = '[api]\napp = "m:app"\n[worker]\napp = "m.celery"\n'


def load(tmp_path, redis: str):
    path = tmp_path / "devstack.toml"
    path.write_text(f"[redis]\n{redis}\n{APPS}")
    return load_config(explicit=path, cwd=tmp_path)


def refused(tmp_path, redis: str) -> str:
    with pytest.raises(ConfigError) as ei:
        load(tmp_path, redis)
    return str(ei.value)


def test_sentinel_topology_with_external_mode_needs_sentinel_urls(tmp_path):
    text = refused(tmp_path, 'topology = "sentinel"\nmode = "external"\nurl = "redis://h:6379/0"')
    assert "[redis] topology" in text and "sentinel://" in text and "Fix:" in text


def test_sentinel_topology_with_external_sentinels_is_the_existing_external_mode(tmp_path):
    cfg = load(tmp_path, 'topology = "sentinel"\nurl = "sentinel://h:26379"\nmaster_name = "m"')
    assert cfg.redis.mode == "external" and cfg.redis.is_sentinel


@pytest.mark.parametrize("redis,key", [
    ('topology = "cluster"\nmode = "docker"', "topology"),
    ('topology = "cluster"\nmode = "external"\nurl = "redis://h:6379/1"', "cluster_nodes"),
    ('cluster_nodes = ["h:7000"]', "cluster_nodes"),
    ('topology = "sentinel"\nreplicas = 1', "replicas"),
])
def test_topology_keys_that_do_not_fit_are_refused_with_the_fix(tmp_path, redis, key):
    text = refused(tmp_path, redis)
    assert f"[redis] {key}" in text and "Fix:" in text


def test_cluster_nodes_must_be_host_and_port(tmp_path):
    text = refused(tmp_path, 'topology = "cluster"\nmode = "external"\nurl = "redis://h/1"\ncluster_nodes = ["h"]')
    assert "host:port" in text


def test_cluster_port_leaves_room_for_the_bus_port(tmp_path):
    assert "55530" in refused(tmp_path, 'topology = "cluster"\ncluster_port = 60000')


def test_slots_cover_every_slot_once():
    ranges = slot_ranges()
    assert ranges[0][0] == 0 and ranges[-1][1] == SLOTS - 1
    assert all(a[1] + 1 == b[0] for a, b in zip(ranges, ranges[1:]))


def test_wiring_of_a_cluster_and_of_launched_sentinels():
    cluster = RedisEndpoint("embedded", "127.0.0.1", 6379, "pw", cluster=(("127.0.0.1", 7000), ("127.0.0.1", 7001)))
    env = cluster.wiring()
    assert env["REDIS_USE_CLUSTERS"] == "true" and env["REDIS_CLUSTERS"] == "127.0.0.1:7000,127.0.0.1:7001"
    assert env["REDIS_CLUSTERS_PASSWORD"] == "pw" and env["CELERY_BROKER_URL"] == "redis://:pw@127.0.0.1:6379/1"
    sentinel = RedisEndpoint("embedded", "127.0.0.1", 6379, "pw", master_name="m", sentinel_password="spw",
                             sentinels=(("127.0.0.1", 26379),), url_override="sentinel://:pw@127.0.0.1:26379/0")
    env = sentinel.wiring()
    assert env["REDIS_SENTINEL_PASSWORD"] == env["CELERY_SENTINEL_PASSWORD"] == "spw"
    assert env["CELERY_BROKER_URL"] == "sentinel://:pw@127.0.0.1:26379/1"
