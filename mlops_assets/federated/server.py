"""XGBoost's federated server, stopped when its sites are gone instead of waiting forever.

XGBoost's server waits for every site at every collective step: with one site killed or never
arriving, it (and the sites still connected) would wait until someone kills them. Here the
server counts its established connections (from the kernel's socket table, so nothing of the
protocol is touched) and stops, saying so, once fewer sites than it has seen (or fewer than it
expects) have been connected for `timeout` seconds. At the end of a good run the sites
disconnect as they finish, and the server has returned by then.

XGBoost's native server listens on every interface (it takes no address); the sites connect
to the address they are given, loopback when `mlops run` starts them on one machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

POLL_SECONDS = 0.5
ESTABLISHED = "01"  # the TCP state's code in /proc/net/tcp


class ServerStopped(RuntimeError):
    """The server stopped before training finished; the message says why."""


def serve(
    sites: int,
    port: int,
    timeout: float,
    tls: dict[str, str],
    connected: Callable[[int], int | None] | None = None,
) -> None:
    """Run the federated server until training finishes; raises `ServerStopped` if sites go.

    `connected(port)` counts the sites' connections (the kernel's count by default; None where
    it cannot be read, and then the server waits as XGBoost's does).
    """
    from xgboost import federated

    count = connected or established_connections
    tracker = federated.FederatedTracker(
        n_workers=sites, port=port, secure=bool(tls), timeout=int(timeout), **tls
    )
    tracker.start()
    finished = threading.Thread(target=tracker.wait_for, name="federated-server", daemon=True)
    finished.start()
    peak, short_since = 0, time.monotonic()
    while finished.is_alive():
        finished.join(POLL_SECONDS)
        now = count(port)
        if now is None or not finished.is_alive():
            continue
        peak = max(peak, now)
        if now >= max(sites, peak):
            short_since = time.monotonic()
        elif time.monotonic() - short_since > timeout:
            raise ServerStopped(_why(now, peak, sites, timeout))


def _why(now: int, peak: int, sites: int, timeout: float) -> str:
    if peak < sites:
        return (
            f"only {peak} of {sites} sites connected to the federated server within "
            f"{timeout:g} s (the timeout): a site did not start or cannot reach it; stopped"
        )
    return (
        f"a site left the federated server mid-training ({now} of {peak} connections "
        f"remained for {timeout:g} s, the timeout): it was killed or lost its network; stopped"
    )


def established_connections(port: int) -> int | None:
    """Established TCP connections whose local port is `port` (None off Linux)."""
    total, readable = 0, False
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state == ESTABLISHED and int(local.rsplit(":", 1)[1], 16) == port:
                total += 1
    return total if readable else None
