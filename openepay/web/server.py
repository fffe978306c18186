"""The HTTP server under the app: uvicorn, with the deadline for request headers it lacks, and each
answer sent in one write.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but has no read timeout:
a client that opens a connection and sends its request headers a byte at a time (slowloris)
holds the connection for as long as it keeps sending. ``HeaderTimeoutProtocol`` is uvicorn's
own HTTP/1.1 protocol plus the rule nginx calls ``client_header_timeout``. The body has its
own deadline in ``openepay.web.middleware.RequestBody``.

uvicorn writes an answer's status line and headers as soon as the app starts the answer, and its
body in a second write: two ``send`` calls, two TCP segments, and two reads for the client or
the proxy in front. ``OneWritePerAnswer`` holds the head and sends it with the body.

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


# How uvicorn's head of an answer begins (``httptools_impl.STATUS_LINE``), always HTTP/1.1; an
# informational one (``100 Continue``, ``101``) is never held: the client waits for it to go on.
ANSWER_HEAD = b"HTTP/1.1 "
INFORMATIONAL_HEAD = b"HTTP/1.1 1"


class OneWritePerAnswer:
    """A connection's transport that holds an answer's head until its body is written, and writes both at once.

    On the 2-core machine of issue 11 the second ``send`` of every answer was about a tenth of a
    ``/healthz``'s CPU (measured with py-spy under load), and its segment one more wake-up of the
    reader. What is held is written with the next write, when the connection closes, or when
    the answer completes without a body (``HEAD``, ``flush``); nothing else is buffered.
    """

    __slots__ = ("_transport", "_head")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
        elif data.startswith(ANSWER_HEAD) and not data.startswith(INFORMATIONAL_HEAD):
            self._head = data
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


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
        # Set after uvicorn's own setup, which reads the real transport's addresses and flow control.
        self.transport = OneWritePerAnswer(transport)  # type: ignore[assignment]
        self._start_header_deadline()

    def on_response_complete(self) -> None:
        self.transport.flush()  # type: ignore[attr-defined]
        super().on_response_complete()

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
