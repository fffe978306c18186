"""The one HTTP client for every request to a URL a merchant gave us.

Every request is judged before it is sent and again at the socket: the URL is read once
(``targets.read_target``: no second parser that could see another host), a name is resolved
here and every address it has must pass ``address_block_reason``, the request goes to the
address that was checked (a rebinding DNS server gets no second question), and the socket
factory refuses any address that is not allowed right before ``connect()``, IP literals
included. No redirects are followed, connecting and the whole exchange have short timeouts,
at most ``max_body_bytes`` of the answer are read, and answers are asked for and kept
uncompressed (a few KB of gzip can be gigabytes in memory).

It is built on aiohttp's connector, which keeps idle connections per pinned address, port and
TLS name and takes one without scanning the pool. A connection is reused only for the same TLS
name: two shops behind one CDN address never share a TLS session verified for one of them.
httpx was measured first: its pool checks every pooled connection's socket on each request,
and even on a pool of our own its HTTP/1.1 layer stayed under half of aiohttp's rate
(``bench/notify_load.py``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from openepay.notify.addresses import IPAddress, address_block_reason
from openepay.notify.targets import Target, UnusableUrl, read_target, target_block_reason

if TYPE_CHECKING:
    import aiohttp

    from openepay.config import Settings

POOL_SIZE = 256
KEEPALIVE_SECONDS = 15.0
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class ErrorClass(StrEnum):
    """Why a delivery failed, in terms a merchant can act on."""

    BLOCKED = "blocked_address"
    DNS = "dns_failure"
    REFUSED = "connection_refused"
    TIMEOUT = "timeout"
    TLS = "tls_error"
    REDIRECT = "redirect"
    BAD_BODY = "non_success_body"
    NETWORK = "network_error"


@dataclass(frozen=True)
class OutboundMessage:
    """A request to a merchant: a GET to ``url`` (query included) or a form POST."""

    method: str
    url: str
    form: Mapping[str, str] | None = None


@dataclass(frozen=True)
class HttpOutcome:
    target_host: str
    latency_ms: int
    status: int | None = None
    body: bytes = b""
    error_class: ErrorClass | None = None
    error_detail: str | None = None
    # The answer's headers, names in lower case (a WAF or CDN page is told apart by them).
    headers: Mapping[str, str] = field(default_factory=dict)


class BlockedAddress(OSError):
    """Raised by the socket factory: the address about to be connected to is not allowed."""


class _Failed(Exception):
    def __init__(self, error_class: ErrorClass, detail: str) -> None:
        super().__init__(detail)
        self.error_class = error_class
        self.detail = detail


class SafeHttpClient:
    def __init__(
        self,
        *,
        allow_private: bool,
        connect_timeout: float,
        total_timeout: float,
        max_body_bytes: int,
        user_agent: str = "OpenEpay-Notify/1",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        # aiohttp is loaded by the client, not by this module: dialects import the module for its
        # message types, and a command that sends nothing should not pay for an HTTP stack. It is
        # loaded here rather than on the first send, which runs under a notification's lease.
        import aiohttp  # noqa: F401

        self.allow_private = allow_private
        self.connect_timeout = connect_timeout
        self.total_timeout = total_timeout
        self.max_body_bytes = max_body_bytes
        self.user_agent = user_agent
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> SafeHttpClient:
        return cls(
            allow_private=settings.notify_allow_private,
            connect_timeout=settings.notify_connect_timeout,
            total_timeout=settings.notify_timeout,
            max_body_bytes=settings.notify_max_body_bytes,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, message: OutboundMessage) -> HttpOutcome:
        started = time.monotonic()
        shown_host = _raw_host(message.url)
        status: int | None = None
        body, headers = b"", {}
        try:
            target = read_target(message.url)
            shown_host = target.host
            reason = target_block_reason(target, allow_private=self.allow_private)
            if reason:
                raise _Failed(ErrorClass.BLOCKED, reason)
            deadline = asyncio.get_running_loop().time() + self.total_timeout
            try:
                async with asyncio.timeout_at(deadline):
                    address = await self._resolve(target)
            except TimeoutError:
                raise _Failed(ErrorClass.DNS, f"resolving {target.host} timed out") from None
            async with asyncio.timeout_at(deadline):
                status, body, headers = await self._exchange(message, target, address)
        except UnusableUrl as exc:
            if exc.unresolvable:
                error, detail = ErrorClass.DNS, f"cannot resolve {shown_host}: {exc.reason}"
            else:
                error, detail = ErrorClass.BLOCKED, exc.reason
        except _Failed as exc:
            error, detail = exc.error_class, exc.detail
        except TimeoutError:
            error, detail = ErrorClass.TIMEOUT, f"no complete answer within {self.total_timeout:g}s"
        else:
            location = headers.get("location")
            if status in REDIRECT_STATUSES and location is not None:
                error, detail = ErrorClass.REDIRECT, f"redirects to {location[:200]} (redirects are not followed)"
            else:
                error, detail = None, None
        latency_ms = int((time.monotonic() - started) * 1000)
        return HttpOutcome(shown_host, latency_ms, status, body, error, detail, headers)

    async def _resolve(self, target: Target) -> IPAddress:
        """The address to connect to: the literal itself, or the first of a name's addresses if all pass."""
        if target.address is not None:
            return target.address
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(target.host.encode("ascii"), target.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise _Failed(ErrorClass.DNS, f"cannot resolve {target.host}: {exc.strerror}") from None
        addresses = [ipaddress.ip_address(info[4][0].partition("%")[0]) for info in infos]
        if not addresses:
            raise _Failed(ErrorClass.DNS, f"cannot resolve {target.host}: no addresses")
        for address in addresses:
            reason = address_block_reason(address, allow_private=self.allow_private)
            if reason:
                raise _Failed(ErrorClass.BLOCKED, f"{target.host} resolves to {reason}")
        return addresses[0]

    async def _exchange(
        self, message: OutboundMessage, target: Target, address: IPAddress
    ) -> tuple[int, bytes, dict[str, str]]:
        """Status, body (at most ``max_body_bytes``) and headers of one request to the pinned ``address``."""
        import aiohttp
        from yarl import URL

        session = self._session or self._open_session()
        host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
        path, _, query = target.request_target.partition("?")
        pinned = URL.build(
            scheme=target.scheme, host=host, port=target.port, path=path, query_string=query, encoded=True
        )
        try:
            async with session.request(
                message.method,
                pinned,
                data=dict(message.form) if message.form is not None else None,
                headers={"Host": target.authority},
                allow_redirects=False,
                # The TLS name is part of the pool key: a connection is only reused for the same name.
                server_hostname=target.host.rstrip(".") if target.secure else None,
            ) as response:
                body = bytearray()
                while len(body) < self.max_body_bytes:
                    chunk = await response.content.read(self.max_body_bytes - len(body))
                    if not chunk:
                        break
                    body += chunk
                if not response.content.at_eof():
                    response.close()  # the rest is never read: the connection cannot carry another request
                headers = {name.lower(): value for name, value in response.headers.items()}
                return response.status, bytes(body), headers
        except aiohttp.ClientConnectorError as exc:
            raise _connect_failure(exc, target) from None
        except aiohttp.ConnectionTimeoutError:
            raise _Failed(ErrorClass.TIMEOUT, f"no connection within {self.connect_timeout:g}s") from None
        except TimeoutError:
            raise
        except aiohttp.ClientError as exc:
            raise _Failed(ErrorClass.NETWORK, str(exc)[:300] or type(exc).__name__) from None

    def _open_session(self) -> aiohttp.ClientSession:
        """The pool, made on first use inside the running loop (aiohttp's session belongs to one loop)."""
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=POOL_SIZE,
            keepalive_timeout=KEEPALIVE_SECONDS,
            ssl=self._ssl if self._ssl is not None else True,
            use_dns_cache=False,
            socket_factory=self._checked_socket,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # one shop's cookies are never sent to another at the same address
            auto_decompress=False,
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout),
            # identity: a compressed answer could expand a few KB on the wire into gigabytes in memory.
            headers={"User-Agent": self.user_agent, "Accept-Encoding": "identity"},
        )
        # aiohttp sends a GET again when the connection drops before the answer, even after the
        # merchant has acted on it; one attempt in the log must be one request. There is no public
        # switch: this is the one aiohttp's own test client uses.
        self._session._retry_connection = False
        return self._session

    def _checked_socket(self, addr_info: Any) -> socket.socket:
        """aiohttp's socket factory: the last word on the address actually connected to."""
        family, kind, proto, _, sockaddr = addr_info
        reason = address_block_reason(
            ipaddress.ip_address(sockaddr[0].partition("%")[0]), allow_private=self.allow_private
        )
        if reason:
            raise BlockedAddress(reason)
        return socket.socket(family, kind, proto)


def _connect_failure(exc: aiohttp.ClientConnectorError, target: Target) -> _Failed:
    import aiohttp

    cause = exc.os_error
    if isinstance(cause, BlockedAddress):
        return _Failed(ErrorClass.BLOCKED, str(cause))
    if isinstance(exc, aiohttp.ClientSSLError) or _is_tls_error(cause):
        return _Failed(ErrorClass.TLS, str(cause)[:300] or type(cause).__name__)
    if isinstance(cause, ConnectionRefusedError):
        host = f"[{target.host}]" if isinstance(target.address, ipaddress.IPv6Address) else target.host
        return _Failed(ErrorClass.REFUSED, f"connection to {host}:{target.port} refused")
    return _Failed(ErrorClass.NETWORK, str(cause)[:300] or type(cause).__name__)


def _is_tls_error(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, ssl.SSLError | ssl.CertificateError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _raw_host(url: str) -> str:
    """The host as written, for the log of a URL that could not be read."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""
