"""Scroll views whose box the stylesheet sets: a new line or row updates their scrollbars, not the screen's layout."""
from __future__ import annotations

from contextlib import contextmanager


class ScrollsInPlace:
    """For a scroll view (`Log`, `DataTable`) whose size on screen does not depend on its content.

    Textual declares `virtual_size` (the scrollable size) as a layout reactive: every `Log.write_lines` and every
    `DataTable.add_row` lays out the whole screen (20-30 ms at 160x48 on a 2-core machine, then a frame that
    repaints everything the layout touched). For a view whose height and width come from CSS (`1fr`, `10`),
    a layout changes nothing but the view's own scrollbars, which are updated here in place, as the layout
    would (`Widget._scroll_update`, what `ScrollView._size_updated` calls). A scrollbar appearing or going sets
    a layout reactive of its own and still lays out, as it changes the content width. With an `auto` size
    the layout is needed and happens as in Textual."""

    _virtual_size_changed = False
    _content_changing = 0

    @contextmanager
    def content_changing(self):
        """A change of the view's content inside the block (`DataTable.remove_row`, which asks for a layout
        itself, not through `virtual_size`) updates the scrollbars in place too."""
        self._content_changing += 1
        try:
            yield
        finally:
            self._content_changing -= 1

    def watch_virtual_size(self, old, new) -> None:
        # A reactive runs its watchers, then `refresh(layout=True)` at once, on the same object.
        self._virtual_size_changed = True

    def refresh(self, *regions, repaint: bool = True, layout: bool = False, recompose: bool = False):
        if self._virtual_size_changed or self._content_changing:
            self._virtual_size_changed = False
            if layout and not recompose and not regions and self._box_from_css():
                self._scroll_update(self.virtual_size)
                layout = False
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def _box_from_css(self) -> bool:
        styles = self.styles
        return (self.is_mounted and styles.height is not None and not styles.height.is_auto
                and (styles.width is None or not styles.width.is_auto))


class TableScrollsInPlace(ScrollsInPlace):
    """For a `DataTable`: `remove_row` asks for a screen layout itself (not through `virtual_size`); here it
    updates the scrollbars in place as well. The rows' new height reaches `virtual_size` at the table's next
    idle, as in Textual."""

    def remove_row(self, row_key) -> None:
        with self.content_changing():
            super().remove_row(row_key)
