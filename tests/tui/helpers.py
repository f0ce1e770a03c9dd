"""Running the TUI over the real demo stack in tests, and selecting a table row once it is there."""
from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from devstack.config import load_config
from devstack.api import Stack
from devstack.engine import Engine
from devstack.events import State
from tests.stack import write_demo_config
from tests.waiting import wait_until_async
from tui.app import DevstackApp

SIZE = (140, 45)


@asynccontextmanager
async def demo_tui(tmp_path: Path, *, solo: bool = False, **config):
    """Yields (app, pilot, engine) once every service is ready; always stops the stack."""
    engine = Engine(load_config(write_demo_config(tmp_path / "project", **config)), solo=solo)
    app = DevstackApp(Stack(engine))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until_async(
                lambda: engine.services and all(s.state == State.READY for s in engine.services.values()),
                45, "every demo service to be ready")
            yield app, pilot, engine
    finally:
        await app.source.shutdown()


def cell(app, table_id: str, row: str, column: str) -> str:
    return str(app.query_one(f"#{table_id}").get_cell(row, column))


async def select_row(pilot, table_id: str, row: str) -> None:
    table = pilot.app.query_one(f"#{table_id}")
    await wait_until_async(lambda: row in table.rows, 10, f"row {row} in #{table_id}")
    table.focus()
    table.move_cursor(row=table.get_row_index(row))
    await pilot.pause()


def send_tasks(engine, *calls: tuple[str, tuple, dict | None]) -> list[str]:
    """Blocking (run it with asyncio.to_thread): publish tasks by name, as the API would."""
    from celery import Celery

    celery = Celery("tui-test", broker=engine.endpoint.url(1), backend=engine.endpoint.url(1),
                    set_as_current=False)
    try:
        ids = []
        for name, args, options in calls:
            ids.append(celery.send_task(name, args=args, **(options or {})).id)
        return ids
    finally:
        celery.close()
