"""A merchant's server on loopback: it records every request it gets and answers from a script.

Each dialect's shop is this one with the dialect's own signature check (``merchant.ScriptedShop`` and
``merchant.FakeMerchant`` for epay, ``payfor.PayForShop``), so what a test reads of a request (query,
form, headers, arrival time) is the same whichever dialect sent it.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar
from urllib.parse import parse_qsl, urlsplit

Shop = TypeVar("Shop", bound="RecordingShop")

# An answer that is more than status, headers and body (one that never ends, say) writes itself.
Respond = Callable[[BaseHTTPRequestHandler], None]


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b"success"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Received:
    """One request as the shop read it."""

    method: str
    target: str  # the request target as it arrived: path and query string
    path: str
    query: dict[str, str]
    form: dict[str, str]  # the decoded body of a form-encoded request, else empty
    params: dict[str, str]  # what a merchant's script reads: the form of a form-encoded request, else the query
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float  # time.monotonic() on arrival
    signature_ok: bool | None = None  # the merchant's own check of ``params``, when its shop makes one
    connection: tuple[str, int] | None = None  # the client's address and port: one per TCP connection
    tls_name: str | None = None  # the name the client asked for in its TLS handshake (SNI)


class RecordingShop:
    """Answers GET and POST from ``script`` after ``delay`` seconds (the last answer repeats; no script: success).

    ``keep_alive`` speaks HTTP/1.1 and keeps connections open between requests (only for scripts of
    ``Answer``s, which all carry a length); ``tls`` serves HTTPS with that server context. A test
    may set ``gate``: every request is then recorded at once and answered only once the gate opens.
    """

    def __init__(
        self,
        script: Sequence[Answer | Respond] = (),
        *,
        delay: float = 0.0,
        host: str = "127.0.0.1",
        keep_alive: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.script = list(script) or [Answer()]
        self.delay = delay
        self.host = host
        self.keep_alive = keep_alive
        self.tls = tls
        self.received: list[Received] = []
        self.gate: threading.Event | None = None
        self._tls_names: dict[tuple[str, int], str | None] = {}
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def notifications(self, path: str = "/notify") -> list[Received]:
        return [entry for entry in self.received if entry.path == path]

    def signature_ok(self, params: dict[str, str]) -> bool | None:
        """The merchant's own check of what arrived; a shop of no dialect checks nothing."""
        return None

    def next_answer(self) -> Answer | Respond:
        """The answer to the request about to be recorded."""
        return self.script[min(len(self.received), len(self.script) - 1)]

    def start(self) -> RecordingShop:
        shop = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if self.keep_alive else "HTTP/1.0"

            def _handle(self) -> None:
                entry = _read(self)
                entry.signature_ok = shop.signature_ok(entry.params)
                entry.connection = self.client_address
                entry.tls_name = shop._tls_names.get(self.client_address)
                answer = shop.next_answer()
                shop.received.append(entry)
                if shop.gate is not None:
                    shop.gate.wait()
                if shop.delay:
                    time.sleep(shop.delay)
                if isinstance(answer, Answer):
                    self.send_response(answer.status)
                    for name, value in answer.headers:
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                else:
                    answer(self)

            do_GET = do_POST = _handle

            def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
                pass

        self._server = (_IPv6Server if ":" in self.host else _ShopServer)((self.host, 0), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:

            def remember_name(connection: ssl.SSLSocket, name: str | None, context: ssl.SSLContext) -> None:
                shop._tls_names[connection.getpeername()[:2]] = name

            self.tls.sni_callback = remember_name  # type: ignore[assignment]
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class _ShopServer(ThreadingHTTPServer):
    """Connections wait in the kernel's queue while a loaded machine keeps the accepting thread off the
    CPU (the standard library's queue of 5 drops the rest, which the client then sees as a connection
    that took seconds)."""

    request_queue_size = 128


class _IPv6Server(_ShopServer):
    """A shop on an IPv6 address (``::1``)."""

    address_family = socket.AF_INET6


@contextmanager
def started_shops() -> Iterator[Callable[[Shop], Shop]]:
    """Starts each shop handed to it and stops them all at the end, for a fixture that lets a test open several."""
    started: list[RecordingShop] = []

    def start(shop: Shop) -> Shop:
        started.append(shop.start())
        return shop

    try:
        yield start
    finally:
        for shop in started:
            shop.stop()


def _read(handler: BaseHTTPRequestHandler) -> Received:
    parts = urlsplit(handler.path)
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length) if length else b""
    at = time.monotonic()
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    is_form = "application/x-www-form-urlencoded" in (handler.headers.get("Content-Type") or "")
    form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)) if is_form else {}
    headers = {name.lower(): value for name, value in handler.headers.items()}
    params = form if is_form else query
    return Received(handler.command, handler.path, parts.path, query, form, params, headers, body, at)
