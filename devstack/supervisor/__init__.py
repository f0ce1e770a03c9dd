"""Process supervision: one `Service` per supervised command, each run under a guard (see devstack/guard.py).

`spec` (what to run), `service` (the lifecycle), `output` (cleaning lines, log files), `spares` (warm
spares), `guard_client` (the parent side of the guard protocol). Processes are spawned only from the
event-loop thread: PR_SET_PDEATHSIG fires when the *thread* that forked exits, so a helper thread must
never spawn.
"""
from .guard_client import GUARD
from .output import MAX_LINE, PARTIAL_FLUSH, READ_CHUNK, LogFile, clean_line
from .service import BACKOFF_MAX, BACKOFF_START, HEALTHY_RESET, SPARE_DELAY, Service
from .spares import Spare, spare_interpreter
from .spec import ServiceSpec

__all__ = ["BACKOFF_MAX", "BACKOFF_START", "GUARD", "HEALTHY_RESET", "MAX_LINE", "PARTIAL_FLUSH", "READ_CHUNK",
           "SPARE_DELAY", "LogFile", "Service", "ServiceSpec", "Spare", "clean_line", "spare_interpreter"]
