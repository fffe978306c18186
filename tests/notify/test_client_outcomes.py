"""What the client reports for each way a delivery can end, in the words the delivery log shows.

Real servers on loopback (reachable with the operator switch ``allow_private`` on) and a real
client: status and headers as answered, redirects named and refused, timeouts naming the limit
that ran out, TLS refused without a trusted certificate, the environment's proxy ignored.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from openepay.notify.http import ErrorClass, HttpOutcome, OutboundMessage, SafeHttpClient
from tests.support.settings import make_settings
from tests.support.shop import Answer, RecordingShop, started_shops
from tests.support.tls import self_signed_server_context


async def send(url: str, *, connect_timeout: float = 2.0, total_timeout: float = 3.0) -> HttpOutcome:
    """One GET through a client of its own that may reach private addresses."""
    http = SafeHttpClient(
        allow_private=True, connect_timeout=connect_timeout, total_timeout=total_timeout, max_body_bytes=4096
    )
    try:
        return await http.send(OutboundMessage("GET", url))
    finally:
        await http.aclose()


@pytest.fixture
def shop_answering() -> Iterator[Callable[[Answer], RecordingShop]]:
    """Starts a shop giving every request ``answer``; stopped at the end of the test."""
    with started_shops() as start:

        def shop(answer: Answer) -> RecordingShop:
            return start(RecordingShop([answer]))

        yield shop


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_every_redirect_status_with_a_location_is_a_redirect_that_is_not_followed(status, shop_answering):
    target = shop_answering(Answer(200, b"success"))
    shop = shop_answering(Answer(status, b"moved", (("Location", f"{target.url}/elsewhere"),)))
    result = await send(f"{shop.url}/notify")
    assert (result.error_class, result.status) == (ErrorClass.REDIRECT, status)
    assert result.error_detail == f"redirects to {target.url}/elsewhere (redirects are not followed)"
    assert (len(shop.received), target.received) == (1, [])


async def test_a_redirect_names_the_first_200_characters_of_where_it_points(shop_answering):
    location = "http://shop.example.com/" + "x" * 300
    shop = shop_answering(Answer(302, b"moved", (("Location", location),)))
    result = await send(f"{shop.url}/notify")
    assert result.error_detail == f"redirects to {location[:200]} (redirects are not followed)"


@pytest.mark.parametrize(
    ("status", "headers"),
    [(302, ()), (300, (("Location", "http://shop.example.com/"),)), (200, (("Location", "http://shop.example.com/"),))],
    ids=["a redirect status without a location", "a location with 300", "a location with 200"],
)
async def test_an_answer_that_is_not_a_redirect_with_a_location_is_an_answer(status, headers, shop_answering):
    shop = shop_answering(Answer(status, b"success", headers))
    result = await send(f"{shop.url}/notify")
    assert (result.error_class, result.error_detail) == (None, None)
    assert (result.status, result.body) == (status, b"success")


async def test_the_answers_headers_are_kept_under_lower_case_names(shop_answering):
    shop = shop_answering(Answer(200, b"success", (("X-Served-By", "Shop-WAF"),)))
    result = await send(f"{shop.url}/notify")
    assert result.headers["x-served-by"] == "Shop-WAF"
    assert result.headers["content-length"] == "7"
    assert all(name == name.lower() for name in result.headers)


async def test_an_answer_that_never_comes_is_a_timeout_naming_the_whole_exchanges_limit():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog; nobody ever answers
        result = await send(f"http://127.0.0.1:{silent.getsockname()[1]}/notify", total_timeout=0.5)
    assert (result.error_class, result.error_detail) == (ErrorClass.TIMEOUT, "no complete answer within 0.5s")
    assert (result.status, result.body, result.target_host) == (None, b"", "127.0.0.1")


async def test_a_connection_nobody_accepts_is_a_timeout_naming_the_connect_limit():
    # A listening socket whose backlog is full: the kernel drops further connection attempts, so
    # connect() neither completes nor fails.
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        waiting = []
        for _ in range(4):
            pending = socket.socket()
            pending.setblocking(False)
            pending.connect_ex(full.getsockname())
            waiting.append(pending)
        try:
            result = await send(f"http://127.0.0.1:{full.getsockname()[1]}/notify", connect_timeout=0.5)
        finally:
            for pending in waiting:
                pending.close()
    assert (result.error_class, result.error_detail) == (ErrorClass.TIMEOUT, "no connection within 0.5s")
    assert result.status is None


async def test_a_connection_dropped_before_the_answer_is_a_network_error_in_aiohttps_words():
    def hang_up(handler) -> None:  # type: ignore[no-untyped-def]
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)

    with started_shops() as start:
        shop = start(RecordingShop([hang_up]))
        result = await send(f"{shop.url}/notify")
    assert (result.error_class, result.error_detail) == (ErrorClass.NETWORK, "Server disconnected")


async def test_an_answer_that_is_not_http_is_a_network_error_in_aiohttps_words_cut_at_300_characters():
    def not_http(handler) -> None:  # type: ignore[no-untyped-def]
        handler.wfile.write(b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n")
        handler.close_connection = True

    with started_shops() as start:
        shop = start(RecordingShop([not_http]))
        result = await send(f"{shop.url}/" + "p" * 400)  # aiohttp's words name the URL: more than 300 characters
    assert result.error_class is ErrorClass.NETWORK
    assert (result.error_detail or "").startswith('400, message="Bad status line')
    assert len(result.error_detail or "") == 300


async def test_https_to_a_certificate_no_trusted_authority_signed_is_a_tls_error_and_nothing_is_sent():
    with started_shops() as start:
        shop = start(RecordingShop(tls=self_signed_server_context("127.0.0.1")))
        result = await send(f"https://127.0.0.1:{shop.port}/notify")
    assert result.error_class is ErrorClass.TLS
    assert "certificate verify failed" in (result.error_detail or "")
    assert shop.received == []


async def test_a_proxy_named_in_the_environment_is_not_used(shop_answering, monkeypatch):
    proxy = shop_answering(Answer(200, b"from the proxy"))
    shop = shop_answering(Answer(200, b"success"))
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    result = await send(f"http://localhost:{shop.port}/notify")
    assert (result.error_class, result.body) == (None, b"success")
    assert (len(shop.received), proxy.received) == (1, [])


async def test_a_local_name_is_refused_by_the_client_without_being_looked_up(shop_answering):
    shop = shop_answering(Answer(200, b"success"))
    http = SafeHttpClient(allow_private=False, connect_timeout=2.0, total_timeout=3.0, max_body_bytes=4096)
    try:
        result = await http.send(OutboundMessage("GET", f"http://localhost:{shop.port}/notify"))
    finally:
        await http.aclose()
    assert (result.error_class, result.error_detail) == (ErrorClass.BLOCKED, "localhost is a local name")
    assert (result.target_host, shop.received) == ("localhost", [])


@pytest.mark.parametrize(
    ("url", "host", "error_class", "detail"),
    [
        ("http://user:pw@127.0.0.1/n", "127.0.0.1", ErrorClass.BLOCKED, "credentials in the URL are not allowed"),
        (
            "http://Shop..Example.com/n",
            "shop..example.com",
            ErrorClass.DNS,
            "cannot resolve shop..example.com: Shop..Example.com is not a valid host name",
        ),
        ("http://[::1/n", "", ErrorClass.BLOCKED, "not a valid URL"),
        ("http:///n", "", ErrorClass.BLOCKED, "the URL has no host"),
        (
            "http://127.0.0.1\n/n",
            "127.0.0.1",
            ErrorClass.BLOCKED,
            "control characters (CR, LF, TAB...) are not allowed in a URL",
        ),
    ],
)
async def test_a_url_that_cannot_be_read_is_logged_under_its_host_as_written(url, host, error_class, detail):
    result = await send(url)
    assert (result.target_host, result.error_class, result.error_detail) == (host, error_class, detail)
    assert result.status is None


async def test_a_client_made_for_the_settings_takes_their_switch_and_their_limits(shop_answering):
    shop = shop_answering(Answer(200, b"success" + b"x" * 100))
    settings = make_settings(
        "sqlite+aiosqlite:///unused.db",
        notify_allow_private=True,
        notify_connect_timeout=1.5,
        notify_timeout=2.5,
        notify_max_body_bytes=10,
    )
    http = SafeHttpClient.for_settings(settings)
    try:
        result = await http.send(OutboundMessage("GET", f"{shop.url}/notify"))
    finally:
        await http.aclose()
    assert (result.error_class, result.body) == (None, b"successxxx")
    assert (http.allow_private, http.connect_timeout, http.total_timeout) == (True, 1.5, 2.5)


async def test_closing_the_client_closes_its_connections_and_a_later_send_opens_a_new_one():
    with started_shops() as start:
        shop = start(RecordingShop([Answer(200, b"success")], keep_alive=True))
        http = SafeHttpClient(allow_private=True, connect_timeout=2.0, total_timeout=3.0, max_body_bytes=4096)
        try:
            await http.aclose()  # a worker stopped before its first delivery closes a client that never sent
            first = await http.send(OutboundMessage("GET", f"{shop.url}/notify"))
            await http.aclose()
            again = await http.send(OutboundMessage("GET", f"{shop.url}/notify"))
            await http.aclose()
        finally:
            await http.aclose()  # a second close in a row (a shutdown path after a stop) does nothing
    assert (first.body, again.body, again.error_class) == (b"success", b"success", None)
    first_seen, again_seen = shop.received
    assert first_seen.connection != again_seen.connection
