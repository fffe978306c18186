"""The one HTTP client for every request to a URL a merchant gave us.

A merchant-supplied ``notify_url`` is an SSRF vector: without care the gateway would fetch
its own admin ports, the cloud metadata service or the office network for whoever can create
an order. So this client allows only http and https, resolves the host itself and refuses
loopback, private, link-local, CGNAT, multicast, unspecified, reserved and metadata addresses
(IPv4 and IPv6, including IPv4 embedded in IPv6), connects to the very address it checked
(no second DNS lookup that a rebinding attacker could answer differently), follows no
redirects, has short timeouts, and reads at most a few KB of the answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata services answer on these even where private targets are allowed.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254", "169.254.170.2")
)
# What ``allow_private`` opens: the networks a self-hosted shop or a test server lives on.
# Everything else that is not global (reserved, broadcast, benchmarking, documentation) stays
# closed, because no merchant's server can legitimately live there.
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)
# NAT64 gateways turn 64:ff9b::a.b.c.d into a.b.c.d, so such an address is as good as the IPv4 one.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


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


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip))
    return None


def address_block_reason(ip: IPAddress, *, allow_private: bool) -> str | None:
    """Why we will not connect to ``ip``, or None when we will."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return address_block_reason(embedded, allow_private=allow_private)
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    if ip.is_unspecified or ip.is_multicast:
        return f"{ip} is not a unicast address"
    if ip.is_global:
        return None
    if allow_private and any(ip in network for network in _PRIVATE_NETWORKS):
        return None
    return f"{ip} is not a public address"


def url_block_reason(url: str, *, allow_private: bool) -> str | None:
    """Static checks that need no DNS: what can never be delivered to.

    Used at order creation to refuse hopeless ``notify_url``s with the dialect's own error,
    and again before every delivery.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "only http and https URLs are allowed"
    host = parts.hostname
    if not host:
        return "the URL has no host"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL are not allowed"
    if port == 0:
        return "port 0 is not allowed"
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        return address_block_reason(literal, allow_private=allow_private)
    name = host.rstrip(".")  # "localhost." is the same name as "localhost"
    if not allow_private and (name in _LOCAL_NAMES or name.endswith(".localhost")):
        return f"{host} is a local name"
    return None


class SafeHttpClient:
    def __init__(
        self,
        *,
        allow_private: bool,
        connect_timeout: float,
        total_timeout: float,
        max_body_bytes: int,
        user_agent: str = "OpenEpay-Notify/1",
    ) -> None:
        self.allow_private = allow_private
        self.total_timeout = total_timeout
        self.max_body_bytes = max_body_bytes
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(total_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            headers={"User-Agent": user_agent},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, message: OutboundMessage) -> HttpOutcome:
        started = time.monotonic()
        host = urlsplit(message.url).hostname or ""

        def outcome(**kwargs) -> HttpOutcome:  # type: ignore[no-untyped-def]
            return HttpOutcome(host, int((time.monotonic() - started) * 1000), **kwargs)

        reason = url_block_reason(message.url, allow_private=self.allow_private)
        if reason:
            return outcome(error_class=ErrorClass.BLOCKED, error_detail=reason)
        try:
            # httpx's parse gives the IDNA (punycode) host: what is looked up, sent as Host and as SNI.
            target = httpx.URL(message.url)
            port = target.port or (443 if target.scheme == "https" else 80)
            address = await self._resolve(target.raw_host, port)
        except httpx.InvalidURL as exc:
            return outcome(error_class=ErrorClass.DNS, error_detail=f"cannot resolve {host}: {exc}")
        except socket.gaierror as exc:
            return outcome(error_class=ErrorClass.DNS, error_detail=f"cannot resolve {host}: {exc.strerror}")
        except TimeoutError:
            return outcome(error_class=ErrorClass.DNS, error_detail=f"resolving {host} timed out")
        except _Blocked as exc:
            return outcome(error_class=ErrorClass.BLOCKED, error_detail=str(exc))

        try:
            async with asyncio.timeout(self.total_timeout):
                return await self._exchange(message, target, address, outcome)
        except TimeoutError:
            detail = f"no complete answer within {self.total_timeout:g}s"
            return outcome(error_class=ErrorClass.TIMEOUT, error_detail=detail)
        except httpx.TimeoutException as exc:
            return outcome(error_class=ErrorClass.TIMEOUT, error_detail=type(exc).__name__)
        except httpx.ConnectError as exc:
            if _is_tls_error(exc):
                return outcome(error_class=ErrorClass.TLS, error_detail=str(exc)[:300])
            if _is_refused(exc):
                return outcome(error_class=ErrorClass.REFUSED, error_detail=f"connection to {host}:{port} refused")
            return outcome(error_class=ErrorClass.NETWORK, error_detail=str(exc)[:300] or type(exc).__name__)
        except httpx.HTTPError as exc:
            return outcome(error_class=ErrorClass.NETWORK, error_detail=str(exc)[:300] or type(exc).__name__)

    async def _resolve(self, raw_host: bytes, port: int) -> IPAddress:
        host = raw_host.decode("ascii")
        try:
            return ipaddress.ip_address(host)
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.total_timeout):
            # Bytes, not str: Python's own IDNA codec would raise on names the resolver simply rejects.
            infos = await loop.getaddrinfo(raw_host, port, type=socket.SOCK_STREAM)
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        for address in addresses:
            reason = address_block_reason(address, allow_private=self.allow_private)
            if reason:
                raise _Blocked(f"{host} resolves to {reason}")
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "no addresses")
        return addresses[0]

    @staticmethod
    def _headers(target: httpx.URL) -> dict[str, str]:
        headers = {
            "Host": target.netloc.decode("ascii"),
            # identity: a compressed answer could expand a few KB on the wire into gigabytes in memory.
            "Accept-Encoding": "identity",
        }
        if target.scheme == "https":
            # Connections are pooled by the pinned address, and two shops can share one (a CDN):
            # a kept-alive TLS connection would carry the next shop's request under the first
            # shop's certificate and SNI. Closing HTTPS connections after each answer prevents it.
            headers["Connection"] = "close"
        return headers

    async def _exchange(  # type: ignore[no-untyped-def]
        self, message: OutboundMessage, target: httpx.URL, address: IPAddress, outcome
    ) -> HttpOutcome:
        request = self._client.build_request(
            message.method,
            target.copy_with(host=str(address)),
            data=dict(message.form) if message.form is not None else None,
            headers=self._headers(target),
            extensions={"sni_hostname": target.raw_host.decode("ascii")} if target.scheme == "https" else {},
        )
        response = await self._client.send(request, stream=True)
        try:
            body = bytearray()
            async for chunk in response.aiter_raw():
                body.extend(chunk)
                if len(body) >= self.max_body_bytes:
                    break
        finally:
            await response.aclose()
        body_bytes = bytes(body[: self.max_body_bytes])
        if response.is_redirect:
            location = response.headers.get("location", "")
            return outcome(
                status=response.status_code,
                body=body_bytes,
                error_class=ErrorClass.REDIRECT,
                error_detail=f"redirects to {location[:200]} (redirects are not followed)",
            )
        return outcome(status=response.status_code, body=body_bytes)


class _Blocked(Exception):
    pass


def _is_tls_error(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, ssl.SSLError):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def _is_refused(exc: BaseException) -> bool:
    if "refused" in str(exc).lower():
        return True
    while exc is not None:
        if isinstance(exc, ConnectionRefusedError):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False
