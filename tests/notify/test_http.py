"""The SSRF-safe client every request to a merchant-supplied URL goes through.

No database here: the address checks are pure, and the client is exercised against real
servers on loopback (reachable only when the operator switch ``allow_private`` is on).
Public addresses are checked, never contacted.
"""

from __future__ import annotations

import gzip
import ipaddress
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler

import pytest

from openepay.notify.addresses import address_block_reason
from openepay.notify.http import ErrorClass, HttpOutcome, OutboundMessage, SafeHttpClient
from openepay.notify.targets import url_block_reason
from tests.support.merchant import FakeMerchant
from tests.support.shop import Answer, RecordingShop, Respond, started_shops
from tests.support.tls import TestAuthority

BLOCKED_EVEN_WHEN_PRIVATE_ALLOWED = [
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack metadata
    "169.254.170.2",  # ECS task metadata
    "100.100.100.200",  # Alibaba Cloud metadata
    "fd00:ec2::254",  # AWS metadata over IPv6
    "::ffff:169.254.169.254",
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "239.255.255.250",
    "ff02::1",
    "ff0e::1",
    "240.0.0.1",
    "250.1.2.3",
    "255.255.255.255",
]

PRIVATE = [
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.0.1",
    "192.168.255.255",
    "169.254.0.1",
    "169.254.254.254",
    "100.64.0.1",
    "100.127.255.254",
    "::1",
    "fc00::1",
    "fd12:3456:789a::1",
    "fe80::1",
    "febf::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:192.168.1.1",
    "2002:7f00:1::",  # 6to4 wrapping 127.0.0.1
    "2002:a00:1::1",  # 6to4 wrapping 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 wrapping 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 wrapping 10.0.0.1
]

PUBLIC = ["8.8.8.8", "1.1.1.1", "223.5.5.5", "2001:4860:4860::8888", "2400:3200::1", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", BLOCKED_EVEN_WHEN_PRIVATE_ALLOWED + PRIVATE)
def test_non_public_addresses_are_refused(address):
    reason = address_block_reason(ipaddress.ip_address(address), allow_private=False)
    assert reason is not None
    assert url_block_reason(f"http://{_url_host(address)}/notify", allow_private=False) == reason


@pytest.mark.parametrize("address", BLOCKED_EVEN_WHEN_PRIVATE_ALLOWED)
def test_metadata_broadcast_multicast_reserved_and_unspecified_stay_refused_when_private_is_allowed(address):
    reason = address_block_reason(ipaddress.ip_address(address), allow_private=True)
    assert reason is not None
    assert url_block_reason(f"https://{_url_host(address)}:8443/n", allow_private=True) == reason


@pytest.mark.parametrize("address", PRIVATE)
def test_the_operator_switch_opens_loopback_private_link_local_and_cgnat(address):
    assert address_block_reason(ipaddress.ip_address(address), allow_private=True) is None
    assert url_block_reason(f"http://{_url_host(address)}:8080/n", allow_private=True) is None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address):
    assert address_block_reason(ipaddress.ip_address(address), allow_private=False) is None
    assert url_block_reason(f"https://{_url_host(address)}/notify?x=1", allow_private=False) is None


def test_block_reasons_name_the_address_and_why():
    assert address_block_reason(ipaddress.ip_address("10.0.0.1"), allow_private=False) == (
        "10.0.0.1 is not a public address"
    )
    assert address_block_reason(ipaddress.ip_address("::ffff:127.0.0.1"), allow_private=False) == (
        "127.0.0.1 is not a public address"
    )
    assert address_block_reason(ipaddress.ip_address("169.254.169.254"), allow_private=True) == (
        "169.254.169.254 is a cloud metadata address"
    )
    assert address_block_reason(ipaddress.ip_address("100.100.100.200"), allow_private=True) == (
        "100.100.100.200 is a cloud metadata address"
    )
    assert address_block_reason(ipaddress.ip_address("224.0.0.1"), allow_private=True) == (
        "224.0.0.1 is not a unicast address"
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://8.8.8.8/notify", "only http and https URLs are allowed"),
        ("file:///etc/passwd", "only http and https URLs are allowed"),
        ("javascript:alert(1)", "only http and https URLs are allowed"),
        ("gopher://8.8.8.8:70/_", "only http and https URLs are allowed"),
        ("//8.8.8.8/notify", "only http and https URLs are allowed"),
        ("http:///notify", "the URL has no host"),
        ("http://user:secret@8.8.8.8/notify", "credentials in the URL are not allowed"),
        ("http://user@8.8.8.8/notify", "credentials in the URL are not allowed"),
        ("http://8.8.8.8:0/notify", "port 0 is not allowed"),
        ("http://8.8.8.8:99999/notify", "not a valid URL"),
        ("http://[::1/notify", "not a valid URL"),
    ],
)
def test_urls_that_can_never_be_delivered_to(url, reason):
    assert url_block_reason(url, allow_private=False) == reason
    assert url_block_reason(url, allow_private=True) == reason


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST", "localhost.", "shop.localhost", "a.b.localhost", "shop.localhost."]
)
def test_local_names_are_refused_without_resolving_them(host):
    assert url_block_reason(f"http://{host}/notify", allow_private=False) == f"{host.lower()} is a local name"
    assert url_block_reason(f"http://{host}:8080/notify", allow_private=True) is None


