"""ASGI middleware: readable paths, whole bodies read within a size and a time limit, request logs
and metrics that never carry query strings, the browser protections every answer carries, and the
public origin pinned when one is configured.
"""

from __future__ import annotations

import asyncio
import logging
import time
import types
from collections.abc import Awaitable, Generator
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openepay.config import ConfigurationError
from openepay.metrics import Metrics

log = logging.getLogger("openepay.access")

# 1 MiB, nginx's ``client_max_body_size 1m``: a proxy in front refuses exactly what we would.
MAX_BODY_BYTES = 1_048_576
BODY_TIMEOUT_SECONDS = 20.0
# nginx's status for a client that went away before it was answered; never sent, only recorded.
CLIENT_CLOSED = 499


class ReadablePath:
    """A NUL in the decoded path is read as U+FFFD, as uvicorn already reads bytes that are not UTF-8.

    No route has a NUL in it and no database can store one. Read this way, the request goes on
    to the route it matches, which answers its own "not found" in its own format (the cashier's
    page, V免签's JSON, the V2 API's code and msg), and no path parameter ever holds a NUL.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "\x00" in scope["path"]:
            scope["path"] = scope["path"].replace("\x00", "\ufffd")
        await self.app(scope, receive, send)


class RequestBody:
    """Read the whole body before the app sees the request, within a size and a time limit.

    Over the size limit is 413 and nothing of the body is kept. The rest of it is still read
    and dropped, within the time limit, so that the client gets to read the answer (a client
    that asked ``Expect: 100-continue`` is answered at once and sends nothing). A body still
    incomplete after ``timeout`` seconds is 408, so a client sending a byte at a time holds no
    connection for long. A connection whose body was not read to its end is closed.

    A client that goes away while sending is answered nothing. Every route then reads a whole
    body at once: none sees half a body, or a client leaving while it reads its parameters. The
    body is also left in the scope (``WHOLE_BODY``) for a route that reads it whole, which then
    needs no trip through Starlette's stream.

    A request that declares no body (no ``Content-Length`` above 0, no ``Transfer-Encoding``:
    a ``GET``, a ``HEAD``, the load balancer's ``/healthz``) has nothing to wait for, and goes
    on untouched: the server hands it an empty body at once.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES, timeout: float = BODY_TIMEOUT_SECONDS) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length", b"")
        if declared in (b"", b"0") and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        too_large = declared.isdigit() and int(declared) > self.limit
        if too_large and headers.get(b"expect", b"").lower() == b"100-continue":
            await _refuse(send, 413, TOO_LARGE, close=True)
            return
        chunks: list[bytes] = []
        received = 0
        complete = False
        deadline = None
        try:
            while not complete:
                message, waiting = _at_once(receive)
                if waiting is not None:
                    # Only a body still on its way sets a timer: nearly every body has come with its
                    # headers, and arming and cancelling a timer for it cost every POST some 5 µs.
                    # The reads before the first wait waited for nothing, so the deadline still
                    # counts from the request's start.
                    if deadline is None:
                        deadline = asyncio.get_running_loop().time() + self.timeout
                    message = await _within(waiting, deadline)
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                received += len(chunk)
                too_large = too_large or received > self.limit
                if not too_large:
                    chunks.append(chunk)
                complete = not message.get("more_body", False)
        except TimeoutError:
            pass
        if too_large:
            await _refuse(send, 413, TOO_LARGE, close=not complete)
        elif not complete:
            await _refuse(send, 408, b"request body timed out", close=True)
        else:
            body = b"".join(chunks)
            scope[WHOLE_BODY] = body
            await self.app(scope, _replay(body, receive), send)


def first_header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of the request header ``name`` (lower case, as servers give names), read from the
    scope without building Starlette's ``Headers`` for the request (hot paths read one or two)."""
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


# Where ``RequestBody`` leaves the body it read, for a route that reads it whole (``request.body()``
# gives the same bytes, through a stream).
WHOLE_BODY = "openepay.body"
TOO_LARGE = b"request body too large"


def _at_once(receive: Receive) -> tuple[Message, None] | tuple[None, Awaitable[Message]]:
    """The server's next message if it has it already, else what is left to await for it.

    ``receive()`` is run up to its first wait: a message that has arrived comes back with no
    trip through the event loop, and only a receive that must wait is awaited (under the timer).
    """
    steps = receive().__await__()
    try:
        waits_for = steps.send(None)
    except StopIteration as done:
        return done.value, None
    return None, _rest(steps, waits_for)


