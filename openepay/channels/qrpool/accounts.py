"""Receiving accounts, their QR codes and the phones that watch them.

An account is one personal wallet (WeChat Pay, Alipay or QQ wallet) that buyers pay by
scanning its codes: at most one generic code (the payer types the amount) and any number of
codes fixed to one amount. Its phones ("devices") report heartbeats and incoming payments,
each signing with a key of its own. V免签's requests carry no device id, so a request is
recognised by the key that verifies it: device keys are never equal to each other nor to any
merchant key, which would let a merchant, or another phone, speak for a device.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import Exists

from openepay.core.merchants import Merchants
from openepay.core.money import format_yuan
from openepay.db import Database
from openepay.db.models import QrAccount, QrCode, QrDevice
from openepay.db.types import utcnow
from openepay.secretbox import SecretBox

PAY_TYPES = ("wxpay", "alipay", "qqpay")
MAX_NAME = 64
MAX_CODE_CHARS = 2048
DEVICE_KEY_BYTES = 16


class QrPoolError(Exception):
    """An operator's request about accounts, codes or devices that cannot be done; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _device_key_context(device_id: int) -> str:
    return f"qrpool-device-key:{device_id}"


def _check_name(name: str, what: str) -> str:
    if not name.strip() or len(name) > MAX_NAME or "\x00" in name:
        raise QrPoolError(f"a {what} name must be 1 to {MAX_NAME} characters")
    return name


async def create_account(db: Database, name: str, pay_type: str) -> QrAccount:
    _check_name(name, "account")
    if pay_type not in PAY_TYPES:
        raise QrPoolError(f"pay type must be one of {', '.join(PAY_TYPES)}, not {pay_type!r}")
    try:
        async with db.session() as session:
            account = QrAccount(name=name, pay_type=pay_type, enabled=True)
            session.add(account)
    except IntegrityError:
        raise QrPoolError(f"an account named {name!r} already exists") from None
    return account


async def find_account(db: Database, name_or_id: str) -> QrAccount:
    """By name, or by number when no account has that name."""
    async with db.reading() as session:
        account = await session.scalar(select(QrAccount).where(QrAccount.name == name_or_id))
        if account is None and name_or_id.isascii() and name_or_id.isdigit():
            account = await session.get(QrAccount, int(name_or_id))
    if account is None:
        raise QrPoolError(f"no receiving account {name_or_id!r}")
    return account


async def list_accounts(db: Database) -> list[QrAccount]:
    async with db.reading() as session:
        return list((await session.scalars(select(QrAccount).order_by(QrAccount.id))).all())


async def set_account_enabled(db: Database, account_id: int, enabled: bool) -> None:
    async with db.session() as session:
        result = await session.execute(update(QrAccount).where(QrAccount.id == account_id).values(enabled=enabled))
    if result.rowcount == 0:
        raise QrPoolError(f"no receiving account {account_id}")


async def add_code(db: Database, account_id: int, content: str, amount_fen: int | None) -> QrCode:
    """Store a code as its decoded content; ``amount_fen`` None is the account's one generic code."""
    if not content.strip() or "\x00" in content or len(content) > MAX_CODE_CHARS:
        raise QrPoolError(f"the code content must be 1 to {MAX_CODE_CHARS} characters of text")
    if amount_fen is not None and amount_fen <= 0:
        raise QrPoolError("a fixed-amount code needs a positive amount")
    try:
        async with db.session() as session:
            if await session.get(QrAccount, account_id) is None:
                raise QrPoolError(f"no receiving account {account_id}")
            code = QrCode(account_id=account_id, amount_fen=amount_fen, content=content)
            session.add(code)
    except IntegrityError:
        if amount_fen is None:
            raise QrPoolError("the account already has a generic code") from None
        raise QrPoolError(f"the account already has a code for {format_yuan(amount_fen)}") from None
    return code


async def list_codes(db: Database, account_id: int) -> list[QrCode]:
    """The generic code first, then fixed codes by amount."""
    async with db.reading() as session:
        codes = (await session.scalars(select(QrCode).where(QrCode.account_id == account_id))).all()
    return sorted(codes, key=lambda code: (code.amount_fen is not None, code.amount_fen or 0))


async def delete_code(db: Database, account_id: int, code_id: int) -> QrCode:
    """Remove one of the account's codes; orders already shown it keep their amount held until they end."""
    async with db.session() as session:
        code = await session.scalar(select(QrCode).where(QrCode.id == code_id, QrCode.account_id == account_id))
        if code is None:
            raise QrPoolError(f"the account has no code {code_id}")
        await session.execute(delete(QrCode).where(QrCode.id == code_id))
    return code


async def find_device(db: Database, device_id: int) -> QrDevice:
    async with db.reading() as session:
        device = await session.get(QrDevice, device_id)
    if device is None:
        raise QrPoolError(f"no device {device_id}")
    return device


