"""A deadline for a request's headers, in the HTTP server the service runs on.

BentoML serves through uvicorn, which closes a keep-alive connection left idle after a response
(`timeout_keep_alive`, 5 s as BentoML starts it) but sets no limit on a connection that sends
nothing, or drips its request line and headers a byte at a time: each such connection holds a
file descriptor and a place among the worker's connections for as long as the client likes
(slowloris). Neither BentoML's configuration nor its worker's command line offers uvicorn's
protocol class, so `install_header_deadline` puts a subclass of uvicorn's own one where
uvicorn looks it up (`uvicorn.protocols.http.auto`) before the worker starts its server.

The deadline runs from the moment a connection opens, or a request's first byte arrives after
an earlier response, until its headers are complete; a body is then bounded by the app's own
deadline (`BodyDeadline`). A late connection is closed, never answered: its request is unknown.
"""

from __future__ import annotations

import asyncio
from typing import Any


def install_header_deadline(seconds: float) -> type:
    """Make uvicorn's automatic HTTP protocol close connections whose headers are late.

    Called again it replaces the deadline (the protocol underneath stays uvicorn's own).
    Returns the protocol class uvicorn will now use.
    """
    from uvicorn.protocols.http import auto

    base = auto.AutoHTTPProtocol
    base = getattr(base, "uvicorn_protocol", base)
    auto.AutoHTTPProtocol = header_deadline_protocol(base, seconds)
    return auto.AutoHTTPProtocol


def header_deadline_protocol(base: type[asyncio.Protocol], seconds: float) -> type:
    """`base` (uvicorn's httptools or h11 protocol) with a deadline on request headers."""
    if not seconds > 0:
        raise ValueError(f"a header deadline must be above 0 seconds, got {seconds}")

    class HeaderDeadline(base):  # type: ignore[valid-type, misc]
        uvicorn_protocol = base
        header_timeout_s = seconds
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_header_timer()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is not None and not self.cycle.response_complete:
                self._cancel_header_timer()  # headers complete: the request runs
            elif self._header_timer is None:
                self._arm_header_timer()  # a request started: its headers have the deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_timer()
            super().connection_lost(exc)

        def _arm_header_timer(self) -> None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    HeaderDeadline.__name__ = HeaderDeadline.__qualname__ = f"HeaderDeadline{base.__name__}"
    return HeaderDeadline
