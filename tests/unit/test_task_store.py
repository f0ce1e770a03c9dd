"""The task history store: one row per id, newest state wins, terminal states stick, bounded."""
from __future__ import annotations

from devstack.broker import TaskEvent
from devstack.tasks import TaskHistory, TaskStore, find_row


def event(kind, uuid, ts, **fields):
    return TaskEvent(kind, uuid, fields.pop("name", None), "w1@host", ts, fields=fields)


def test_one_row_per_task_updated_in_place_and_a_late_event_does_not_undo_the_end(tmp_path):
    store = TaskStore(tmp_path / "t.sqlite3")
    store.record(event("received", "a", 1.0, name="demo.add"))
    store.record(event("succeeded", "a", 3.0, result="5"))
    store.flush()
    store.record(event("started", "a", 2.0, pid=42))  # a prefork batch that arrived late
    store.close()
    [row] = TaskHistory(tmp_path / "t.sqlite3").list()
    assert (row["state"], row["name"], row["result"], row["pid"]) == ("succeeded", "demo.add", "5", "42")
    assert row["times"] == {"received": 1.0, "started": 2.0, "succeeded": 3.0}


def test_a_retried_task_goes_on_and_a_captured_message_does_not_change_its_state(tmp_path):
    store = TaskStore(tmp_path / "t.sqlite3")
    for kind, ts in (("received", 1.0), ("started", 2.0), ("retried", 3.0), ("received", 4.0)):
        store.record(event(kind, "a", ts))
    store.flush()
    store.put({"id": "a", "body": "{}", "queue": "mail"})
    store.close()
    [row] = TaskHistory(tmp_path / "t.sqlite3").list()
    assert (row["state"], row["queue"], row["message_captured"]) == ("received", "mail", True)


def test_the_store_keeps_the_newest_n_and_clear_empties_it(tmp_path):
    store = TaskStore(tmp_path / "t.sqlite3", keep=100)
    for i in range(1000):
        store.record(event("received", f"id{i:04}", float(i)))
        if i % 97 == 0:
            store.flush()
    store.close()
    history = TaskHistory(tmp_path / "t.sqlite3")
    rows = history.list(limit=2000)
    assert len(rows) == 100 and rows[0]["id"] == "id0999" and rows[-1]["id"] == "id0900"
    assert find_row(history, "id0950")["id"] == "id0950"
    store = TaskStore(tmp_path / "t.sqlite3")
    assert store.clear() == 100
    store.close()
    assert history.list() == []


def test_filters_by_state_and_name(tmp_path):
    store = TaskStore(tmp_path / "t.sqlite3")
    store.record(event("failed", "a", 1.0, name="demo.fail"))
    store.record(event("succeeded", "b", 1.0, name="demo.add"))
    store.close()
    history = TaskHistory(tmp_path / "t.sqlite3")
    assert [r["id"] for r in history.list(state="failed")] == ["a"]
    assert [r["id"] for r in history.list(name="add")] == ["b"]
