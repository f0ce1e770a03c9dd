"""`devstack beat` against a real stack (Redis, the demo's beat and worker): the entries of the app's
beat_schedule with last/next runs that match their schedule (still true once an entry was due and sent again:
the stack keeps a read until then), `beat run` sending one the worker runs,
and the listing read from beat's schedule file once the stack is stopped."""
from __future__ import annotations

import json
import time

import pytest

from tests.functional.test_cli import run_cli, stack  # noqa: F401  (stack: the fixture)
from tests.functional.test_tasks import wait_where
from tests.stack import write_demo_config
from tests.waiting import wait_until

pytestmark = pytest.mark.functional


def beat_json(s) -> dict:
    res = s.cli("beat", "--json")
    assert res.returncode == 0, res.stderr
    return {e["name"]: e for e in json.loads(res.stdout)["entries"]}


def test_beat_lists_entries_with_next_runs_and_runs_one_now(stack, tmp_path):
    config = write_demo_config(tmp_path)
    s = stack(config)
    s.wait_ready()

    # demo-tick runs every 10 s: once beat sent it, its next run is its last run + 10 s
    entries = wait_until(lambda: (e := beat_json(s))["demo-tick"]["total_run_count"] >= 1 and e, 40,
                         "beat to send demo-tick and save its schedule file", interval=0.5)
    tick = entries["demo-tick"]
    assert tick["task"] == "demo.tick" and tick["every"] == "every 10 s" and tick["queue"] == "celery", tick
    assert abs(tick["next_run"] - tick["last_run"] - 10) < 0.5, tick
    assert time.time() - 15 < tick["last_run"] <= time.time(), tick

    # the crontab entry: daily at 03:00, next run at the coming 03:00 local time
    nightly = entries["demo-nightly-tick"]
    assert nightly["every"] == "daily at 03:00" and nightly["last_run"] is None, nightly
    at = time.localtime(round(nightly["next_run"]))
    assert (at.tm_hour, at.tm_min, at.tm_sec) == (3, 0, 0) and 0 < nightly["next_run"] - time.time() <= 86400

    # the running stack reuses that read until an entry is due (it imports the app); once demo-tick's next run
    # has passed and beat sent it again, the listing says so
    assert wait_until(lambda: time.time() > tick["next_run"] + 1, 15, "demo-tick's next run to pass")
    again = wait_until(lambda: (e := beat_json(s)["demo-tick"])["total_run_count"] > tick["total_run_count"] and e,
                       15, "the listing to show demo-tick's next send", interval=0.5)
    assert again["last_run"] >= tick["next_run"] - 1 and abs(again["next_run"] - again["last_run"] - 10) < 0.5, again

    text = s.cli("beat").stdout
    assert "demo-tick" in text and "every 10 s" in text and "daily at 03:00" in text

    # run now: sent through the broker, run by the worker, seen in the history
    res = s.cli("beat", "run", "demo-nightly-tick")
    assert res.returncode == 0, res.stderr
    task_id = res.stdout.strip()
    assert len(task_id) == 36 and "queue celery" in res.stderr
    done = wait_where(s, task_id, "done", state="succeeded")
    assert done["name"] == "demo.tick" and done["queue"] == "celery", done

    res = s.cli("beat", "run", "no-such-entry")
    assert res.returncode != 0 and "demo-tick, demo-nightly-tick" in res.stderr, res.stderr

    # no stack: the same listing, last runs from the file beat left
    s.stop()
    res = run_cli("beat", "--json", "--config", str(config), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    offline = {e["name"]: e for e in json.loads(res.stdout)["entries"]}
    assert offline["demo-tick"]["total_run_count"] >= 1 and offline["demo-tick"]["last_run"] >= tick["last_run"]
    res = run_cli("beat", "run", "demo-tick", "--config", str(config), cwd=tmp_path)
    assert res.returncode == 1 and "needs the running stack" in res.stderr
