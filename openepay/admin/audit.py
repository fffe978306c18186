"""The audit log: every write through the console (or ``openepay admin``), who made it, before and after."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from openepay.db import Database
from openepay.db.models import AuditEntry
from openepay.db.types import utcnow


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a console user from an address, or the command line."""

    name: str
    address: str | None = None


def _os_user() -> str:
    try:
        return getpass.getuser()
    except OSError:
        # A container user with no name in /etc/passwd.
        return f"uid{os.getuid()}"


# The command line, as ``cli:<OS user>``: who ran the command on the server, with no address.
CLI = Actor(f"cli:{_os_user()}")


def add(
    session: AsyncSession,
    actor: Actor,
    action: str,
    target: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Record a change inside the caller's transaction, so the log and the change commit together."""
    session.add(
        AuditEntry(
            at=utcnow(),
            actor=actor.name[:64],
            address=actor.address[:64] if actor.address else None,
            action=action[:32],
            target=target[:96],
            trade_no=target.removeprefix("order:")[:32] if target.startswith("order:") else None,
            before=before,
            after=after,
            reason=reason or "",
            details={},
        )
    )


async def record(db: Database, actor: Actor, action: str, target: str, **details: Any) -> None:
    """Record a change made by a function that commits on its own (merchant creation, a resend)."""
    async with db.session() as session:
        add(session, actor, action, target, **details)
