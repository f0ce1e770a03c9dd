"""A per-pass cache of `rich_style` for widgets that render many lines."""
from __future__ import annotations


class StyleOncePerPass:
    """Computes `rich_style` once per `render_lines` pass instead of once per line.

    `Log` and `DataTable` ask for `self.rich_style` for every line they render, and Textual computes it
    anew each time by blending the styles of every ancestor: for a 44-line log that was about half of
    repainting it. Within one pass the widget's style cannot change, so the first answer is reused."""

    _in_pass = False
    _pass_style = None

    def render_lines(self, crop):
        self._in_pass = True
        try:
            return super().render_lines(crop)
        finally:
            self._in_pass = False
            self._pass_style = None

    @property
    def rich_style(self):
        if not self._in_pass:
            return super().rich_style
        if self._pass_style is None:  # asked only when a line is rendered, not for cached lines
            self._pass_style = super().rich_style
        return self._pass_style
