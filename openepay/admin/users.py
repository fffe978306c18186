"""Console users: creation, sign-in checks with lockout, and their TOTP secrets (sealed at rest).

``Accounts`` is the part the merchant portal shares (``openepay.portal.users``): passwords,
lockout by name and by address, TOTP. Each kind of account has its own three tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from openepay.admin import audit, totp
from openepay.admin.passwords import hash_password, verify_password
from openepay.admin.roles import Role
from openepay.db import Database
from openepay.db.models import AdminLoginAttempt, AdminSession, AdminUser
from openepay.db.types import utcnow
from openepay.secretbox import SecretBox

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
# Sign-in attempts deleted per statement, and statements per sweep: a flood of guesses is worked
# off over a few sweeps, never in one transaction that holds the table.
PRUNE_BATCH = 2000
PRUNE_BATCHES_PER_SWEEP = 10


class UserError(ValueError):
    """A user that cannot be made or changed as asked; the message says why."""


class SignIn(StrEnum):
    OK = "ok"
    WRONG = "wrong"  # wrong username or password: the two are never told apart
    LOCKED = "locked"  # this account, or this address, failed too often lately


@dataclass(frozen=True)
class LoginPolicy:
    per_user: int
    per_ip: int
    lock: timedelta


class Accounts:
    """Signing in to one kind of account: the tables and names below say which."""

    users: ClassVar[type[Any]] = AdminUser
    attempts: ClassVar[type[Any]] = AdminLoginAttempt
    # The TOTP secret is sealed for "<kind>-totp:<id>", and the audit log names "<target>:<username>".
    kind: ClassVar[str] = "admin"
    target: ClassVar[str] = "user"

    def __init__(self, db: Database, box: SecretBox, policy: LoginPolicy) -> None:
        self.db = db
        self.box = box
        self.policy = policy

    def _totp_context(self, user_id: int) -> str:
        return f"{self.kind}-totp:{user_id}"

    async def get(self, user_id: int) -> Any:
        async with self.db.session() as session:
            return await session.get(self.users, user_id)

    async def sign_in(self, username: str, password: str, address: str) -> tuple[SignIn, Any]:
        """Check a password. Too many failures for the name or from the address lock it out first,
        without looking at the password, so a locked account cannot be guessed at."""
        username, address = username[:64], address[:64]
        async with self.db.session() as session:
            user = await session.scalar(select(self.users).where(self.users.username == username))
        if await self.locked(username, address):
            outcome = SignIn.LOCKED
        elif verify_password(user.password_hash if user else None, password) and user and not user.disabled:
            outcome = SignIn.OK
        else:
            outcome = SignIn.WRONG
        # A password is a whole sign-in only without TOTP; otherwise the code's success is recorded
        # (a right password must not wipe the count of wrong codes before it).
        if outcome is not SignIn.OK or (user is not None and user.totp_sealed is None):
            await self._remember(username, address, outcome is SignIn.OK)
        return outcome, user if outcome is SignIn.OK else None

    async def locked(self, username: str, address: str) -> bool:
        """Whether the name has failed ``per_user`` times since its last success, or the address
        ``per_ip`` times, within the lock time. Counted by the name typed: a name that has no
        account is locked like one that has, so the lock tells nobody which names exist."""
        since = utcnow() - self.policy.lock
        failed = self.attempts.succeeded.is_(False)
        async with self.db.session() as session:
            from_address = await session.scalar(
                select(func.count())
                .select_from(self.attempts)
                .where(self.attempts.address == address, self.attempts.at > since, failed)
            )
            last_success = await session.scalar(
                select(func.max(self.attempts.at)).where(
                    self.attempts.username == username, self.attempts.succeeded.is_(True)
                )
            )
            for_name = await session.scalar(
                select(func.count())
                .select_from(self.attempts)
                .where(
                    self.attempts.username == username,
                    self.attempts.at > max(since, last_success or since),
                    failed,
                )
            )
        return (from_address or 0) >= self.policy.per_ip or (for_name or 0) >= self.policy.per_user

    async def _remember(self, username: str, address: str, succeeded: bool) -> None:
        async with self.db.session() as session:
            session.add(self.attempts(at=utcnow(), address=address, username=username, succeeded=succeeded))

    # --- TOTP ------------------------------------------------------------------------------

    def totp_secret(self, user: Any) -> str | None:
        return self.box.open(user.totp_sealed, self._totp_context(user.id)) if user.totp_sealed else None

    async def check_totp(self, user: Any, code: str) -> bool:
        """Whether ``code`` is the user's current code, used for the first time (a code works once)."""
        secret = self.totp_secret(user)
        if secret is None:
            return False
        step = totp.matching_step(secret, code, after=user.totp_last_step)
        if step is None:
            return False
        async with self.db.session() as session:
            taken = await session.scalar(
                update(self.users)
                .where(
                    self.users.id == user.id,
                    (self.users.totp_last_step.is_(None)) | (self.users.totp_last_step < step),
                )
                .values(totp_last_step=step)
                .returning(self.users.id)
            )
        return taken is not None

    async def second_factor(self, user: Any, code: str, address: str) -> bool:
        """The TOTP step of a sign-in: wrong codes count against the name like wrong passwords."""
        if user.disabled or await self.locked(user.username, address[:64]):
            return False
        passed = await self.check_totp(user, code)
        await self._remember(user.username, address[:64], passed)
        return passed

    async def enable_totp(self, user: Any, secret: str, code: str, actor: audit.Actor) -> bool:
        """Store ``secret`` once the user proved their app makes its codes."""
        step = totp.matching_step(secret, code)
        if step is None:
            return False
        async with self.db.session() as session:
            await session.execute(
                update(self.users)
                .where(self.users.id == user.id)
                .values(totp_sealed=self.box.seal(secret, self._totp_context(user.id)), totp_last_step=step)
            )
            audit.add(session, actor, "user.totp_enable", f"{self.target}:{user.username}")
        return True


