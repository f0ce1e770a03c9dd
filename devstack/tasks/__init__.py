"""Task history and per-task commands: the bounded SQLite store fed by Celery's task events (`store`),
finding a message by id in the broker (`finder`), "where is my task?" (`where`), replay and revoke
(`actions`), its worker log lines (`logs`), all composed for a running stack by `tracker.TaskTracker`. Never imports the user's app.
"""
from .actions import ReplayPlan, plan_replay
from .finder import Located, MessageFinder
from .logs import log_path, task_log_lines
from .store import DEFAULT_KEEP, STATES, TaskHistory, TaskStore, store_path
from .tracker import TaskTracker, find_row
from .where import WhereLookup, offline_answer

__all__ = ["TaskStore", "TaskHistory", "store_path", "DEFAULT_KEEP", "STATES", "MessageFinder", "Located",
           "WhereLookup", "offline_answer", "ReplayPlan", "plan_replay", "TaskTracker", "find_row",
           "log_path", "task_log_lines"]
