"""Purging a queue, from the queues panel or a queue's messages screen: ask, purge off the UI loop, tell."""
from __future__ import annotations

from typing import Callable

from textual.app import App

from .confirm import ConfirmScreen


def confirm_purge(app: App, source, queue: str, ready: int, reserved: int,
                  after: Callable[[], None] | None = None) -> None:
    """Ask before deleting `queue`'s ready messages; `after` runs on the UI loop once they are gone."""
    question = (f"Purge queue {queue!r}? {ready} ready message(s) will be deleted "
                f"({reserved} reserved by a worker stay). This cannot be undone.")

    def purge() -> None:  # in a thread: Redis I/O
        try:
            removed = source.purge(queue)
        except Exception as exc:  # Redis went away: say so instead of crashing the app
            app.call_from_thread(app.notify, f"cannot purge {queue}: {exc}", severity="error")
            return
        app.call_from_thread(app.notify, f"purged {removed} message(s) from {queue}")
        if after is not None:
            app.call_from_thread(after)

    def answered(yes: bool | None) -> None:
        if yes:
            app.run_worker(purge, thread=True, group="purge", exit_on_error=False)

    app.push_screen(ConfirmScreen(question, yes="Purge"), answered)
