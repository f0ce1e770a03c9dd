"""Where things are, on FakeSource: the API's URL (a link) and the interpreter in the header, the worker's pool
in the process list's title, the lower-left details panel (only on a tall terminal), a failed step's reason."""
from __future__ import annotations

import urllib.request
from dataclasses import replace

import pytest

from devstack.api import ServiceRow
from devstack.events import State
from tui.app import DevstackApp
from tui.details import MIN_SCREEN_HEIGHT, ProcessDetails

from tests.waiting import wait_until_async

from .fake_source import PYTHON, SERVICES, FakeSource
from .helpers import SIZE, demo_tui, select_row

pytestmark = pytest.mark.functional  # no child process, but the whole app for seconds a test


def _text(app, selector: str) -> str:
    return str(app.query_one(selector).render())


async def test_header_shows_the_api_url_as_a_link_and_the_interpreter():
    source = FakeSource()
    app = DevstackApp(source)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until_async(lambda: "127.0.0.1:5001" in _text(app, "#header #api"), 5, "the API's URL")
        api = app.query_one("#header #api").render()
        assert api.plain == "API http://127.0.0.1:5001"
        assert [span.style.link for span in api.spans if span.style.link] == ["http://127.0.0.1:5001"]
        assert _text(app, "#header #python") == f"Python {PYTHON}"
        assert app.processes.border_title == "processes · worker prefork ×2"

        await pilot.press("s")  # solo: the title says so
        await wait_until_async(lambda: app.processes.border_title == "processes · worker SOLO", 5, "SOLO in the title")


async def test_details_panel_shows_the_selected_process_and_only_on_a_tall_terminal():
    source = FakeSource()
    app = DevstackApp(source)
    async with app.run_test(size=SIZE) as pilot:
        details = app.query_one(ProcessDetails)
        await wait_until_async(lambda: "API http://127.0.0.1:5001" in _text(app, "#details"), 5, "where things are")
        assert details.display and details.border_title == "where things are"
        await select_row(pilot, "processes", "worker")
        await wait_until_async(lambda: details.border_title == "details · worker", 5, "the worker's details")
        assert "pool prefork ×2" in _text(app, "#details")

        await pilot.resize_terminal(SIZE[0], MIN_SCREEN_HEIGHT - 1)
        await wait_until_async(lambda: not details.display, 5, "the panel hidden on a short terminal")
        await pilot.resize_terminal(*SIZE)
        await wait_until_async(lambda: details.display, 5, "the panel back")


class FailedStepSource(FakeSource):
    def services(self):
        return [*SERVICES[:1], replace(SERVICES[1], state=State.BLOCKED, pid=None, uptime=None,
                                       last_error="api not started: migrate exited with code 3. Fix migrate"),
                ServiceRow("migrate", State.FAILED, None, None, 0, command=("flask", "db", "upgrade"),
                           last_error="migrate exited with code 3: relation users already exists")]


async def test_a_failed_step_shows_failed_with_its_code_and_its_blocked_dependent():
    app = DevstackApp(FailedStepSource())
    async with app.run_test(size=SIZE) as pilot:
        await wait_until_async(lambda: "migrate" in app.processes.rows, 5, "the step listed")
        assert app.processes.get_cell("migrate", "state").plain == "failed"
        assert app.processes.get_cell("api", "state").plain == "blocked"
        await select_row(pilot, "processes", "migrate")
        await wait_until_async(lambda: "relation users already exists" in _text(app, "#details"), 5, "the step's error")
        assert "migrate exited with code 3" in _text(app, "#details")
        assert "flask db upgrade" in _text(app, "#details")


async def test_the_real_stack_header_names_the_api_url_the_python_and_the_pool(tmp_path):
    """The same through devstack.api.Stack over the real demo stack (Redis, Flask, Celery)."""
    async with demo_tui(tmp_path) as (app, pilot, engine):
        url = f"http://127.0.0.1:{engine.config.api.port}"
        await wait_until_async(lambda: url in _text(app, "#header #api"), 10, "the API's URL in the header")
        assert engine.interpreter().python in _text(app, "#header #python")
        pool, concurrency = engine.worker_pool()
        assert app.processes.border_title == f"processes · worker {pool}" + (f" ×{concurrency}" if concurrency else "")
        with urllib.request.urlopen(url + "/", timeout=5) as answer:  # the URL shown is where the API answers
            assert answer.status < 500