def test_ordinary_names_pass_the_static_check():
    assert url_block_reason("https://shop.example.com/notify?a=1#x", allow_private=False) is None
    assert url_block_reason("http://localhost-shop.example.com/n", allow_private=False) is None


# --- the client against real servers ---------------------------------------------------------


def _endless(handler: BaseHTTPRequestHandler) -> None:
    """An answer that never ends: only a client that stops reading gets away from it."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/plain")
    handler.end_headers()
    chunk = b"success" + b"x" * 8185
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            handler.wfile.write(chunk)
    except OSError:
        pass


@pytest.fixture
def scripted() -> Iterator[Callable[..., RecordingShop]]:
    """Start servers that give every request the same answer, on 127.0.0.1 or ``host``."""
    with started_shops() as start:

        def scripted(answer: Answer | Respond, host: str = "127.0.0.1") -> RecordingShop:
            return start(RecordingShop([answer], host=host))

        yield scripted


@pytest.fixture
def fake_merchant() -> Iterator[FakeMerchant]:
    merchant = FakeMerchant(reply=b"success", delay=0.2).start()
    yield merchant
    merchant.stop()


@asynccontextmanager
async def opened(
    *,
    allow_private: bool = True,
    total_timeout: float = 3.0,
    max_body_bytes: int = 4096,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[SafeHttpClient]:
    """A client of the test's own, closed afterwards."""
    http = SafeHttpClient(
        allow_private=allow_private,
        connect_timeout=2.0,
        total_timeout=total_timeout,
        max_body_bytes=max_body_bytes,
        ssl_context=ssl_context,
    )
    try:
        yield http
    finally:
        await http.aclose()


async def fetch(
    url: str, *, allow_private: bool, total_timeout: float = 3.0, max_body_bytes: int = 4096
) -> HttpOutcome:
    """One GET through a client of its own."""
    async with opened(allow_private=allow_private, total_timeout=total_timeout, max_body_bytes=max_body_bytes) as http:
        return await http.send(OutboundMessage("GET", url))


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _own_name_and_address() -> tuple[str, str]:
    name = socket.gethostname()
    address = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)[0][4][0]
    return name, address


async def test_loopback_merchant_is_reached_when_private_targets_are_allowed(fake_merchant):
    result = await fetch(f"{fake_merchant.url}/notify?pid=1000&name=a+b", allow_private=True)
    assert result.error_class is None and result.error_detail is None
    assert result.status == 200
    assert result.body == b"success"
    assert result.target_host == "127.0.0.1"
    assert 200 <= result.latency_ms < 2000  # the merchant takes 0.2 s to answer
    [received] = fake_merchant.received
    assert (received.method, received.path) == ("GET", "/notify")
    assert received.params == {"pid": "1000", "name": "a b"}


async def test_loopback_merchant_is_refused_by_default_and_never_contacted(fake_merchant):
    result = await fetch(f"{fake_merchant.url}/notify", allow_private=False)
    assert result.error_class is ErrorClass.BLOCKED
    assert result.error_detail == "127.0.0.1 is not a public address"
    assert result.status is None and result.body == b""
    assert result.target_host == "127.0.0.1"
    assert fake_merchant.received == []


