"""`devstack doctor` on a running sentinel group and cluster (real redis-server nodes): OK while they agree
and serve every slot; a held-down node is named with the fix."""
from __future__ import annotations

import pytest

from tests.functional.test_orphans import DevstackRun
from tests.functional.test_topology_cluster import cluster_config
from tests.functional.test_topology_sentinel import sentinel_config

pytestmark = pytest.mark.functional


def topology_line(run: DevstackRun) -> str:
    res = run.cli("doctor")
    assert "Traceback" not in res.stdout + res.stderr
    lines = [ln for ln in (res.stdout + res.stderr).splitlines() if "redis topology" in ln]
    assert len(lines) == 1, res.stdout
    return lines[0]


def test_doctor_checks_the_sentinels_agree_and_names_one_that_is_down(tmp_path):
    run = DevstackRun(sentinel_config(tmp_path)).start()
    try:
        run.wait_ready(60)
        line = topology_line(run)
        assert "OK" in line and "3 sentinels agree" in line and "mymaster" in line, line
        assert run.cli("kill", "sentinel-2", "--hold").returncode == 0
        line = topology_line(run)
        assert "FAIL" in line and "sentinel-2" in line and "does not answer" in line, line
    finally:
        run.stop()


def test_doctor_checks_the_cluster_state_and_names_a_node_that_is_down(tmp_path):
    run = DevstackRun(cluster_config(tmp_path)).start()
    try:
        run.wait_ready(60)
        line = topology_line(run)
        assert "OK" in line and "state ok, all 16384 slots served" in line, line
        assert run.cli("kill", "cluster-2", "--hold").returncode == 0
        line = topology_line(run)
        assert "FAIL" in line and "cluster-2" in line, line
    finally:
        run.stop()
