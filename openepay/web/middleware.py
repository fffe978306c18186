"""ASGI middleware: a request size cap, request logs and metrics that never carry query strings,
the browser protections every answer carries, and the public origin pinned when one is configured."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openepay.config import ConfigurationError
from openepay.metrics import Metrics

log = logging.getLogger("openepay.access")

MAX_BODY_BYTES = 1_000_000


class BodyLimit:
    """Refuse bodies over the limit with 413 before anything buffers them."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _too_large(send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await _too_large(send)


class _TooLarge(Exception):
    pass


async def _too_large(send: Send) -> None:
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"request body too large"})


class ObserveRequests:
    """One log line and the HTTP metrics per request.

    The metrics label is the route's template (``/cashier/{handle}``), never the raw path,
    so a flood of order numbers cannot blow up the number of time series.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            elapsed = time.monotonic() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or (
                "/static" if scope["path"].startswith("/static/") else "unmatched"
            )
            self.metrics.http_requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.http_duration.labels(template).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "latency_ms": int(elapsed * 1000),
                },
            )


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