@pytest.mark.parametrize(
    "spelling",
    ["2130706433", "0x7f000001", "127.1", "0x7f.1", "0177.0.0.1", "017700000001", "127.0.0.1.", "127.000.0.1"],
)
async def test_every_numeric_spelling_of_loopback_is_read_as_loopback_and_refused(spelling, fake_merchant):
    url = f"http://{spelling}:{fake_merchant.url.rsplit(':', 1)[1]}/notify"
    result = await fetch(url, allow_private=False)
    assert result.error_class is ErrorClass.BLOCKED
    assert result.error_detail == "127.0.0.1 is not a public address" == url_block_reason(url, allow_private=False)
    assert result.target_host == "127.0.0.1"
    assert fake_merchant.received == []


@pytest.mark.parametrize("spelling", ["2130706433", "0x7f.1", "0177.0.0.1", "127.1"])
async def test_where_private_targets_are_allowed_a_numeric_spelling_reaches_the_address_it_was_checked_as(
    spelling, fake_merchant
):
    port = fake_merchant.url.rsplit(":", 1)[1]
    result = await fetch(f"http://{spelling}:{port}/notify", allow_private=True)
    assert result.error_class is None and result.body == b"success"
    [received] = fake_merchant.received
    assert received.headers["host"] == f"127.0.0.1:{port}"


async def test_a_name_resolving_to_a_private_address_is_refused_before_connecting(scripted):
    name, address = _own_name_and_address()
    assert not ipaddress.ip_address(address).is_global, f"{name} resolves to public {address}"
    server = scripted(Answer(200, b"success"), host=address)
    result = await fetch(f"http://{name}:{server.port}/notify", allow_private=False)
    assert result.error_class is ErrorClass.BLOCKED
    assert result.error_detail == f"{name} resolves to {address} is not a public address"
    assert result.target_host == name.lower()
    assert server.received == []


async def test_the_client_connects_to_the_address_it_checked_and_keeps_the_host_header(scripted):
    name, address = _own_name_and_address()
    server = scripted(Answer(200, b"success"), host=address)
    result = await fetch(f"http://{name}:{server.port}/notify?a=1", allow_private=True)
    assert result.error_class is None and result.status == 200
    [seen] = server.received
    assert seen.headers["host"] == f"{name.lower()}:{server.port}"
    assert seen.target == "/notify?a=1"
    assert seen.headers["user-agent"] == "OpenEpay-Notify/1"


async def test_a_redirect_to_a_private_address_is_not_followed(scripted):
    server = scripted(Answer(302, b"moved", (("Location", "http://10.0.0.1/"),)))
    result = await fetch(f"http://127.0.0.1:{server.port}/notify", allow_private=True, total_timeout=2.0)
    assert result.error_class is ErrorClass.REDIRECT
    assert result.status == 302
    assert "http://10.0.0.1/" in (result.error_detail or "")
    assert len(server.received) == 1
    # A private address that answers shows it outright: it is never asked.
    target = scripted(Answer(200, b"success"))
    redirecting = scripted(Answer(302, b"moved", (("Location", f"http://127.0.0.1:{target.port}/notify"),)))
    result = await fetch(f"http://127.0.0.1:{redirecting.port}/notify", allow_private=True, total_timeout=2.0)
    assert (result.error_class, result.status) == (ErrorClass.REDIRECT, 302)
    assert (len(redirecting.received), target.received) == (1, [])


async def test_an_oversize_answer_is_read_only_up_to_the_limit(scripted):
    server = scripted(Answer(200, b"success" + b"x" * (1024 * 1024 - 7)))
    result = await fetch(f"http://127.0.0.1:{server.port}/notify", allow_private=True, max_body_bytes=1000)
    assert result.error_class is None and result.status == 200
    assert result.body == b"success" + b"x" * 993


async def test_an_endless_answer_does_not_hold_the_client(scripted):
    server = scripted(_endless)
    result = await fetch(
        f"http://127.0.0.1:{server.port}/notify", allow_private=True, total_timeout=3.0, max_body_bytes=4096
    )
    assert result.error_class is None
    assert result.status == 200
    assert len(result.body) == 4096 and result.body.startswith(b"success")


async def test_a_closed_port_is_connection_refused():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = await fetch(f"http://127.0.0.1:{port}/notify", allow_private=True)
    assert result.error_class is ErrorClass.REFUSED
    assert result.error_detail == f"connection to 127.0.0.1:{port} refused"
    assert result.status is None


async def test_a_server_that_never_answers_times_out():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog; nobody ever answers
        result = await fetch(
            f"http://127.0.0.1:{silent.getsockname()[1]}/notify", allow_private=True, total_timeout=0.5
        )
    assert result.error_class is ErrorClass.TIMEOUT
    assert result.status is None
    assert 500 <= result.latency_ms < 2000


