"""A channel that will not take an order or make a refund, as every dialect's merchant reads it.

The channels explain themselves to the operator ("sandbox: channel paused", "qrpool: no 微信支付
receiving account has a phone online"); merchants and buyers read the reason in their dialect's
own words, and the channel's words are in the gateway's log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest
import pytest_asyncio

from tests.support.answers import json_answer, page_message
from tests.support.epay import order_params, signed
from tests.support.epay_v2 import order_fields
from tests.support.gateways import own_server
from tests.support.payfor import keyed, page_error, payfor_params, send
from tests.support.qrpool import receiving_account
from tests.support.vmq import create as vmq_create
from tests.support.vmq import error_of
from tests.support.vmq import order_params as vmq_params
from tests.support.vmq import signed as vmq_signed
from tests.support.vmq_phone import WXPAY, qrpool_server

SHOP = "https://shop.example.com"
PAUSED, NO_CODE = "paused", "no_code"
EPAY_TEXTS = {PAUSED: "支付通道维护中，请稍后再试", NO_CODE: "该金额暂无可用收款码，请更换金额"}
PAY_MAPI_ANSWERS = {
    PAUSED: {"code": 702, "msg": "Channel is under maintenance, please try again later"},
    NO_CODE: {
        "code": 703,
        "msg": "No payment code matched for the corresponding amount, please change the amount and try again",
    },
}
VMQ_TEXTS = {PAUSED: "监控端状态异常，请检查", NO_CODE: "订单超出负荷，请稍后重试"}


async def _no_phone_online(gateway) -> None:  # type: ignore[no-untyped-def]
    await receiving_account(gateway, "wx-silent", live=False)


async def _codes_for_other_amounts_only(gateway) -> None:  # type: ignore[no-untyped-def]
    await receiving_account(gateway, "wx-fixed", generic=None, fixed={500: "wxp://fixed-5.00"})


@dataclass(frozen=True)
class Refusing:
    """A gateway whose channel refuses orders of ``money``, and the channel's words for the operator."""

    name: str
    reason: str
    money: str
    logged: str
    settings: dict[str, object] = field(default_factory=dict)
    setup: Callable[..., Awaitable[None]] | None = None


SITUATIONS = [
    Refusing("sandbox paused", PAUSED, "7.02", "sandbox: channel paused"),
    Refusing("sandbox without a code", NO_CODE, "7.03", "sandbox: no code for this amount"),
    Refusing("qrpool without a phone online", PAUSED, "1.00", "has a phone online", {"qrpool": True}, _no_phone_online),
    Refusing(
        "qrpool without a free amount",
        NO_CODE,
        "1.00",
        "qrpool: no amount free",
        {"qrpool": True},
        _codes_for_other_amounts_only,
    ),
]


@dataclass
class Gateway:
    client: httpx.AsyncClient
    refusing: Refusing
    caplog: pytest.LogCaptureFixture

    def channel_words_logged(self) -> bool:
        return any(self.refusing.logged in record.getMessage() for record in self.caplog.records)


@pytest_asyncio.fixture(params=SITUATIONS, ids=[situation.name for situation in SITUATIONS])
async def refusing(request, server, gateway, database_url, caplog) -> AsyncIterator[Gateway]:  # type: ignore[no-untyped-def]
    situation: Refusing = request.param
    caplog.set_level(logging.WARNING)
    if not situation.settings:
        async with server.client() as client:
            yield Gateway(client, situation, caplog)
        return
    with own_server(database_url, sandbox=False, **situation.settings) as thread:
        assert situation.setup is not None
        await situation.setup(gateway)
        async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:
            yield Gateway(client, situation, caplog)


def leaks_nothing(text: str) -> bool:
    return not any(word in text.lower() for word in ("sandbox", "qrpool", "phone", "test amount", "account"))


async def test_epay_v1_mapi_and_submit(refusing, merchant):
    params = order_params(merchant.pid, SHOP, "R-V1", type="wxpay", money=refusing.refusing.money)
    mapi = json_answer(
        await refusing.client.post("/mapi.php", data=signed({**params, "clientip": "1.2.3.4"}, merchant.key))
    )
    page = await refusing.client.post("/submit.php", data=signed({**params, "out_trade_no": "R-V1-S"}, merchant.key))

    text = EPAY_TEXTS[refusing.refusing.reason]
    assert mapi == {"code": -2, "msg": text}
    assert page_message(page) == text and leaks_nothing(page.text)
    assert refusing.channel_words_logged()