class AdminUsers(Accounts):
    """Console users, with a role each."""

    async def create(self, username: str, password: str, role: Role, actor: audit.Actor) -> AdminUser:
        if not USERNAME.match(username):
            raise UserError("a username is 1 to 64 letters, digits and _ . @ -")
        user = AdminUser(
            username=username,
            password_hash=hash_password(password),
            role=role,
            disabled=False,
            created_at=utcnow(),
        )
        try:
            async with self.db.session() as session:
                session.add(user)
                await session.flush()
                audit.add(session, actor, "user.create", f"user:{username}", after={"role": str(role)})
        except IntegrityError as exc:
            if "username" not in str(exc.orig):
                raise
            raise UserError(f"there is already a user {username!r}") from None
        return user

    async def list(self) -> list[AdminUser]:
        async with self.db.reading() as session:
            return list((await session.scalars(select(AdminUser).order_by(AdminUser.username))).all())

    # --- an administrator's changes ----------------------------------------------------------

    async def set_disabled(self, user_id: int, disabled: bool, actor: audit.Actor) -> AdminUser | None:
        """Disable (every session ends with it) or enable a user; None if there is no such user."""
        async with self.db.session() as session:
            user = await session.get(AdminUser, user_id)
            if user is None:
                return None
            before = {"disabled": user.disabled}
            user.disabled = disabled
            if disabled:
                await session.execute(delete(AdminSession).where(AdminSession.user_id == user_id))
            action = "user.disable" if disabled else "user.enable"
            audit.add(session, actor, action, f"user:{user.username}", before=before, after={"disabled": disabled})
        return user

    async def reset_totp(self, user_id: int, actor: audit.Actor) -> AdminUser | None:
        """Forget a user's TOTP secret (a lost phone): they set it up again at their next sign-in if required."""
        async with self.db.session() as session:
            user = await session.get(AdminUser, user_id)
            if user is None:
                return None
            had = user.totp_sealed is not None
            user.totp_sealed = None
            user.totp_last_step = None
            audit.add(
                session, actor, "user.totp_reset", f"user:{user.username}", before={"totp": had}, after={"totp": False}
            )
        return user


async def prune_login_attempts(
    db: Database,
    *,
    older_than: datetime,
    batch: int = PRUNE_BATCH,
    batches: int = PRUNE_BATCHES_PER_SWEEP,
    table: type[Any] = AdminLoginAttempt,
) -> int:
    """Delete sign-in attempts from before ``older_than`` (the lock window's start), ``batch`` rows at a time.

    ``AdminUsers.locked`` counts only attempts within the lock window (a success older than the
    window moves its start no later), so nothing older changes any sign-in decision. Returns how
    many were deleted; at most ``batch * batches`` per call, the rest go at the next sweep.
    ``table`` is the console's attempts, or the merchant portal's (``MerchantLoginAttempt``).
    """
    deleted = 0
    for _ in range(batches):
        old = select(table.id).where(table.at < older_than).limit(batch)
        async with db.session() as session:
            count = (await session.execute(delete(table).where(table.id.in_(old)))).rowcount
        deleted += count or 0
        if (count or 0) < batch:
            break
    return deleted