async def test_https_to_a_plain_http_server_is_a_tls_error(fake_merchant):
    result = await fetch(fake_merchant.url.replace("http://", "https://") + "/notify", allow_private=True)
    assert result.error_class is ErrorClass.TLS
    assert result.status is None


async def test_an_unresolvable_name_is_a_dns_failure():
    result = await fetch("http://no-such-host.invalid/notify", allow_private=False)
    assert result.error_class is ErrorClass.DNS
    assert (result.error_detail or "").startswith("cannot resolve no-such-host.invalid")
    assert result.target_host == "no-such-host.invalid"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://127.0.0.1/n", "only http and https URLs are allowed"),
        ("http://user:pw@127.0.0.1/n", "credentials in the URL are not allowed"),
        ("http://127.0.0.1:0/n", "port 0 is not allowed"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("http://[::ffff:a9fe:a9fe]/latest/", "169.254.169.254 is a cloud metadata address"),
    ],
)
async def test_statically_refused_urls_are_blocked_by_the_client_too(url, reason):
    result = await fetch(url, allow_private=True)
    assert result.error_class is ErrorClass.BLOCKED
    assert result.error_detail == reason
    assert result.status is None


@pytest.mark.parametrize(
    "url",
    ["http://shop..example.com/notify", "http://" + "a" * 64 + ".example.com/notify", "http://例子_x!.中国/notify"],
)
async def test_a_host_name_that_cannot_be_looked_up_is_a_dns_failure(url):
    result = await fetch(url, allow_private=False)
    assert result.error_class is ErrorClass.DNS
    assert (result.error_detail or "").startswith("cannot resolve ")
    assert result.status is None


async def test_answers_are_asked_for_and_read_uncompressed(scripted):
    # 20 MB of "success" squeezed into a few KB: a client that decompresses it pays in memory.
    bomb = gzip.compress(b"success" * 3_000_000, compresslevel=9)
    server = scripted(Answer(200, bomb, (("Content-Encoding", "gzip"),)))
    result = await fetch(f"http://127.0.0.1:{server.port}/notify", allow_private=True, max_body_bytes=4096)
    [seen] = server.received
    assert seen.headers["accept-encoding"] == "identity"
    assert result.status == 200 and result.error_class is None
    assert len(result.body) <= 4096
    assert result.body.startswith(b"\x1f\x8b")  # the bytes as sent, as Rainbow's curl reads them
    assert b"success" not in result.body


# --- what every request is checked against, and how connections are kept --------------------


@pytest.mark.parametrize("host", ["127。0。0。1", "127．0．0．1", "127｡0｡0｡1", "１２７.０.０.１", "127。1"])
@pytest.mark.parametrize("allow_private", [False, True])
async def test_loopback_spelt_with_unicode_dots_or_fullwidth_digits_is_never_contacted(host, allow_private, scripted):
    server = scripted(Answer(200, b"success"))
    url = f"http://{host}:{server.port}/notify"
    result = await fetch(url, allow_private=allow_private)
    assert result.error_class is ErrorClass.BLOCKED
    assert result.error_detail == "the host is an IP address written with non-ASCII characters"
    assert result.error_detail == url_block_reason(url, allow_private=allow_private)
    assert result.status is None
    assert server.received == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169。254。169。254/latest/meta-data/",
        "http://10。0。0。1/",
        "http://0xa9fea9fe/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/",
        "http://%31%32%37.0.0.1/",
        "http://[fe80::1%25lo]/",
        "http://127.0.0.1\n.shop.example.com/",
    ],
)
async def test_the_client_refuses_exactly_what_the_creation_check_refuses(url):
    result = await fetch(url, allow_private=True)
    assert result.error_class is ErrorClass.BLOCKED
    assert result.error_detail == url_block_reason(url, allow_private=True)
    assert result.status is None


async def test_the_connection_pool_itself_will_not_open_a_socket_to_a_blocked_address(scripted):
    # The checks before a request already refuse this URL; the socket factory is the last line,
    # and here it is reached directly through the client's own pool.
    import aiohttp

    server = scripted(Answer(200, b"success"))
    async with opened(allow_private=False) as http:
        with pytest.raises(aiohttp.ClientConnectorError) as refused:
            await http._open_session().get(f"http://127.0.0.1:{server.port}/notify")
    assert str(refused.value.os_error) == "127.0.0.1 is not a public address"
    assert server.received == []


