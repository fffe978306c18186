"""Console sessions: server-side rows, so one can be ended, or all of a user's at once.

The browser holds a random token; the table holds its SHA-256. Each session has its own CSRF
token, which every form carries and every POST must send back.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

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
    user: AdminUser


class Sessions:
    def __init__(self, db: Database, lifetime: timedelta) -> None:
        self.db = db
        self.lifetime = lifetime

    async def start(self, user: AdminUser, stage: str, address: str) -> str:
        """A new session (a fresh token, so one planted before sign-in is worth nothing); returns the token."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        async with self.db.session() as session:
            # Sessions that ran out are swept as new ones start (the index on expires_at finds them).
            await session.execute(delete(AdminSession).where(AdminSession.expires_at <= now))
            session.add(
                AdminSession(
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
                    select(AdminSession, AdminUser)
                    .join(AdminUser, AdminUser.id == AdminSession.user_id)
                    .where(AdminSession.token_hash == _digest(token), AdminSession.expires_at > now)
                )
            ).first()
            if row is None:
                return None
            found, user = row
            if user.disabled:
                return None
            if now - found.last_seen_at > TOUCH_EVERY:
                await session.execute(
                    update(AdminSession).where(AdminSession.token_hash == found.token_hash).values(last_seen_at=now)
                )
        return Current(found.token_hash, found.stage, found.csrf_token, user)

    async def promote(self, current: Current) -> str:
        """The second factor is done: the session is replaced by a signed-in one (a new token)."""
        token = secrets.token_urlsafe(32)
        async with self.db.session() as session:
            await session.execute(
                update(AdminSession)
                .where(AdminSession.token_hash == current.token_hash)
                .values(token_hash=_digest(token), stage=SIGNED_IN, csrf_token=secrets.token_urlsafe(32))
            )
        return token

    async def end(self, token_hash: str) -> None:
        async with self.db.session() as session:
            await session.execute(delete(AdminSession).where(AdminSession.token_hash == token_hash))

    async def end_all(self, user_id: int) -> int:
        """Log the user out everywhere; returns how many sessions ended."""
        async with self.db.session() as session:
            result = await session.execute(delete(AdminSession).where(AdminSession.user_id == user_id))
        return result.rowcount or 0
