"""Writes to the personal-code pool (accounts, codes, phones), each written to the audit log.

The console and ``openepay qrpool`` both call these, so a change made either way is the same
change, checked by ``openepay.channels.qrpool.accounts`` and logged with before and after.
A phone's key is never written to the log: only that the phone exists or was revoked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from openepay.admin import audit
from openepay.channels.qrpool import accounts as qr
from openepay.core.money import format_yuan
from openepay.db.models import QrAccount, QrCode, QrDevice
from openepay.db.types import utcnow

if TYPE_CHECKING:
    # Only for annotations: ``openepay qrpool`` imports this module and must start quickly.
    from openepay.gateway import Gateway


def account_target(account_id: int) -> str:
    return f"qrpool-account:{account_id}"


def device_target(device_id: int) -> str:
    return f"qrpool-device:{device_id}"


def code_facts(code: QrCode) -> dict[str, object]:
    return {
        "code": code.id,
        "amount": "generic" if code.amount_fen is None else format_yuan(code.amount_fen),
        "content": code.content,
    }


async def add_account(gateway: Gateway, name: str, pay_type: str, actor: audit.Actor) -> QrAccount:
    account = await qr.create_account(gateway.db, name, pay_type)
    after = {"name": account.name, "pay_type": account.pay_type, "enabled": True}
    await audit.record(gateway.db, actor, "qrpool.account_add", account_target(account.id), after=after)
    return account


async def set_account_enabled(gateway: Gateway, account_id: int, enabled: bool, actor: audit.Actor) -> QrAccount:
    before = await qr.find_account(gateway.db, str(account_id))
    await qr.set_account_enabled(gateway.db, account_id, enabled)
    await audit.record(
        gateway.db,
        actor,
        f"qrpool.account_{'enable' if enabled else 'disable'}",
        account_target(account_id),
        before={"enabled": before.enabled},
        after={"enabled": enabled},
    )
    return before


async def add_code(
    gateway: Gateway, account_id: int, content: str, amount_fen: int | None, actor: audit.Actor
) -> QrCode:
    code = await qr.add_code(gateway.db, account_id, content, amount_fen)
    await audit.record(gateway.db, actor, "qrpool.code_add", account_target(account_id), after=code_facts(code))
    return code


async def delete_code(gateway: Gateway, account_id: int, code_id: int, actor: audit.Actor) -> QrCode:
    code = await qr.delete_code(gateway.db, account_id, code_id)
    await audit.record(gateway.db, actor, "qrpool.code_delete", account_target(account_id), before=code_facts(code))
    return code


async def add_device(gateway: Gateway, account_id: int, name: str, actor: audit.Actor) -> tuple[QrDevice, str]:
    """A new phone and its key; the key goes back to the caller to show once, never to the log."""
    device, key = await qr.add_device(gateway.db, gateway.box, account_id, name)
    after = {"account": account_id, "name": device.name, "enabled": True}
    await audit.record(gateway.db, actor, "qrpool.device_add", device_target(device.id), after=after)
    return device, key


async def revoke_device(gateway: Gateway, device_id: int, actor: audit.Actor) -> QrDevice:
    """Disable a phone: its key stops working at once (a lost or replaced phone)."""
    device = await qr.find_device(gateway.db, device_id)
    await qr.set_device_enabled(gateway.db, device_id, False)
    await audit.record(
        gateway.db,
        actor,
        "qrpool.device_revoke",
        device_target(device_id),
        before={"enabled": device.enabled},
        after={"enabled": False},
    )
    return device


@dataclass(frozen=True)
class PhoneView:
    device: QrDevice
    account: QrAccount
    online: bool
    # Seconds since the last heartbeat; None if it never sent one.
    silent_for: int | None


async def phones(gateway: Gateway, account_id: int | None = None, now: datetime | None = None) -> list[PhoneView]:
    """Phones with whether each is online, by the rule routing uses (``accounts.is_live``)."""
    now = now or utcnow()
    timeout = timedelta(seconds=gateway.settings.qrpool_heartbeat_timeout)
    by_id = {account.id: account for account in await qr.list_accounts(gateway.db)}
    return [
        PhoneView(
            device,
            by_id[device.account_id],
            qr.is_live(device, timeout, now),
            int((now - device.last_heartbeat_at).total_seconds()) if device.last_heartbeat_at else None,
        )
        for device in await qr.list_devices(gateway.db, account_id)
    ]
