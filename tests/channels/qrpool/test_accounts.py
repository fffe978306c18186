"""Receiving accounts, codes and devices: what may be stored, device keys, and which accounts are live."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from openepay.channels.qrpool import accounts
from openepay.channels.qrpool.accounts import QrPoolError
from openepay.db.models import QrDevice
from openepay.db.types import utcnow
from tests.support.database import merchant_with_key
from tests.support.qrpool import receiving_account

LIVE = timedelta(seconds=90)


async def test_accounts_by_name_or_number(gateway):
    account = await accounts.create_account(gateway.db, "wx-main", "wxpay")
    assert (account.name, account.pay_type, account.enabled) == ("wx-main", "wxpay", True)
    assert (await accounts.find_account(gateway.db, "wx-main")).id == account.id
    assert (await accounts.find_account(gateway.db, str(account.id))).name == "wx-main"
    with pytest.raises(QrPoolError, match="already exists"):
        await accounts.create_account(gateway.db, "wx-main", "alipay")
    with pytest.raises(QrPoolError, match="pay type must be one of wxpay, alipay, qqpay"):
        await accounts.create_account(gateway.db, "bank", "bank")
    with pytest.raises(QrPoolError, match="no receiving account 'nope'"):
        await accounts.find_account(gateway.db, "nope")
    await accounts.set_account_enabled(gateway.db, account.id, False)
    assert not (await accounts.find_account(gateway.db, "wx-main")).enabled
    with pytest.raises(QrPoolError):
        await accounts.set_account_enabled(gateway.db, account.id + 100, False)


async def test_one_generic_code_and_one_code_per_amount(gateway):
    account = await accounts.create_account(gateway.db, "wx-main", "wxpay")
    await accounts.add_code(gateway.db, account.id, "wxp://generic", None)
    await accounts.add_code(gateway.db, account.id, "wxp://f990", 990)
    await accounts.add_code(gateway.db, account.id, "wxp://f100", 100)
    with pytest.raises(QrPoolError, match="already has a generic code"):
        await accounts.add_code(gateway.db, account.id, "wxp://other", None)
    with pytest.raises(QrPoolError, match="already has a code for 9.90"):
        await accounts.add_code(gateway.db, account.id, "wxp://other", 990)
    for content, amount in (("", None), ("  ", None), ("a\x00b", None), ("wxp://zero", 0), ("wxp://neg", -1)):
        with pytest.raises(QrPoolError):
            await accounts.add_code(gateway.db, account.id, content, amount)
    with pytest.raises(QrPoolError, match="no receiving account"):
        await accounts.add_code(gateway.db, account.id + 100, "wxp://x", None)
    codes = await accounts.list_codes(gateway.db, account.id)
    assert [(code.amount_fen, code.content) for code in codes] == [
        (None, "wxp://generic"),
        (100, "wxp://f100"),
        (990, "wxp://f990"),
    ]


async def test_device_keys_are_new_hex_sealed_and_unlike_any_other_key(gateway, monkeypatch):
    account = await accounts.create_account(gateway.db, "wx-main", "wxpay")
    device, key = await accounts.add_device(gateway.db, gateway.box, account.id, "phone")
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    async with gateway.db.session() as session:
        stored = await session.get(QrDevice, device.id)
    assert key not in stored.key_sealed and stored.key_sealed.startswith("v1:")

    merchant_key = "0123456789abcdef0123456789abcdef"
    await merchant_with_key(gateway, 1001, merchant_key)
    drawn = iter([merchant_key, key, "fedcba9876543210fedcba9876543210"])
    monkeypatch.setattr(accounts.secrets, "token_hex", lambda _n: next(drawn))
    _second, second_key = await accounts.add_device(gateway.db, gateway.box, account.id, "spare")
    monkeypatch.undo()
    assert second_key == "fedcba9876543210fedcba9876543210"

    assert [(d.name, k) for d, k in await accounts.device_keys(gateway.db, gateway.box)] == [
        ("phone", key),
        ("spare", second_key),
    ]
    await accounts.set_device_enabled(gateway.db, device.id, False)
    assert [k for _, k in await accounts.device_keys(gateway.db, gateway.box, account.id)] == [second_key]
    with pytest.raises(QrPoolError, match="no receiving account"):
        await accounts.add_device(gateway.db, gateway.box, account.id + 100, "phone")


async def test_heartbeats_only_move_forward(gateway):
    account = await accounts.create_account(gateway.db, "wx-main", "wxpay")
    device, _ = await accounts.add_device(gateway.db, gateway.box, account.id, "phone")
    now = utcnow()
    await accounts.record_heartbeat(gateway.db, device.id, now)
    await accounts.record_heartbeat(gateway.db, device.id, now - timedelta(seconds=30))
    [stored] = await accounts.list_devices(gateway.db, account.id)
    assert stored.last_heartbeat_at == now


async def test_live_accounts_have_a_phone_heard_from_within_the_timeout(gateway):
    live = await receiving_account(gateway, "wx-live")
    await receiving_account(gateway, "wx-silent", live=False)
    await receiving_account(gateway, "ali-live", "alipay")
    stale = await receiving_account(gateway, "wx-stale", live=False)
    [stale_device] = await accounts.list_devices(gateway.db, stale.id)
    await accounts.record_heartbeat(gateway.db, stale_device.id, utcnow() - timedelta(seconds=91))
    off = await receiving_account(gateway, "wx-off")
    await accounts.set_account_enabled(gateway.db, off.id, False)
    later = await receiving_account(gateway, "wx-later")

    assert [a.name for a in await accounts.live_accounts(gateway.db, "wxpay", LIVE)] == ["wx-live", "wx-later"]
    assert [a.name for a in await accounts.live_accounts(gateway.db, "alipay", LIVE)] == ["ali-live"]
    assert [a.name for a in await accounts.live_accounts(gateway.db, "wxpay", timedelta(seconds=120))] == [
        "wx-live",
        "wx-stale",
        "wx-later",
    ]
    # A second, silent phone does not make a live account less live; a disabled one does not make it live.
    await accounts.add_device(gateway.db, gateway.box, live.id, "silent")
    [later_device] = await accounts.list_devices(gateway.db, later.id)
    await accounts.set_device_enabled(gateway.db, later_device.id, False)
    assert [a.name for a in await accounts.live_accounts(gateway.db, "wxpay", LIVE)] == ["wx-live"]
    async with gateway.db.session() as session:
        devices = (await session.scalars(select(QrDevice).order_by(QrDevice.id))).all()
    assert [accounts.is_live(d, LIVE, utcnow()) for d in devices] == [True, False, True, False, True, False, False]


@pytest.mark.parametrize(
    ("public_url", "override", "host"),
    [
        ("https://pay.example.com", None, "pay.example.com"),
        ("http://pay.example.com:8080/", None, "pay.example.com:8080"),
        ("https://pay.example.com/epay", "monitor.example.com", "monitor.example.com"),
        (None, "http://10.0.0.5:8000", "10.0.0.5:8000"),
    ],
)
def test_the_pairing_host(public_url, override, host):
    assert accounts.pairing_host(public_url, override) == host
    assert accounts.pairing_string(host, "k" * 32) == f"{host}/{'k' * 32}"


@pytest.mark.parametrize(
    ("public_url", "override", "complaint"),
    [
        (None, None, "OPENEPAY_PUBLIC_URL is not set"),
        ("https://example.com/pay", None, "OPENEPAY_PUBLIC_URL (https://example.com/pay) has a path"),
        ("https://pay.example.com", "pay.example.com/sub", "--host (pay.example.com/sub) has a path"),
        ("https://pay.example.com", "https://user:pw@pay.example.com", "does not name a host"),
    ],
)
def test_a_pairing_host_the_app_cannot_use_is_refused(public_url, override, complaint):
    with pytest.raises(QrPoolError) as refusal:
        accounts.pairing_host(public_url, override)
    assert complaint in refusal.value.message
