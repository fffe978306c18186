"""Sign-in sessions: server-side rows, so one can be ended, or all of a user's at once.

The browser holds a random token; the table holds its SHA-256. Each session has its own CSRF
token, which every form carries and every POST must send back. The operator console keeps them
in ``admin_sessions``, the merchant portal in ``merchant_sessions``: the same code, two tables.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update

from openepay.db import Database
from openepay.db.models import AdminSession, AdminUser
from openepay.db.types import utcnow

SIGNED_IN = "ok"
OWES_TOTP = "totp"
MUST_ENROLL = "enroll"
# last_seen_at is written at most this often, not on every page.
TOUCH_EVERY = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Current:
    """The session a request came with and its user."""

    token_hash: str
    stage: str
    csrf_token: str
    # An ``AdminUser`` in the console, a ``MerchantUser`` in the merchant portal.
    user: Any


class Sessions:
    def __init__(
        self, db: Database, lifetime: timedelta, table: type[Any] = AdminSession, users: type[Any] = AdminUser
    ) -> None:
        self.db = db
        self.lifetime = lifetime
        self.table = table
        self.users = users

    async def start(self, user: Any, stage: str, address: str) -> str:
        """A new session (a fresh token, so one planted before sign-in is worth nothing); returns the token."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        async with self.db.session() as session:
            # Sessions that ran out are swept as new ones start (the index on expires_at finds them).
            await session.execute(delete(self.table).where(self.table.expires_at <= now))
            session.add(
                self.table(
                    token_hash=_digest(token),
                    user_id=user.id,
                    stage=stage,
                    csrf_token=secrets.token_urlsafe(32),
                    address=address[:64],
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self.lifetime,
                )
            )
        return token

    async def find(self, token: str | None) -> Current | None:
        if not token:
            return None
        now = utcnow()
        async with self.db.session() as session:
            row = (
                await session.execute(
                    select(self.table, self.users)
                    .join(self.users, self.users.id == self.table.user_id)
                    .where(self.table.token_hash == _digest(token), self.table.expires_at > now)
                )
            ).first()
            if row is None:
                return None
            found, user = row
            if user.disabled:
                return None
            if now - found.last_seen_at > TOUCH_EVERY:
                await session.execute(
                    update(self.table).where(self.table.token_hash == found.token_hash).values(last_seen_at=now)
                )
        return Current(found.token_hash, found.stage, found.csrf_token, user)

    async def promote(self, current: Current) -> str:
        """The second factor is done: the session is replaced by a signed-in one (a new token)."""
        token = secrets.token_urlsafe(32)
        async with self.db.session() as session:
            await session.execute(
                update(self.table)
                .where(self.table.token_hash == current.token_hash)
                .values(token_hash=_digest(token), stage=SIGNED_IN, csrf_token=secrets.token_urlsafe(32))
            )
        return token

    async def end(self, token_hash: str) -> None:
        async with self.db.session() as session:
            await session.execute(delete(self.table).where(self.table.token_hash == token_hash))

    async def end_all(self, user_id: int) -> int:
        """Log the user out everywhere; returns how many sessions ended."""
        async with self.db.session() as session:
            result = await session.execute(delete(self.table).where(self.table.user_id == user_id))
        return result.rowcount or 0
