"""Hot reload: watch the project's files and restart the services that run the changed code.

`plan` decides which services a changed path concerns (watch paths, and which files each service
imported: `devstack.module_report`); `reloader` watches, batches and drives the engine's restarts.
"""
from ..watch_ignore import DEFAULT_IGNORE
from .plan import (DEFAULT_EXTENSIONS, RELOADED_SERVICES, TEMP_FILE, ReloadPlanner, ServiceWatch, describe_files,
                   glob_regex, service_watch)
from .reloader import READY_TIMEOUT, Reloader, ReloadRecord, ReloadTarget

__all__ = ["DEFAULT_EXTENSIONS", "DEFAULT_IGNORE", "READY_TIMEOUT", "RELOADED_SERVICES", "TEMP_FILE", "ReloadPlanner",
           "ReloadRecord", "ReloadTarget", "Reloader", "ServiceWatch", "describe_files", "glob_regex", "service_watch"]
