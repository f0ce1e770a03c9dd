"""The error a mistake in the configuration raises: one paragraph naming file, key and fix."""
from __future__ import annotations

from pathlib import Path

from ..errors import DevstackError

__all__ = ["ConfigError"]


class ConfigError(DevstackError):
    """A user error in the configuration. ``str(e)`` is a one-paragraph message naming file, key and fix.

    The CLI prints it and exits with :attr:`exit_code` (2), without a traceback.
    """

    def __init__(self, message: str, *, path: Path | None = None, key: str | None = None):
        super().__init__(message, 2)
        self.path = path
        self.key = key
