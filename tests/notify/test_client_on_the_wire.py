"""What the client puts on the wire and how a failed connection reads, for IPv6 merchants too.

Real servers on loopback (``::1`` as well as 127.0.0.1), reachable with the operator switch
``allow_private`` on.
"""

from __future__ import annotations

import socket
import time
from http.server import BaseHTTPRequestHandler

import pytest

from openepay.notify.http import ErrorClass, HttpOutcome, OutboundMessage, SafeHttpClient
from openepay.notify.targets import read_target
from tests.support.shop import Answer, RecordingShop, started_shops


async def send(url: str, *, max_body_bytes: int = 4096) -> HttpOutcome:
    """One GET through a client of its own that may reach private addresses."""
    http = SafeHttpClient(allow_private=True, connect_timeout=2.0, total_timeout=3.0, max_body_bytes=max_body_bytes)
    try:
        return await http.send(OutboundMessage("GET", url))
    finally:
        await http.aclose()


def closed_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


async def test_a_merchant_on_an_ipv6_address_is_reached_and_named_in_brackets():
    with started_shops() as start:
        shop = start(RecordingShop(host="::1"))
        result = await send(f"http://[::1]:{shop.port}/notify?a=1")
    assert result.error_class is None and result.status == 200 and result.body == b"success"
    assert result.target_host == "::1"
    [seen] = shop.received
    assert (seen.target, seen.headers["host"]) == ("/notify?a=1", f"[::1]:{shop.port}")


@pytest.mark.parametrize(
    "path_and_query",
    ["/a b/%41/%zz?q=%zz&r=%41", '/{x}/"q"?`{}`', "/n?a=1?b=2", "/%E5%9B%9E?%E5%90%8D=%E5%80%BC"],
)
async def test_the_request_target_arrives_exactly_as_read_percent_escapes_and_all(path_and_query):
    with started_shops() as start:
        shop = start(RecordingShop())
        url = f"{shop.url}{path_and_query}"
        result = await send(url)
    assert result.error_class is None and result.status == 200
    [seen] = shop.received
    assert seen.target == read_target(url).request_target


async def test_a_closed_ipv6_port_is_connection_refused_naming_the_address_in_brackets():
    port = closed_port("::1")
    result = await send(f"http://[::1]:{port}/notify")
    assert (result.error_class, result.error_detail) == (ErrorClass.REFUSED, f"connection to [::1]:{port} refused")
    assert result.status is None


async def test_a_connection_the_system_cannot_make_is_a_network_error_in_the_systems_words():
    # A link-local address without an interface: connect() fails at once with EINVAL.
    result = await send(f"http://[fe80::1]:{closed_port('::1')}/notify")
    assert (result.error_class, result.error_detail) == (ErrorClass.NETWORK, "[Errno 22] Invalid argument")
    assert result.status is None


def _in_two_pieces(handler: BaseHTTPRequestHandler) -> None:
    """A body of 20 bytes now and 2,000 a moment later, so the client reads it in more than one piece."""
    handler.send_response(200)
    handler.send_header("Content-Length", "2020")
    handler.end_headers()
    handler.wfile.write(b"success" + b"a" * 13)
    handler.wfile.flush()
    time.sleep(0.2)
    handler.wfile.write(b"b" * 2000)


async def test_an_answer_arriving_in_pieces_is_kept_whole_up_to_the_limit_and_no_further():
    with started_shops() as start:
        shop = start(RecordingShop([_in_two_pieces]))
        result = await send(f"{shop.url}/notify", max_body_bytes=100)
    assert result.error_class is None and result.status == 200
    assert result.body == b"success" + b"a" * 13 + b"b" * 80


async def test_over_plain_http_one_kept_alive_connection_serves_every_name_of_the_address():
    with started_shops() as start:
        shop = start(RecordingShop([Answer()], keep_alive=True))
        http = SafeHttpClient(allow_private=True, connect_timeout=2.0, total_timeout=3.0, max_body_bytes=4096)
        try:
            for host in ("localhost", "127.0.0.1", "localhost"):
                result = await http.send(OutboundMessage("GET", f"http://{host}:{shop.port}/notify"))
                assert result.error_class is None and result.body == b"success"
        finally:
            await http.aclose()
    assert [r.headers["host"] for r in shop.received] == [
        f"{h}:{shop.port}" for h in ("localhost", "127.0.0.1", "localhost")
    ]
    assert len({r.connection for r in shop.received}) == 1
