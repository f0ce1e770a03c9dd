"""No driver of devstack's own: the TUI runs on Textual's Linux driver.

The quiet input-thread driver that lived here copied Textual's input loop and needed its private parser
(`textual._xterm_parser`), so it was removed (its cost is in docs/benchmarks.md, "TUI: Textual overrides").
`compatible()` answers `DevstackApp.get_driver_class` until that method is removed from tui/app.py.
"""
from __future__ import annotations

QuietLinuxDriver = None


def compatible() -> bool:
    """Always False: Textual's own driver is the one to use."""
    return False