@types.coroutine
def _rest(steps: Generator[Any, Any, Message], waits_for: Any) -> Generator[Any, Any, Message]:
    """The rest of a receive that stopped to wait for ``waits_for``, run as ``await`` would run it:
    what the event loop sends or throws (a cancellation, the timer's) goes on to the receive."""
    while True:
        try:
            sent = yield waits_for
        except GeneratorExit:
            steps.close()
            raise
        except BaseException as error:
            try:
                waits_for = steps.throw(error)
            except StopIteration as done:
                return done.value
        else:
            try:
                waits_for = steps.send(sent)
            except StopIteration as done:
                return done.value


async def _within(waiting: Awaitable[Message], deadline: float) -> Message:
    async with asyncio.timeout_at(deadline):
        return await waiting


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body in one message, then whatever the server says next (the client leaving)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(send: Send, status: int, text: bytes, *, close: bool) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text})


class ObserveRequests:
    """The HTTP metrics and (with ``access_log``) one log line per request.

    The status is what the client was sent; 500 only when the app failed without answering, and
    499 (nginx's code) when the client went away before it was answered, which is no failure
    of ours and is not logged as one.

    The metrics label is the route's template (``/cashier/{handle}``), never the raw path,
    so a flood of order numbers cannot blow up the number of time series; a request that was
    answered before routing (413, 408, 499) is ``unmatched``, like one no route matches.

    The log line names the route's template too, and the path only shortened (``logged_path``):
    a cashier or sandbox path carries the buyer's handle, which opens the order's payment page.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status: int | None = None
        gone = False

        async def watch_receive() -> Message:
            nonlocal gone
            message = await receive()
            if message["type"] == "http.disconnect":
                gone = True
            return message

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, watch_receive, record_status)
        except ClientDisconnect:
            # Starlette's "the client left while the body was read": there is no one to answer.
            gone = True
        finally:
            if status is None:
                status = CLIENT_CLOSED if gone else 500
            self._record(scope, status, time.monotonic() - started)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        template = _route_template(scope)
        self.metrics.request_served(scope["method"], template, status, elapsed)
        if self.access_log and log.isEnabledFor(logging.INFO):
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": template,
                    "path": logged_path(scope["path"]),
                    "status": status,
                    "latency_ms": int(elapsed * 1000),
                },
            )


# A path segment longer than this is logged cut to its first ``KEPT_CHARS`` characters and "…".
LONG_SEGMENT = 24
KEPT_CHARS = 8


def logged_path(path: str) -> str:
    """The path with every long segment cut short: an order's number stays recognisable, a handle
    (the order's number and a MAC) or a device token does not survive into the log."""
    if len(path) <= LONG_SEGMENT:
        return path
    return "/".join(part if len(part) <= LONG_SEGMENT else part[:KEPT_CHARS] + "…" for part in path.split("/"))


def _route_template(scope: Scope) -> str:
    template = getattr(scope.get("route"), "path", None)
    if isinstance(template, str) and template:
        return template
    return "/static" if scope["path"].startswith("/static/") else "unmatched"


# Our pages are never framed (clickjacking the pay button), never sniffed into another type, and
# never tell a third party where the buyer came from: the cashier's address is the order's handle,
# and the shop's return URL carries signed fields. Only our own scripts, styles and pictures load.
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"referrer-policy", b"no-referrer"),
)


class SecurityHeaders:
    """Add ``SECURITY_HEADERS`` to every answer (pages, JSON, redirects, errors) that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(header for header in SECURITY_HEADERS if header[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class PublicOrigin:
    """With ``OPENEPAY_PUBLIC_URL`` set, every request is taken as made to it, so its Host header decides no URL.

    Starlette builds absolute URLs (``url_for`` in pages, the trailing-slash redirect,
    ``request.base_url``) from the request's Host header and scheme, which any client can forge
    to plant links to another host in our answers (or in a cache in front of us).
    """

    def __init__(self, app: ASGIApp, public_url: str) -> None:
        self.app = app
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"OPENEPAY_PUBLIC_URL must be an http(s) URL such as https://pay.example.com, not {public_url!r}"
            )
        self.scheme = parts.scheme
        host = parts.hostname.encode("idna")
        host = b"[" + host + b"]" if b":" in host else host
        self.host = host if parts.port is None else host + b":%d" % parts.port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [(name, value) for name, value in scope["headers"] if name != b"host"]
            scope = {**scope, "scheme": self.scheme, "headers": [*headers, (b"host", self.host)]}
        await self.app(scope, receive, send)
