"""What every answer carries for the buyer's browser, and which address the answers name, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.cashier import DESKTOP, mapi_order
from tests.support.epay import order_params, signed
from tests.support.gateways import own_server
from tests.support.links import cashier_path, sandbox_path
from tests.support.payfor import keyed, payfor_params
from tests.support.servers import ServerThread
from tests.support.vmq import create, data_of, path, vmq_answer
from tests.support.vmq import order_params as vmq_order_params
from tests.support.vmq import signed as vmq_signed

BROWSER_HEADERS = {"x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}
PUBLIC_URL = "https://pay.example.com"
FORGED_HOST = "attacker.example"


def assert_protected(name: str, response: httpx.Response) -> None:
    for header, value in BROWSER_HEADERS.items():
        assert response.headers.get(header) == value, (name, header)
    policy = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy, name
    assert "default-src 'self'" in policy, name


async def test_every_page_refuses_framing_sniffing_and_referrers(server, merchant, shop):
    async with server.client(headers=DESKTOP) as client:
        paying = (await mapi_order(client, merchant, shop, "H-1"))["trade_no"]
        paid = (await mapi_order(client, merchant, shop, "H-2", return_url=None))["trade_no"]
        assert (await client.post(sandbox_path(paid))).status_code == 303
        returning = (await mapi_order(client, merchant, shop, "H-3"))["trade_no"]
        assert (await client.post(sandbox_path(returning))).status_code == 303
        chooser = await client.get(
            "/submit.php", params=signed(order_params(merchant.pid, shop.url, "H-4", type=None), merchant.key)
        )
        pages = {
            "home": await client.get("/"),
            "cashier": await client.get(cashier_path(paying)),
            "pay-type chooser": await client.get(chooser.headers["location"]),
            "order not found": await client.get("/cashier/20990101000000000000"),
            "submit.php refusal": await client.get("/submit.php", params={"pid": "1"}),
            "sandbox pay page": await client.get(sandbox_path(paying)),
            "sandbox refusal": await client.post(sandbox_path(paid)),
            "our paid page": await client.get(f"{cashier_path(paid)}/return"),
            "demo shop": await client.get("/demo-shop/return", params={"trade_no": "1"}),
        }
        answers = {
            "status poll": await client.get(f"{cashier_path(paying)}/status"),
            "mapi.php": await client.post("/mapi.php", data={"pid": "1"}),
            "healthz": await client.get("/healthz"),
            "unknown path": await client.get("/no-such-page"),
            "stylesheet": await client.get("/static/style.css"),
            "return to the shop": await client.get(f"{cashier_path(returning)}/return"),
        }

    for name, page in pages.items():
        assert page.headers["content-type"].startswith("text/html"), name
        assert_protected(name, page)
    for name, answer in answers.items():
        assert answer.headers.get("x-content-type-options") == "nosniff", name
    # The shop's return URL carries signed fields: the redirect there tells the browser to send no Referer on.
    back = answers["return to the shop"]
    assert back.status_code == 302 and back.headers["location"].startswith(f"{shop.url}/return?")
    assert_protected("return to the shop", back)


@pytest.fixture
def public_server(database_url: str) -> Iterator[ServerThread]:
    with own_server(database_url, public_url=PUBLIC_URL) as thread:
        yield thread


async def mapi(client: httpx.AsyncClient, merchant, shop, out_trade_no: str, **overrides: str) -> dict:  # type: ignore[no-untyped-def]
    params = {"clientip": "203.0.113.9", "device": "pc", **overrides}
    answer = (
        await client.post(
            "/mapi.php", data=signed(order_params(merchant.pid, shop.url, out_trade_no, **params), merchant.key)
        )
    ).json()
    assert answer["code"] == 1, answer
    return answer


def names_no_forged_host(name: str, response: httpx.Response) -> None:
    seen = response.text + "".join(f"{key}: {value}\n" for key, value in response.headers.items())
    assert FORGED_HOST not in seen, (name, seen[:2000])


async def test_with_a_public_url_the_host_header_decides_no_url(public_server, merchant, shop):
    """A client that forges ``Host`` (to poison a cache, or to hand a buyer links to its own site) moves nothing."""
    forged = {"Host": FORGED_HOST, **DESKTOP}
    async with httpx.AsyncClient(base_url=public_server.url, headers=forged, timeout=10) as client:
        pc = await mapi(client, merchant, shop, "P-1")
        jump = await mapi(client, merchant, shop, "P-2", device="jump")
        other = await mapi(client, merchant, shop, "P-3", type="bank")
        submitted = await client.get(
            "/submit.php", params=signed(order_params(merchant.pid, shop.url, "P-4"), merchant.key)
        )
        payfor = await client.post(
            "/Home/Pay/payFor",
            data={**keyed(payfor_params(merchant.pid, shop.url, "P-5"), merchant.key), "format": "json"},
        )
        vmq = data_of(
            await create(client, vmq_signed(vmq_order_params("P-6", returnUrl=None), merchant.key), merchant.pid)
        )
        assert (await client.post(f"/sandbox/pay/{vmq['orderId']}")).status_code == 303
        responses = {
            "cashier": await client.get(cashier_path(pc["trade_no"])),
            "sandbox page": await client.get(sandbox_path(pc["trade_no"])),
            "submit.php": submitted,
            "payFor": payfor,
            "V免签 paid page": await client.get(path("checkOrder", merchant.pid), params={"orderId": vmq["orderId"]}),
            "trailing-slash redirect": await client.get("/healthz/"),
            "sandbox button": await client.post(sandbox_path(pc["trade_no"])),
            "paid cashier": await client.get(cashier_path(pc["trade_no"])),
        }

    assert pc["qrcode"] == f"{PUBLIC_URL}{sandbox_path(pc['trade_no'])}"
    assert jump["payurl"] == f"{PUBLIC_URL}{cashier_path(jump['trade_no'])}"
    assert other["payurl"] == f"{PUBLIC_URL}{cashier_path(other['trade_no'])}?other=1"
    assert payfor.json()["data"]["payurl"].startswith(f"{PUBLIC_URL}/cashier/")
    assert vmq["payUrl"].startswith(f"{PUBLIC_URL}/sandbox/pay/")
    assert vmq_answer(responses["V免签 paid page"])["data"] == f"{PUBLIC_URL}/cashier/{vmq['orderId']}/return"
    assert f'href="{PUBLIC_URL}/static/style.css"' in responses["cashier"].text
    assert responses["trailing-slash redirect"].headers["location"] == f"{PUBLIC_URL}/healthz"
    for name, response in responses.items():
        names_no_forged_host(name, response)


async def test_without_a_public_url_links_name_the_address_the_request_came_to(server, merchant, shop):
    async with server.client(headers={"Host": "gateway.internal:8443", **DESKTOP}) as client:
        answer = await mapi(client, merchant, shop, "P-7", device="jump")
        page = await client.get(answer["payurl"].removeprefix("http://gateway.internal:8443"))
    assert answer["payurl"] == f"http://gateway.internal:8443{cashier_path(answer['trade_no'])}"
    assert 'href="http://gateway.internal:8443/static/style.css"' in page.text
