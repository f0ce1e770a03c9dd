"""User-facing errors: one short paragraph naming the thing and the fix, never a traceback."""


class DevstackError(Exception):
    """An error the user can fix. `exit_code` 2 = usage/configuration, 1 = runtime."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