def v2_md5_request(merchant, fields: dict[str, str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A V2 request signed the MD5 way, which V2 accepts from merchants that are not RSA-only."""
    return signed({"pid": str(merchant.pid), "timestamp": str(int(time.time())), **fields}, merchant.key)


async def test_epay_v2_create_and_submit(refusing, merchant):
    money = refusing.refusing.money
    create = await refusing.client.post(
        "/api/pay/create", data=v2_md5_request(merchant, order_fields(SHOP, "R-V2", type="wxpay", money=money))
    )
    submit_fields = order_params(merchant.pid, SHOP, "R-V2-S", type="wxpay", money=money)
    page = await refusing.client.post("/api/pay/submit", data=v2_md5_request(merchant, submit_fields))

    text = EPAY_TEXTS[refusing.refusing.reason]
    assert json_answer(create) == {"code": -2, "msg": text}
    assert page_message(page) == text and leaks_nothing(page.text)
    assert refusing.channel_words_logged()


async def test_pay_mapi_and_submit(refusing, merchant):
    params = order_params(merchant.pid, SHOP, "R-PAY", type="wxpay", money=refusing.refusing.money)
    mapi = json_answer(await refusing.client.post("/pay/mapi.php", data=signed(params, merchant.key)))
    page = await refusing.client.post(
        "/pay/submit.php", data=signed({**params, "out_trade_no": "R-PAY-S"}, merchant.key)
    )

    expected = PAY_MAPI_ANSWERS[refusing.refusing.reason]
    assert mapi == expected
    assert page_message(page) == f"{expected['code']}: {expected['msg']}"
    assert refusing.channel_words_logged()


async def test_payfor_json_and_browser(refusing, merchant):
    params = payfor_params(merchant.pid, SHOP, "R-PF", type="1", price=refusing.refusing.money)
    as_json = json_answer(await send(refusing.client, keyed(params, merchant.key), as_json=True))
    browser = await send(refusing.client, keyed({**params, "order_id": "R-PF-B"}, merchant.key), as_json=False)

    text = EPAY_TEXTS[refusing.refusing.reason]
    assert as_json == {"code": -5, "msg": text}
    assert page_error(browser) == text and leaks_nothing(browser.text)
    assert refusing.channel_words_logged()


async def test_vmq_create_order(refusing, merchant):
    params = vmq_signed(vmq_params("R-VMQ", SHOP, type="1", price=refusing.refusing.money), merchant.key)
    answer = await vmq_create(refusing.client, params, merchant.pid)

    assert error_of(answer) == VMQ_TEXTS[refusing.refusing.reason]
    assert refusing.channel_words_logged()


# -- refunds ----------------------------------------------------------------------------------


async def test_a_refund_the_channel_cannot_make_is_told_without_the_channels_words(merchant, database_url, caplog):
    """Personal receive codes cannot refund: the merchant learns that retrying will not help, not how we collect."""
    caplog.set_level(logging.WARNING)
    async with qrpool_server(database_url) as qr:
        _, _, phone = await qr.pair()
        async with qr.client() as client:
            params = order_params(merchant.pid, SHOP, "R-REFUND", type="wxpay", money="1.00", clientip="1.2.3.4")
            trade_no = json_answer(await client.post("/mapi.php", data=signed(params, merchant.key)))["trade_no"]
            assert (await phone.paid(WXPAY, 100))["code"] == 1

            body = {"pid": str(merchant.pid), "key": merchant.key, "trade_no": trade_no, "money": "0.50"}
            v1 = json_answer(await client.post("/api.php?act=refund", data=body))
            v2 = json_answer(
                await client.post(
                    "/api/pay/refund", data=v2_md5_request(merchant, {"trade_no": trade_no, "money": "0.50"})
                )
            )
            order = json_answer(await client.get("/api.php", params={**body, "act": "order"}))

    refused = {"code": -1, "msg": "退款失败：该订单的支付通道不支持原路退款，请联系平台退款"}
    assert v1 == v2 == refused
    assert order["status"] == 1
    assert any("个人收款码通道无法自动退款" in record.getMessage() for record in caplog.records)
