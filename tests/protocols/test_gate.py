"""Who may act for a merchant, walked over every endpoint of every dialect (``tests/support/endpoints.py``).

A disabled merchant, a merchant that does not use the dialect, and a caller locked out after
failed signature checks are turned away everywhere, each in the dialect's own words.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import event

from openepay.core.states import MerchantStatus
from openepay.protocols import DIALECT_NAMES
from openepay.protocols.epay_v2.platform_key import forget_loaded
from tests.support.answers import page_message
from tests.support.endpoints import ENDPOINTS, SHOP, WRONG_KEY, Caller, Endpoint, from_address
from tests.support.epay import order_params, signed
from tests.support.epay_v2 import V2Merchant
from tests.support.gateways import own_server
from tests.support.servers import ServerThread


@pytest.fixture(autouse=True)
def _fresh_platform_key() -> Iterator[None]:
    """Tables are emptied between tests: the V2 key pair this process loaded must be read again."""
    forget_loaded()
    yield
    forget_loaded()


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    """The merchant's own RSA key and a forger's."""
    return tuple(rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))  # type: ignore[return-value]


@pytest_asyncio.fixture
async def caller(gateway, merchant, rsa_keys) -> Caller:  # type: ignore[no-untyped-def]
    """The ``merchant`` fixture, its RSA public key registered for epay V2."""
    v2 = V2Merchant(merchant.pid, merchant.key, rsa_keys[0])
    await gateway.merchants.update(merchant.pid, rsa_public_key=v2.public_pem)
    return Caller(merchant.pid, merchant.key, v2)


@pytest.fixture
def forged(caller, rsa_keys) -> Caller:  # type: ignore[no-untyped-def]
    """The same requests, signed by someone without the merchant's keys."""
    return caller.spoiled(V2Merchant(caller.pid, WRONG_KEY, rsa_keys[1]))


@asynccontextmanager
async def gateway_client(database_url: str, pid: int, **settings: object) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app on its own server, the merchant ``pid`` also served at V免签's root paths."""
    with own_server(database_url, vmq_default_pid=pid, **settings) as thread:
        async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:
            yield client


async def answers(client: httpx.AsyncClient, caller: Caller, endpoints: list[Endpoint], address: str | None = None):  # type: ignore[no-untyped-def]
    headers = from_address(address) if address else {}
    return {endpoint.name: endpoint.read(await endpoint.send(client, caller, headers)) for endpoint in endpoints}


def gate_refusals(found: dict, endpoints: list[Endpoint]) -> dict:  # type: ignore[type-arg]
    """The answers among ``found`` that are one of the gate's refusals (none, for a merchant let in)."""
    by_name = {endpoint.name: endpoint for endpoint in endpoints}
    return {name: answer for name, answer in found.items() if answer in by_name[name].refusals.values()}


def expected(endpoints: list[Endpoint], refusal: str) -> dict:  # type: ignore[type-arg]
    return {endpoint.name: endpoint.refusals[refusal] for endpoint in endpoints}


async def test_a_disabled_merchant_is_refused_on_every_endpoint(gateway, database_url, caller):
    async with gateway_client(database_url, caller.pid) as client:
        assert gate_refusals(await answers(client, caller, ENDPOINTS), ENDPOINTS) == {}
        await gateway.merchants.set_status(caller.pid, MerchantStatus.DISABLED)
        assert await answers(client, caller, ENDPOINTS) == expected(ENDPOINTS, "disabled")
        await gateway.merchants.set_status(caller.pid, MerchantStatus.ACTIVE)
        assert gate_refusals(await answers(client, caller, ENDPOINTS), ENDPOINTS) == {}


async def test_requests_in_a_dialect_the_merchant_does_not_use_are_refused_in_that_dialects_words(
    gateway, database_url, caller
):
    async with gateway_client(database_url, caller.pid) as client:
        for dialect in DIALECT_NAMES:
            own = [endpoint for endpoint in ENDPOINTS if endpoint.dialect == dialect]
            await gateway.merchants.update(caller.pid, dialects=[name for name in DIALECT_NAMES if name != dialect])
            assert await answers(client, caller, own) == expected(own, "not_enabled"), dialect
            await gateway.merchants.update(caller.pid, dialects=[dialect])
            assert gate_refusals(await answers(client, caller, ENDPOINTS), ENDPOINTS) == expected(
                [endpoint for endpoint in ENDPOINTS if endpoint.dialect != dialect], "not_enabled"
            ), dialect
        await gateway.merchants.update(caller.pid, dialects=None)
        assert gate_refusals(await answers(client, caller, ENDPOINTS), ENDPOINTS) == {}


