"""Start a server, say where it answers once it does, and stay its parent until it stops.

The UI, MLflow and the service take from seconds to minutes to bind on a small machine; a URL
printed before they answer reads as broken. So `mlops ui|mlops mlflow|mlops serve` start the
server as a child, poll a cheap page of it, and print `... ready at URL` when it answers.
Ctrl-C reaches the child through the terminal's process group; SIGTERM sent to the parent
alone is passed on, so stopping `mlops` stops the server.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

POLL_SECONDS = 0.5


def run_server(
    command: Sequence[str],
    probe_url: str,
    announce: Callable[[], None],
    *,
    env: dict[str, str] | None = None,
) -> int:
    """Run `command` until it exits; call `announce` once `probe_url` answers. Its exit code."""
    child = subprocess.Popen(list(command), env=env)
    previous = {
        sig: signal.signal(sig, lambda number, _frame: _pass_on(child, number))
        for sig in (signal.SIGTERM, signal.SIGHUP)
    }
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the child gets it
    try:
        if wait_until_answers(probe_url, child.poll):
            announce()
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_until_answers(url: str, exited: Callable[[], int | None]) -> bool:
    """True once `url` answers any HTTP status below 500; False if the server exits first."""
    while exited() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return True
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(POLL_SECONDS)
    return False


def _pass_on(child: subprocess.Popen, number: int) -> None:
    if child.poll() is None:
        child.send_signal(number)


def say(message: str) -> None:
    """One line on stdout, flushed (the server's own output interleaves with ours)."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()
