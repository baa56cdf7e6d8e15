"""The header deadline over real sockets, against uvicorn running a small ASGI app."""

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from mlops_assets.serving.connections import header_deadline_protocol, install_header_deadline

DEADLINE_S = 1.0
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


async def _hello(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-length", b"5")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})


@pytest.fixture(params=["httptools", "h11"])
def server(request) -> Iterator[tuple[str, int]]:
    """uvicorn on a free loopback port with the deadline, over each of its HTTP parsers."""
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    base = {"httptools": HttpToolsProtocol, "h11": H11Protocol}[request.param]
    listening = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(
        _hello,
        http=header_deadline_protocol(base, DEADLINE_S),
        timeout_keep_alive=5,
        log_level="warning",
        lifespan="off",
    )
    served = uvicorn.Server(config)
    thread = threading.Thread(target=served.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    while not served.started:  # uvicorn says when it listens
        time.sleep(0.01)
    yield listening.getsockname()
    served.should_exit = True
    thread.join(timeout=10)


def _closed_after(sock: socket.socket, drip: bytes = b"") -> float:
    """Seconds until the server closes `sock`, dripping `drip` a byte at a time meanwhile."""
    started = time.monotonic()
    sock.settimeout(0.05)
    for byte in drip:
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started
        try:
            if sock.recv(1024) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - started
    sock.settimeout(30)
    assert sock.recv(1024) == b""
    return time.monotonic() - started


def test_dripped_headers_are_cut_off_at_the_deadline(server) -> None:
    """A header line every 50 ms would take a minute: the server closes it after about 1 s."""
    drip = b"GET / HTTP/1.1\r\n" + b"X-Slow: yes\r\n" * 100
    with socket.create_connection(server) as sock:
        elapsed = _closed_after(sock, drip)
    assert DEADLINE_S - 0.1 <= elapsed < DEADLINE_S + 2


def test_a_connection_that_sends_nothing_is_closed_at_the_deadline(server) -> None:
    with socket.create_connection(server) as sock:
        elapsed = _closed_after(sock)
    assert DEADLINE_S - 0.1 <= elapsed < DEADLINE_S + 2


def test_keep_alive_requests_are_answered_and_a_late_second_one_cut_off(server) -> None:
    with socket.create_connection(server) as sock:
        for _ in range(3):  # whole requests on one connection: each answered
            sock.sendall(REQUEST)
            answer = b""
            while not answer.endswith(b"hello"):
                answer += sock.recv(1024)
            assert answer.startswith(b"HTTP/1.1 200")
        elapsed = _closed_after(sock, b"GET / HTTP/1.1\r\n" + b"X-Slow: yes\r\n" * 100)
    assert DEADLINE_S - 0.1 <= elapsed < DEADLINE_S + 2, "the deadline holds for later requests"


def test_install_replaces_the_automatic_protocol_once() -> None:
    from uvicorn.protocols.http import auto

    original = auto.AutoHTTPProtocol
    try:
        first = install_header_deadline(5.0)
        second = install_header_deadline(2.0)
        assert auto.AutoHTTPProtocol is second and second.header_timeout_s == 2.0
        assert second.uvicorn_protocol is first.uvicorn_protocol is original
        assert issubclass(second, asyncio.Protocol)
    finally:
        auto.AutoHTTPProtocol = original
    with pytest.raises(ValueError, match="above 0 seconds"):
        header_deadline_protocol(original, 0)