async def test_an_address_that_keeps_failing_signatures_is_locked_out_of_every_signed_endpoint(
    gateway, database_url, caller, forged
):
    signed_endpoints = [endpoint for endpoint in ENDPOINTS if endpoint.signed]
    unsigned_endpoints = [endpoint for endpoint in ENDPOINTS if not endpoint.signed]
    async with gateway_client(database_url, caller.pid, auth_failures_per_ip=2) as client:
        for index, endpoint in enumerate(signed_endpoints, start=1):
            attacker, neighbour = f"198.51.100.{index}", f"203.0.113.{index}"
            failures = [await answers(client, forged, [endpoint], attacker) for _ in range(2)]
            assert all(gate_refusals(failed, [endpoint]) == {} for failed in failures), failures
            assert await answers(client, caller, [endpoint], attacker) == expected([endpoint], "locked_out")
            # Only that address: the merchant and everyone else carry on.
            assert gate_refusals(await answers(client, caller, [endpoint], neighbour), [endpoint]) == {}
            # Endpoints that check no key have nothing to lock.
            assert gate_refusals(await answers(client, caller, unsigned_endpoints, attacker), unsigned_endpoints) == {}


async def test_a_merchant_under_attack_still_hears_its_own_server(gateway, database_url, caller, forged):
    """Strangers' bad signatures lock the merchant, but not the address that has been signing correctly."""
    [mapi] = [endpoint for endpoint in ENDPOINTS if endpoint.name == "/mapi.php"]
    shop, newcomer = "192.0.2.10", "192.0.2.20"
    async with gateway_client(database_url, caller.pid, auth_failures_per_merchant=3) as client:
        assert (await answers(client, caller, [mapi], shop))["/mapi.php"][0] == 1
        for stranger in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
            assert gate_refusals(await answers(client, forged, [mapi], stranger), [mapi]) == {}
        assert await answers(client, caller, [mapi], newcomer) == expected([mapi], "locked_out")
        assert await answers(client, forged, [mapi], "198.51.100.4") == expected([mapi], "locked_out")
        assert (await answers(client, caller, [mapi], shop))["/mapi.php"][0] == 1


def statements_of(thread: ServerThread) -> list[str]:
    """Every SQL statement the server's app sends from now on, on any of its engines."""
    sent: list[str] = []
    for engine in thread.server.config.app.state.gateway.db.engines:
        event.listen(engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: sent.append(statement))
    return sent


async def test_a_locked_out_caller_is_refused_without_a_database_query(gateway, database_url, caller, forged):
    [mapi] = [endpoint for endpoint in ENDPOINTS if endpoint.name == "/mapi.php"]
    # No background sync during the test: every statement counted is one the request made.
    quiet = {"auth_failures_per_ip": 2, "auth_failures_per_merchant": 4, "auth_failure_sync_interval": 3600}
    with own_server(database_url, **quiet) as thread:
        async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:
            sent = statements_of(thread)
            for attacker in ("198.51.100.1", "198.51.100.1", "198.51.100.2", "198.51.100.2"):
                await answers(client, forged, [mapi], attacker)
            assert sent, "a signature that was checked read the merchant"
            sent.clear()
            assert await answers(client, forged, [mapi], "198.51.100.1") == expected([mapi], "locked_out")
            assert sent == []
            # The merchant is locked out too (four failures): a stranger is refused just as cheaply.
            assert await answers(client, caller, [mapi], "198.51.100.3") == expected([mapi], "locked_out")
            assert sent == []


def v2_md5_link(caller: Caller) -> dict[str, str]:
    """An epay V2 ``pay/submit`` link signed the MD5 way: every field, ``timestamp`` included, V1's rule."""
    fields = order_params(caller.pid, SHOP, f"X-{time.time_ns()}")
    return signed({**fields, "timestamp": str(int(time.time()))}, caller.key)


async def test_a_v2_only_merchants_md5_link_is_not_taken_by_submit_php(server, gateway, caller):
    """V2's MD5 rule is V1's: the same link is a valid ``submit.php`` request, notified in V1 format, unless
    the merchant uses only V2."""
    async with server.client() as client:
        taken = await client.post("/submit.php", data=v2_md5_link(caller))
        assert taken.status_code == 302 and taken.headers["location"].startswith("/cashier/")
        await gateway.merchants.update(caller.pid, dialects=["epay_v2"])
        refused = await client.post("/submit.php", data=v2_md5_link(caller))
        assert page_message(refused) == "商户未开通易支付V1接口"
        accepted = await client.post("/api/pay/submit", data=v2_md5_link(caller))
        assert accepted.status_code == 302 and accepted.headers["location"].startswith("/cashier/")


async def test_a_v1_only_merchants_request_cannot_be_replayed_in_the_pay_dialect(server, gateway, caller):
    """``/pay/`` shares V1's signature rule: a shop's ``mapi.php`` request sent to ``/pay/mapi.php`` makes an
    order notified in the ``/pay/`` format, unless the merchant uses only V1."""

    def shop_request() -> dict[str, str]:
        fields = order_params(caller.pid, SHOP, f"X-{time.time_ns()}", type="wxpay", clientip="203.0.113.9")
        return signed(fields, caller.key)

    async with server.client() as client:
        assert (await client.post("/pay/mapi.php", data=shop_request())).json()["code"] == 200
        await gateway.merchants.update(caller.pid, dialects=["epay"])
        assert (await client.post("/pay/mapi.php", data=shop_request())).json() == {
            "code": 800,
            "msg": "Invalid merchant or secret key, please check",
        }
        assert (await client.post("/mapi.php", data=shop_request())).json()["code"] == 1
