"""The queues panel: every Celery queue with ready and reserved messages and the oldest one's age.

Enter opens the messages of the selected queue; `p` purges it (after a confirmation).
"""
from __future__ import annotations

from devstack.api import QueueInfo

from .processes import CellUpdates, human_duration


class QueuesPanel(CellUpdates):
    DEFAULT_CSS = """
    QueuesPanel { height: auto; max-height: 12; border: round $primary; }
    """

    def on_mount(self) -> None:
        self.border_title = "queues · Enter: messages · p: purge"
        self.cursor_type = "row"
        for column in ("queue", "ready", "reserved", "oldest"):
            self.add_column(column, key=column)
        self.infos: dict[str, QueueInfo] = {}

    @property
    def selected(self) -> QueueInfo | None:
        if self.row_count == 0:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return self.infos.get(str(key.value))

    _shown: tuple | None = None

    def show(self, infos: list[QueueInfo]) -> None:
        self.infos = {q.name: q for q in infos}
        rows = tuple((q.name, str(q.ready), str(q.reserved), human_duration(q.oldest_age)) for q in infos)
        if rows == self._shown:  # every second, and mostly unchanged
            return
        self._shown = rows
        with self.app.batch_update():
            for name in [str(k.value) for k in self.rows if str(k.value) not in self.infos]:
                self.remove_row(name)
            for row in rows:
                cells = dict(zip(("queue", "ready", "reserved", "oldest"), row))
                name = row[0]
                if name not in self.rows:
                    self.add_row(*cells.values(), key=name)
                    continue
                for column, value in cells.items():
                    old = self.get_cell(name, column)
                    if old != value:
                        self.update_cell(name, column, value, update_width=len(str(value)) > len(str(old)))
