"""A task's worker log lines: the lines naming its id and the traceback lines continuing them, newest kept."""
from devstack.tasks import task_log_lines

ID = "0b0e5c2a-7f4e-4a51-9a53-2f1d3c4b5a61"
OTHER = "99999999-7f4e-4a51-9a53-2f1d3c4b5a61"


def test_matching_lines_and_their_traceback(tmp_path):
    log = tmp_path / "worker.log"
    log.write_text("\n".join([
        f"[2024-01-01 00:00:00,000: INFO/MainProcess] Task demo.fail[{ID}] received",
        f"[2024-01-01 00:00:00,001: INFO/MainProcess] Task demo.add[{OTHER}] received",
        f"[2024-01-01 00:00:00,010: ERROR/ForkPoolWorker-1] Task demo.fail[{ID}] raised unexpected: ValueError('x')",
        "Traceback (most recent call last):",
        '  File "tasks.py", line 3, in fail',
        "ValueError: x",
        f"[2024-01-01 00:00:00,020: INFO/ForkPoolWorker-2] Task demo.add[{OTHER}] succeeded in 0.01s: 2",
    ]) + "\n")
    lines = task_log_lines(log, ID)
    assert lines[0].endswith("received") and lines[-1] == "ValueError: x" and len(lines) == 5
    assert not any(OTHER in line for line in lines)
    assert task_log_lines(log, ID, limit=2) == ['  File "tasks.py", line 3, in fail', "ValueError: x"]
    assert task_log_lines(tmp_path / "missing.log", ID) == [] and task_log_lines(log, "0b0e") == []
