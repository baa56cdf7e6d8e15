"""Named instants at which a process can be made to die, to prove that a crash there is safe.

`MLOPS_CRASH_AT=<name>` makes the process kill itself with SIGKILL when it reaches that instant:
no exception, no `finally`, no flush, exactly as the kernel's OOM killer or a node loss would
end it. The fault tests start real processes with it set; unset, a crash point is a dictionary
lookup. Read at each call, never at import.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "MLOPS_CRASH_AT"


def crash_point(name: str) -> None:
    """Die here, at once and uncleanly, if `$MLOPS_CRASH_AT` names this instant."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
