"""The HTTP server under the app: uvicorn, with the deadline for request headers it lacks.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but has no read timeout:
a client that opens a connection and sends its request headers a byte at a time (slowloris)
holds the connection for as long as it keeps sending. ``HeaderTimeoutProtocol`` is uvicorn's
own HTTP/1.1 protocol plus the rule nginx calls ``client_header_timeout``. The body has its
own deadline in ``openepay.web.middleware.RequestBody``.

``GatewayServer`` is uvicorn's server that, once the app has started, takes everything alive
out of the garbage collector's reach (``keep_out_of_collections``).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import socket
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from openepay.config import Settings

REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 29\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"request headers took too long"
)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """The request headers must be complete ``header_timeout`` seconds after the connection opens,
    or after the first byte of a later request on it; if not, the connection is closed (with a
    408 if the client had begun a request)."""

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None
        self._reading_headers = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True
        if self._header_deadline is None:
            self._start_header_deadline()

    def on_headers_complete(self) -> None:
        self._stop_header_deadline()
        self._reading_headers = False
        super().on_headers_complete()

    def _start_header_deadline(self) -> None:
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _stop_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # The client is waiting for an answer of ours; its next request may wait for it too.
            self._start_header_deadline()
            return
        if self._reading_headers:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()


def http_protocol(settings: Settings) -> Callable[..., HeaderTimeoutProtocol]:
    """What to give uvicorn as ``http=``: it builds one protocol per connection, with the settings' timeout."""
    return functools.partial(HeaderTimeoutProtocol, header_timeout=settings.http_header_timeout)


def keep_out_of_collections() -> None:
    """Collect once, then move every object alive now out of the garbage collector's reach.

    A web process holds about 140,000 objects that live as long as it does: modules, classes,
    FastAPI's and SQLAlchemy's caches, templates. A full collection walks all of them (about
    90 ms of CPU on the 2-core machine of issue 11), and every request the process holds waits
    for it: a stall that shows in the latency tail, not the median. Frozen objects are never
    examined again, so a full collection walks only what was made since; and in a forked child
    a collection no longer writes to the pages it shares with its parent. What becomes garbage
    after freezing is still freed by reference counting; only cycles among frozen objects are
    never collected, and ``gc.collect`` has just freed those there were."""
    gc.collect()
    gc.freeze()


class GatewayServer(uvicorn.Server):
    """uvicorn's server, with what the app built while starting (its lifespan) frozen too."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        keep_out_of_collections()