async def _keys_in_use(db: Database, box: SecretBox) -> set[str]:
    merchants = Merchants(db, box)
    keys = {merchants.key_of(merchant) for merchant in await merchants.list()}
    async with db.reading() as session:
        devices = (await session.scalars(select(QrDevice))).all()
    return keys | {box.open(device.key_sealed, _device_key_context(device.id)) for device in devices}


async def add_device(db: Database, box: SecretBox, account_id: int, name: str) -> tuple[QrDevice, str]:
    """A new phone for the account, and its key (32 lowercase hex, as V免签 keys look), shown once."""
    _check_name(name, "device")
    in_use = await _keys_in_use(db, box)
    key = secrets.token_hex(DEVICE_KEY_BYTES)
    while key in in_use:
        key = secrets.token_hex(DEVICE_KEY_BYTES)
    async with db.session() as session:
        if await session.get(QrAccount, account_id) is None:
            raise QrPoolError(f"no receiving account {account_id}")
        device = QrDevice(account_id=account_id, name=name, key_sealed="", enabled=True)
        session.add(device)
        # The sealed key is bound to the row's id, which the database assigns.
        await session.flush()
        device.key_sealed = box.seal(key, _device_key_context(device.id))
    return device, key


async def list_devices(db: Database, account_id: int | None = None) -> list[QrDevice]:
    query = select(QrDevice).order_by(QrDevice.id)
    if account_id is not None:
        query = query.where(QrDevice.account_id == account_id)
    async with db.reading() as session:
        return list((await session.scalars(query)).all())


async def set_device_enabled(db: Database, device_id: int, enabled: bool) -> None:
    """Disabling a device revokes its key at once (a lost or replaced phone)."""
    async with db.session() as session:
        result = await session.execute(update(QrDevice).where(QrDevice.id == device_id).values(enabled=enabled))
    if result.rowcount == 0:
        raise QrPoolError(f"no device {device_id}")


async def device_keys(db: Database, box: SecretBox, account_id: int | None = None) -> list[tuple[QrDevice, str]]:
    """Enabled devices with their keys, to find the one whose key verifies a signature."""
    query = select(QrDevice).where(QrDevice.enabled.is_(True)).order_by(QrDevice.id)
    if account_id is not None:
        query = query.where(QrDevice.account_id == account_id)
    async with db.reading() as session:
        devices = (await session.scalars(query)).all()
    return [(device, box.open(device.key_sealed, _device_key_context(device.id))) for device in devices]


async def record_heartbeat(db: Database, device_id: int, at: datetime) -> None:
    """Move the device's last heartbeat forward (never back: heartbeats may arrive out of order)."""
    async with db.session() as session:
        await session.execute(
            update(QrDevice)
            .where(
                QrDevice.id == device_id,
                (QrDevice.last_heartbeat_at.is_(None)) | (QrDevice.last_heartbeat_at < at),
            )
            .values(last_heartbeat_at=at)
        )


def _has_live_device(heartbeat_timeout: timedelta, now: datetime) -> Exists:
    return exists().where(
        QrDevice.account_id == QrAccount.id,
        QrDevice.enabled.is_(True),
        QrDevice.last_heartbeat_at >= now - heartbeat_timeout,
    )


async def live_accounts(db: Database, pay_type: str, heartbeat_timeout: timedelta) -> list[QrAccount]:
    """Enabled accounts of the pay type with a phone that sent a heartbeat within the timeout, oldest first."""
    query = (
        select(QrAccount)
        .where(
            QrAccount.pay_type == pay_type,
            QrAccount.enabled.is_(True),
            _has_live_device(heartbeat_timeout, utcnow()),
        )
        .order_by(QrAccount.id)
    )
    async with db.reading() as session:
        return list((await session.scalars(query)).all())


def is_live(device: QrDevice, heartbeat_timeout: timedelta, now: datetime) -> bool:
    heartbeat = device.last_heartbeat_at
    return device.enabled and heartbeat is not None and heartbeat >= now - heartbeat_timeout


def pairing_host(public_url: str | None, override: str | None = None) -> str:
    """The ``host[:port]`` the V免签 app is paired with.

    The app splits the pairing string on "/" and always speaks plain ``http://`` to that host,
    so the gateway's monitor endpoints must sit at the root of a host: a public URL with a
    path cannot be paired.
    """
    source = override if override is not None else public_url
    if not source:
        raise QrPoolError("OPENEPAY_PUBLIC_URL is not set: set it, or give the phone's host with --host")
    parts = urlsplit(source if "://" in source else f"http://{source}")
    where = "--host" if override is not None else "OPENEPAY_PUBLIC_URL"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise QrPoolError(
            f"{where} ({source}) has a path: the V免签 app can only reach /appHeart and /appPush at the root "
            "of a host; serve the gateway at the root of a host, or give one with --host"
        )
    if not parts.hostname or parts.username or parts.password:
        raise QrPoolError(f"{where} ({source}) does not name a host")
    return parts.netloc


def pairing_string(host: str, key: str) -> str:
    return f"{host}/{key}"
