"""What an administrator does to merchants in the console (create, change settings, disable, enable,
rotate the key, give a merchant portal sign-in), and what an operator does for their notifications
(resume now); each written to the audit log."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select, update

from openepay.admin import audit
from openepay.admin.merchant_settings import fingerprint
from openepay.core.merchants import MerchantCredentials
from openepay.core.states import MerchantStatus
from openepay.db.models import PENDING_NOTIFICATION, Merchant, MerchantUser, NotifyBreaker, NotifyTask
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from openepay.portal.users import MerchantUsers


@dataclass(frozen=True)
class MerchantView:
    merchant: Merchant
    paused_until: datetime | None
    failures: int


def _with_breakers() -> Select[tuple[Merchant, NotifyBreaker]]:
    return (
        select(Merchant, NotifyBreaker)
        .outerjoin(NotifyBreaker, NotifyBreaker.merchant_pid == Merchant.pid)
        .order_by(Merchant.pid)
    )


async def merchants(gateway: Gateway) -> list[MerchantView]:
    async with gateway.db.session() as session:
        rows = (await session.execute(_with_breakers())).all()
    return [_view(merchant, breaker, utcnow()) for merchant, breaker in rows]


async def merchant(gateway: Gateway, pid: int) -> MerchantView | None:
    async with gateway.db.session() as session:
        row = (await session.execute(_with_breakers().where(Merchant.pid == pid))).first()
    return _view(row[0], row[1], utcnow()) if row else None


def _view(merchant: Merchant, breaker: NotifyBreaker | None, now: datetime) -> MerchantView:
    if breaker is None:
        return MerchantView(merchant, None, 0)
    paused = breaker.open_until if breaker.open_until is not None and breaker.open_until > now else None
    return MerchantView(merchant, paused, breaker.consecutive_failures)


async def create(gateway: Gateway, name: str, refund_enabled: bool, actor: audit.Actor) -> MerchantCredentials:
    credentials = await gateway.merchants.create(name, refund_enabled=refund_enabled)
    await audit.record(
        gateway.db,
        actor,
        "merchant.create",
        f"merchant:{credentials.pid}",
        after={"name": name, "refund_enabled": refund_enabled},
    )
    return credentials


async def set_status(gateway: Gateway, pid: int, status: MerchantStatus, actor: audit.Actor) -> None:
    before = await gateway.merchants.get(pid)
    await gateway.merchants.set_status(pid, status)
    await audit.record(
        gateway.db,
        actor,
        f"merchant.{'enable' if status == MerchantStatus.ACTIVE else 'disable'}",
        f"merchant:{pid}",
        before={"status": before.status},
        after={"status": str(status)},
    )


async def rotate_key(gateway: Gateway, pid: int, actor: audit.Actor) -> MerchantCredentials:
    credentials = await gateway.merchants.rotate_key(pid)
    # The key itself is never written down: only that it changed.
    await audit.record(gateway.db, actor, "merchant.rotate_key", f"merchant:{pid}")
    return credentials


async def portal_logins(users: MerchantUsers, pid: int) -> list[MerchantUser]:
    return await users.of_merchant(pid)


async def add_portal_login(users: MerchantUsers, pid: int, username: str, actor: audit.Actor) -> str:
    """A portal sign-in for the merchant with a one-time password made here, returned to be shown once."""
    password = secrets.token_urlsafe(12)
    await users.create(pid, username, password, actor)
    return password


async def resume_notifications(gateway: Gateway, pid: int, actor: audit.Actor) -> int:
    """Close the merchant's breaker and make its waiting notifications due now; returns how many."""
    now = utcnow()
    async with gateway.db.session() as session:
        breaker = await session.get(NotifyBreaker, pid)
        before = (
            {
                "open_until": breaker.open_until.isoformat() if breaker.open_until else None,
                "failures": breaker.consecutive_failures,
            }
            if breaker
            else None
        )
        await session.execute(
            update(NotifyBreaker)
            .where(NotifyBreaker.merchant_pid == pid)
            .values(open_until=None, consecutive_failures=0, cooldown_seconds=0.0)
        )
        due = await session.execute(
            update(NotifyTask)
            .where(
                NotifyTask.merchant_pid == pid,
                PENDING_NOTIFICATION,
                NotifyTask.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
        )
        count = due.rowcount or 0
        audit.add(session, actor, "merchant.resume_notify", f"merchant:{pid}", before=before, after={"due_now": count})
    return count


def settings_of(merchant: Merchant) -> dict[str, object]:
    """The settings the edit form changes, as the audit log records them (the RSA key by its fingerprint)."""
    return {
        "dialects": merchant.dialects,
        "pay_types": merchant.pay_types,
        "channel_accounts": merchant.channel_accounts,
        "mapi_answer": merchant.mapi_answer,
        "notify_retry_delays": merchant.notify_retry_delays,
        "refund_enabled": merchant.refund_enabled,
        "rsa_public_key": fingerprint(merchant.rsa_public_key) if merchant.rsa_public_key else None,
        "rsa_only": merchant.rsa_only,
    }


async def change_settings(gateway: Gateway, pid: int, values: dict[str, object], actor: audit.Actor) -> None:
    """Store settings read by ``openepay.admin.merchant_settings`` (as ``openepay merchant set`` does), audited."""
    before = await gateway.merchants.get(pid)
    await gateway.merchants.update(pid, **values)
    after = await gateway.merchants.get(pid)
    old, new = settings_of(before), settings_of(after)
    changed = [name for name in new if old[name] != new[name]]
    await audit.record(
        gateway.db,
        actor,
        "merchant.settings",
        f"merchant:{pid}",
        before={name: old[name] for name in changed},
        after={name: new[name] for name in changed},
    )