async def test_one_kept_alive_connection_carries_many_requests(scripted):
    with started_shops() as start:
        server = start(RecordingShop([Answer(200, b"success")], keep_alive=True))
        async with opened() as http:
            for n in range(5):
                result = await http.send(OutboundMessage("GET", f"{server.url}/notify?n={n}"))
                assert result.error_class is None and result.body == b"success"
    assert [r.query["n"] for r in server.received] == ["0", "1", "2", "3", "4"]
    assert len({r.connection for r in server.received}) == 1


async def test_a_connection_whose_answer_was_still_arriving_when_reading_stopped_is_not_used_again():
    # 20 MB cannot all be on its way when the client has read 100 bytes (aiohttp stops reading the
    # socket at 128 KB unread); what is left of it would be read as the next answer.
    with started_shops() as start:
        server = start(RecordingShop([Answer(200, b"success" + b"x" * 20_000_000)], keep_alive=True))
        async with opened(max_body_bytes=100) as http:
            for _ in range(2):
                result = await http.send(OutboundMessage("GET", f"{server.url}/notify"))
                assert result.status == 200 and len(result.body) == 100
    assert len({r.connection for r in server.received}) == 2


async def test_a_tls_connection_is_reused_only_for_the_name_it_was_verified_for():
    authority = TestAuthority()
    with started_shops() as start:
        server = start(RecordingShop(keep_alive=True, tls=authority.server_context("localhost", "127.0.0.1")))
        async with opened(ssl_context=authority.client_context()) as http:
            for url in (
                "https://localhost:{port}/a",
                "https://localhost:{port}/b",
                "https://127.0.0.1:{port}/c",
                "https://localhost:{port}/d",
            ):
                result = await http.send(OutboundMessage("GET", url.format(port=server.port)))
                assert result.error_class is None and result.body == b"success", result
    a, b, c, d = server.received
    assert a.connection == b.connection == d.connection != c.connection
    assert (a.tls_name, c.tls_name) == ("localhost", None)  # no SNI for an address
    assert a.headers["host"] == f"localhost:{server.port}" and c.headers["host"] == f"127.0.0.1:{server.port}"


async def test_a_certificate_for_another_name_is_a_tls_error_and_nothing_is_sent():
    authority = TestAuthority()
    with started_shops() as start:
        server = start(RecordingShop(tls=authority.server_context("shop.example.com")))
        async with opened(ssl_context=authority.client_context()) as http:
            result = await http.send(OutboundMessage("GET", f"https://localhost:{server.port}/notify"))
    assert result.error_class is ErrorClass.TLS
    assert "localhost" in (result.error_detail or "")
    assert server.received == []


async def test_a_cookie_one_answer_sets_is_never_sent_back(scripted):
    server = scripted(Answer(200, b"success", (("Set-Cookie", "session=abc; Path=/"),)))
    async with opened() as http:
        for _ in range(2):
            await http.send(OutboundMessage("GET", f"{server.url}/notify"))
    assert [r.headers.get("cookie") for r in server.received] == [None, None]


async def test_a_form_is_posted_url_encoded_in_utf_8(scripted):
    server = scripted(Answer(200, b"success"))
    form = {"order_id": "A-1", "name": "VIP 月卡&=", "price": "9.90"}
    async with opened() as http:
        result = await http.send(OutboundMessage("POST", f"{server.url}/notify?x=1", form))
    assert result.error_class is None
    [seen] = server.received
    assert (seen.method, seen.target, seen.form) == ("POST", "/notify?x=1", form)
    assert seen.body == b"order_id=A-1&name=VIP+%E6%9C%88%E5%8D%A1%26%3D&price=9.90"
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"


def _hang_up(handler: BaseHTTPRequestHandler) -> None:
    """A merchant that acts on the request and drops the connection without a word (a crash, say)."""
    handler.close_connection = True
    handler.connection.shutdown(socket.SHUT_RDWR)


async def test_one_attempt_is_one_request_even_when_the_connection_drops_before_the_answer(scripted):
    server = scripted(_hang_up)
    result = await fetch(f"http://127.0.0.1:{server.port}/notify", allow_private=True)
    assert result.error_class is ErrorClass.NETWORK
    assert result.status is None
    assert len(server.received) == 1
