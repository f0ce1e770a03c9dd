"""Past the inotify watch limit the reloader polls instead of missing changes silently (watchfiles, with
`ignore_permission_denied`, leaves the folders past the limit out without a word)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.functional.test_cli import stack  # noqa: F401  (fixture)
from tests.stack import write_demo_config
from tests.waiting import wait_until

pytestmark = pytest.mark.functional

# A user namespace of its own, with an inotify limit of 3 watches: what a container or a crowded
# desktop (editors, other watchers) leaves a big project.
LOW_LIMIT = ["unshare", "--user", "--map-root-user", "sh", "-c",
             'echo 3 > /proc/sys/user/max_inotify_watches && exec "$@"', "sh"]


def _user_namespaces() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run([*LOW_LIMIT, "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _user_namespaces(), reason="this machine cannot make a user namespace (unshare --user) "
                                                   "to lower the inotify limit in")
def test_a_project_past_the_inotify_limit_is_polled_and_a_deep_save_still_reloads(stack, tmp_path):  # noqa: F811
    deep = tmp_path / "src" / "a" / "b" / "c" / "d" / "e"
    deep.mkdir(parents=True)
    (deep / "job.py").write_text("X = 1\n")
    config = write_demo_config(tmp_path, worker="watch = ['src']", api="watch = ['api_only.py']",
                               beat="watch = ['beat_only.py']")
    s = stack(config, prefix=LOW_LIMIT)
    s.wait_ready()
    assert "above the inotify limit (user.max_inotify_watches = 3): watching by polling" in s.output
    assert "sudo sysctl --system" in s.output
    pid = s.status()["services"]["worker"]["pid"]
    (deep / "job.py").write_text("X = 2\n")
    wait_until(lambda: s.status()["services"]["worker"]["pid"] != pid, 30, "the worker restarted by the deep save")
    assert "restarting worker" in s.output
    assert s.status()["services"]["api"]["restarts"] == 0
