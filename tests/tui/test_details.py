"""The details panel (tui/details.py): shown every second with the selected process's row, it lays the screen
out only when its height changes, and draws what a `Static` updated every time (with a layout) draws."""
from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Static

from devstack.api import HeaderInfo, ServiceRow
from devstack.events import State

from tests.tui.test_render_equivalence import LayoutCounter, assert_same_screens, screenshots
from tui.details import ProcessDetails, _row_text, _stack_text

HEADER = HeaderInfo(project="demo", redis="embedded 127.0.0.1:6379", solo=False, python="/app/.venv/bin/python",
                    api_url="http://127.0.0.1:5000")
COMMAND = ("/app/.venv/bin/celery", "-A", "app.celery", "worker", "-P", "prefork", "-c", "2", "-Q", "dataset,mail")


def row(name: str, uptime: float, last_error: str | None = None) -> ServiceRow:
    return ServiceRow(name, State.READY, 4242, uptime, 0, command=COMMAND if name == "worker" else ("flask", "run"),
                      last_error=last_error, detail="prefork ×2" if name == "worker" else "")


class AlwaysUpdated(ProcessDetails):
    """What the panel did before: a `Static.update` (a layout) whenever the row changed, uptime included."""

    def show(self, selected, rows, header) -> None:
        found = next((r for r in rows if r.name == selected), None)
        self.border_title = f"details · {selected}" if found else "where things are"
        self.update(_row_text(found) if found else _stack_text(header))


class DetailsApp(App):
    CSS = "#top { height: 1fr; }"

    def __init__(self, cls) -> None:
        super().__init__()
        self.cls = cls

    def compose(self) -> ComposeResult:
        yield Static("above", id="top")
        yield self.cls(id="details")


SHOWS = [("all", 1.0, None)] + [("worker", 2.0 + i, None) for i in range(6)] + [
    ("worker", 9.0, "ModuleNotFoundError: No module named 'pydantic_settings'. Fix: set [project] python " * 2),
    ("worker", 10.0, "ModuleNotFoundError: No module named 'pydantic_settings'. Fix: set [project] python " * 2),
    ("api", 11.0, None), ("api", 12.0, None), ("worker", 13.0, None), ("all", 14.0, None)]


async def details_screens(cls) -> tuple[list[str], list[int]]:
    """A screenshot and the screen layouts of each show."""
    with LayoutCounter() as counter:
        app = DetailsApp(cls)
        shots, layouts = [], []
        async with app.run_test(size=(60, 30)) as pilot:
            details = app.query_one(ProcessDetails)
            await pilot.pause()
            for name, uptime, error in SHOWS:
                counter.layouts = 0
                details.show(name, [row("api", uptime), row("worker", uptime, error)], HEADER)
                await pilot.pause()
                shots.append(app.export_screenshot())
                layouts.append(counter.layouts)
    return screenshots(shots), layouts


async def test_the_details_panel_lays_out_only_when_its_height_changes():
    expected, every_time = await details_screens(AlwaysUpdated)
    got, layouts = await details_screens(ProcessDetails)
    assert_same_screens(expected, got)
    assert len(got) == len(SHOWS)
    assert all(every_time), every_time  # the uptime changed at every show: a layout each time
    # the same text again (only the uptime moved): no layout; a long error wraps (taller), api's text is shorter,
    # worker's taller again: laid out
    same_text = [2, 3, 4, 5, 6, 8, 10]
    assert [layouts[i] for i in same_text] == [0] * len(same_text), layouts
    assert all(layouts[i] for i in (7, 9, 11)), layouts
    assert "pydantic_settings" in got[7] and "pydantic_settings" not in got[9] and "flask" in got[9]


class CountingDetails(ProcessDetails):
    rendered = 0

    def render_lines(self, crop):
        CountingDetails.rendered += crop.height
        return super().render_lines(crop)


async def test_the_same_text_again_is_not_drawn_again():
    """The panel is shown every second; when its text and title are what it shows already, nothing of it is drawn
    (a same-value border_title assignment repaints a widget in Textual: it was 51 ms a minute of an idle TUI)."""
    app = DetailsApp(CountingDetails)
    async with app.run_test(size=(60, 30)) as pilot:
        details = app.query_one(ProcessDetails)
        details.show("all", [row("worker", 1.0)], HEADER)
        await pilot.pause()
        await pilot.pause()
        assert CountingDetails.rendered > 0
        for name, first in (("all", True), ("worker", False)):
            if not first:
                details.show(name, [row("worker", 1.0)], HEADER)  # another text: drawn
                await pilot.pause()
            CountingDetails.rendered = 0
            for uptime in range(2, 6):
                details.show(name, [row("worker", float(uptime))], HEADER)
                await pilot.pause()
            assert CountingDetails.rendered == 0, name
