"""The pdb input line under the log: shown when a solo worker stops at `(Pdb)`, sends typed lines to its stdin."""
from __future__ import annotations

from textual.widgets import Input

PDB_PROMPT = "(Pdb)"
LEAVES_PDB = {"c", "cont", "continue", "q", "quit", "exit"}
"""Commands after which pdb stops prompting, so the input line hides."""


class DebugInput(Input):
    """Hidden until the worker prints a `(Pdb)` prompt in solo mode."""

    DEFAULT_CSS = """
    DebugInput { display: none; border: tall $warning; }
    DebugInput.-active { display: block; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(placeholder="pdb › type a command for the worker (p x, n, s, c) and press Enter",
                         **kwargs)
        self.border_title = "worker is at a breakpoint"

    def activate(self) -> None:
        if not self.has_class("-active"):
            self.add_class("-active")
            self.focus()

    def deactivate(self) -> None:
        self.remove_class("-active")
