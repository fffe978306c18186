"""The SSRF-safe client every request to a merchant-supplied URL goes through.

No database here: the address checks are pure, and the client is exercised against real
servers on loopback (reachable only when the operator switch ``allow_private`` is on).
Public addresses are checked, never contacted.
"""

from __future__ import annotations

import gzip
import ipaddress
import socket
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from openepay.notify.http import (
    ErrorClass,
    HttpOutcome,
    OutboundMessage,
    SafeHttpClient,
    address_block_reason,
    url_block_reason,
)
from tests.support.merchant import FakeMerchant
from tests.support.shop import Answer, RecordingShop, Respond, started_shops

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


async def fetch(
    url: str, *, allow_private: bool, total_timeout: float = 3.0, max_body_bytes: int = 4096
) -> HttpOutcome:
    """One GET through a client of its own, closed afterwards."""
    http = SafeHttpClient(
        allow_private=allow_private, connect_timeout=2.0, total_timeout=total_timeout, max_body_bytes=max_body_bytes
    )
    try:
        return await http.send(OutboundMessage("GET", url))
    finally:
        await http.aclose()


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


@pytest.mark.parametrize("spelling", ["2130706433", "0x7f000001", "127.1", "0x7f.1"])
async def test_odd_spellings_of_loopback_are_caught_after_resolution(spelling, fake_merchant):
    result = await fetch(f"http://{spelling}:{fake_merchant.url.rsplit(':', 1)[1]}/notify", allow_private=False)
    assert result.error_class is ErrorClass.BLOCKED
    assert "127.0.0.1 is not a public address" in (result.error_detail or "")
    assert fake_merchant.received == []


async def test_an_octal_spelling_of_loopback_is_not_even_a_host(fake_merchant):
    result = await fetch(f"http://0177.0.0.1:{fake_merchant.url.rsplit(':', 1)[1]}/notify", allow_private=False)
    assert result.error_class is ErrorClass.DNS
    assert fake_merchant.received == []


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
    assert result.latency_ms < 1000  # answered at once, no attempt on 10.0.0.1


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
