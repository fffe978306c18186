"""The test notification and its diagnosis, against real servers on loopback, one per cause.

Loopback is reachable only with the operator switch ``allow_private`` on, as in ``test_http``;
the SSRF refusal is tested with it off.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime

import pytest

from openepay.notify.diagnosis import TestNotificationResult, escaped_head, send_test_notification
from openepay.notify.http import SafeHttpClient
from openepay.protocols.epay.messages import EpayMessages
from openepay.protocols.payfor.messages import PayForMessages
from openepay.protocols.vmq.messages import VmqMessages
from tests.support.merchant import ScriptedShop
from tests.support.shop import Answer, RecordingShop, started_shops
from tests.support.tls import TestAuthority, self_signed_server_context
from tests.support.vmq import VmqShop

KEY = "k3yOfTheMerchant9"
PID = 1001
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def start() -> Iterator[Callable[[RecordingShop], RecordingShop]]:
    with started_shops() as start:
        yield start


def client_for_tests(**options: object) -> SafeHttpClient:
    """The client a probe goes out on: private addresses allowed, short timeouts, unless ``options`` say otherwise."""
    defaults: dict[str, object] = {
        "allow_private": True,
        "connect_timeout": 2.0,
        "total_timeout": 1.0,
        "max_body_bytes": 4096,
    }
    return SafeHttpClient(**{**defaults, **options})  # type: ignore[arg-type]


@pytest.fixture
async def http() -> AsyncIterator[SafeHttpClient]:
    client = client_for_tests()
    yield client
    await client.aclose()


async def probe(http: SafeHttpClient, url: str, messages=None, dialect: str = "epay") -> TestNotificationResult:  # type: ignore[no-untyped-def]
    return await send_test_notification(
        messages or EpayMessages(), http, dialect=dialect, pid=PID, key=KEY, url=url, now=NOW
    )


async def probe_once(url: str, **client_options: object) -> TestNotificationResult:
    """A probe on a client of its own, made with ``client_options`` (a TLS context, no private addresses)."""
    client = client_for_tests(**client_options)
    try:
        return await probe(client, url)
    finally:
        await client.aclose()


async def test_a_shop_that_answers_success_gets_a_marked_test_it_can_verify(start, http):
    shop = start(ScriptedShop(KEY, [Answer(body=b"success")]))
    result = await probe(http, f"{shop.url}/notify.php")
    assert result.acknowledged and result.diagnosis.code == "delivered"
    assert (result.status, result.body_head, result.method) == (200, "success", "GET")
    [received] = shop.received
    assert received.signature_ok is True  # the shop's own check, written independently of the gateway's
    assert received.params["trade_status"] == "TEST_NOTIFY"
    assert received.params["out_trade_no"] == "OPENEPAY-TEST-20260102030405"
    assert KEY not in received.target


async def test_vmq_and_payfor_shops_verify_their_dialect_s_test_message(start, http):
    vmq_shop = start(VmqShop(KEY))
    result = await probe(http, f"{vmq_shop.url}/notify", VmqMessages(), "vmq")
    assert result.acknowledged
    assert vmq_shop.received[0].signature_ok is True
    assert vmq_shop.received[0].params["payId"].startswith("OPENEPAY-TEST-")
    payfor_shop = start(RecordingShop())
    result = await probe(http, f"{payfor_shop.url}/notify", PayForMessages(None, None), "payfor")  # type: ignore[arg-type]
    assert (result.method, result.acknowledged) == ("POST", True)
    assert payfor_shop.received[0].form["code"] == "TEST"


async def test_an_upper_case_answer_with_a_newline_is_named_for_an_exact_match_dialect(start, http):
    shop = start(VmqShop(KEY, [Answer(body=b"SUCCESS\n")]))
    result = await probe(http, f"{shop.url}/notify", VmqMessages(), "vmq")
    assert not result.acknowledged
    assert result.body_head == "SUCCESS\\n"
    assert result.diagnosis.code == "bad_body"
    assert 'wrong case: it answered "SUCCESS"' in result.diagnosis.en
    assert 'must be exactly "success" in lower case' in result.diagnosis.en
    assert "大小写" in result.diagnosis.zh


async def test_epay_accepts_the_same_answer_because_its_matcher_looks_for_any_spelling(start, http):
    shop = start(ScriptedShop(KEY, [Answer(body=b"SUCCESS\n")]))
    result = await probe(http, f"{shop.url}/notify")
    assert result.acknowledged and result.diagnosis.code == "delivered"


async def test_a_bom_before_success_is_shown_escaped_and_named(start, http):
    shop = start(VmqShop(KEY, [Answer(body=b"\xef\xbb\xbfsuccess")]))
    result = await probe(http, f"{shop.url}/notify", VmqMessages(), "vmq")
    assert result.body_head == "\\ufeffsuccess"
    assert result.diagnosis.code == "bad_body" and "BOM" in result.diagnosis.en


async def test_a_json_answer_is_named_with_what_the_epay_matcher_accepts(start, http):
    shop = start(ScriptedShop(KEY, [Answer(body=b'{"code":1,"msg":"ok"}')]))
    result = await probe(http, f"{shop.url}/notify")
    assert result.diagnosis.code == "bad_body"
    assert "it answered JSON" in result.diagnosis.en
    assert 'contains "success" or "SUCCESS" or "Success"' in result.diagnosis.en


async def test_an_http_error_status_is_explained(start, http):
    shop = start(ScriptedShop(KEY, [Answer(status=500, body=b"Fatal error")]))
    result = await probe(http, f"{shop.url}/notify")
    assert (result.status, result.diagnosis.code) == (500, "http_status")
    assert "HTTP 500" in result.diagnosis.en and "error log" in result.diagnosis.en


async def test_a_cloudflare_challenge_is_recognised_by_its_page(start, http):
    page = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>"
    shop = start(ScriptedShop(KEY, [Answer(status=403, body=page, headers=(("Server", "cloudflare"),))]))
    result = await probe(http, f"{shop.url}/notify")
    assert result.diagnosis.code == "waf"
    assert result.diagnosis.en.startswith("Cloudflare blocked the request (HTTP 403")


async def test_a_bt_panel_waf_page_is_recognised_even_with_status_200(start, http):
    page = "<html><title>宝塔网站防火墙</title><body>您的请求带有不合法参数</body></html>".encode()
    shop = start(ScriptedShop(KEY, [Answer(status=200, body=page)]))
    result = await probe(http, f"{shop.url}/notify")
    assert result.diagnosis.code == "waf" and "宝塔" in result.diagnosis.zh


@pytest.mark.parametrize(
    ("status", "page", "name"),
    [
        (
            405,
            b"<html><body>Sorry, your request has been blocked. https://errors.aliyun.com/</body></html>",
            "Aliyun WAF",
        ),
        (
            403,
            "<title>501</title><a href='https://waf.tencent-cloud.com/'>腾讯云 Web 应用防火墙</a>".encode(),
            "Tencent Cloud WAF",
        ),
    ],
    ids=["aliyun", "tencent"],
)
async def test_cloud_waf_block_pages_are_recognised(start, http, status, page, name):
    shop = start(ScriptedShop(KEY, [Answer(status=status, body=page)]))
    result = await probe(http, f"{shop.url}/notify")
    assert result.diagnosis.code == "waf"
    assert result.diagnosis.en.startswith(f"{name} blocked the request (HTTP {status}")


async def test_a_redirect_is_reported_not_followed(start, http):
    shop = start(ScriptedShop(KEY, [Answer(status=301, body=b"", headers=(("Location", "https://shop.example/n"),))]))
    result = await probe(http, f"{shop.url}/notify")
    assert result.diagnosis.code == "redirect"
    assert "https://shop.example/n" in result.diagnosis.en
    assert len(shop.received) == 1


async def test_a_closed_port_is_connection_refused(http):
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    result = await probe(http, f"http://127.0.0.1:{port}/notify")
    assert (result.status, result.diagnosis.code) == (None, "refused")
    assert "nothing listens" in result.diagnosis.en


async def test_a_server_that_never_answers_is_a_timeout(http):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        result = await probe(http, f"http://127.0.0.1:{silent.getsockname()[1]}/notify")
    assert result.diagnosis.code == "timeout" and "firewall" in result.diagnosis.en


async def test_https_spoken_to_a_plain_http_server_is_named(start, http):
    shop = start(ScriptedShop(KEY))
    result = await probe(http, shop.url.replace("http://", "https://") + "/notify")
    assert result.diagnosis.code == "tls"
    assert "does not speak HTTPS" in result.diagnosis.en


async def test_a_certificate_from_an_untrusted_issuer_is_named(start, http):
    shop = start(RecordingShop(tls=TestAuthority().server_context("127.0.0.1")))
    result = await probe(http, f"{shop.url}/notify")
    assert result.diagnosis.code == "tls"
    assert "the certificate cannot be verified" in result.diagnosis.en
    assert shop.received == []


async def test_a_self_signed_certificate_is_named(start, http):
    shop = start(RecordingShop(tls=self_signed_server_context("127.0.0.1")))
    result = await probe(http, f"{shop.url}/notify")
    assert result.diagnosis.code == "tls"
    assert "the certificate is self-signed" in result.diagnosis.en and "自签名" in result.diagnosis.zh
    assert shop.received == []


async def test_an_expired_certificate_is_named(start):
    authority = TestAuthority()
    shop = start(RecordingShop(tls=authority.server_context("127.0.0.1", expired=True)))
    result = await probe_once(f"{shop.url}/notify", ssl_context=authority.client_context())
    assert result.diagnosis.code == "tls"
    assert "the certificate has expired" in result.diagnosis.en


async def test_a_certificate_for_another_name_is_named(start):
    authority = TestAuthority()
    shop = start(RecordingShop(tls=authority.server_context("shop.example.com")))
    result = await probe_once(f"{shop.url}/notify", ssl_context=authority.client_context())
    assert result.diagnosis.code == "tls"
    assert "the certificate is for another name" in result.diagnosis.en


async def test_a_name_that_does_not_resolve_is_named(http):
    result = await probe(http, "http://no-such-shop.invalid/notify")
    assert result.diagnosis.code == "dns"
    assert "no-such-shop.invalid does not resolve" in result.diagnosis.en


async def test_loopback_is_refused_by_the_ssrf_rules_with_what_to_do(start):
    shop = start(ScriptedShop(KEY))
    result = await probe_once(f"{shop.url}/notify", allow_private=False)
    assert result.diagnosis.code == "blocked"
    assert "127.0.0.1 is not a public address" in result.diagnosis.en
    assert "OPENEPAY_NOTIFY_ALLOW_PRIVATE" in result.diagnosis.en
    assert shop.received == []


def test_the_body_head_escapes_invisible_characters_and_is_capped():
    assert escaped_head(b"ok\r\n\x00\xff") == "ok\\r\\n\\x00\\xff"
    assert escaped_head(b"a" * 500, limit=10) == "a" * 10 + "…"
