"""Merchant portal users: made by the operator for a merchant, or by signing up when the gateway allows it.

Sign-in, lockout and TOTP are the console's own (``openepay.admin.users.Accounts``) on the
portal's tables; a portal user only ever sees the merchant it belongs to.
"""

from __future__ import annotations

import re
from typing import ClassVar

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from openepay.admin import audit
from openepay.admin.passwords import hash_password
from openepay.admin.users import Accounts, UserError
from openepay.core.merchants import MerchantCredentials, MerchantNotFound, Merchants
from openepay.core.states import MerchantStatus
from openepay.db.models import Merchant, MerchantLoginAttempt, MerchantSession, MerchantUser
from openepay.db.types import utcnow

# An e-mail address or a plain name, as the operator chooses.
USERNAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")
MAX_MERCHANT_NAME = 100


class MerchantUsers(Accounts):
    users: ClassVar[type[MerchantUser]] = MerchantUser
    attempts: ClassVar[type[MerchantLoginAttempt]] = MerchantLoginAttempt
    kind: ClassVar[str] = "merchant"
    target: ClassVar[str] = "merchant_user"

    async def create(self, pid: int, username: str, password: str, actor: audit.Actor) -> MerchantUser:
        """A sign-in for merchant ``pid``; the password is checked for length and stored as argon2id."""
        if not USERNAME.match(username):
            raise UserError("a username is 1 to 64 letters, digits and _ . @ + -")
        user = MerchantUser(
            merchant_pid=pid,
            username=username,
            password_hash=hash_password(password),
            disabled=False,
            created_at=utcnow(),
        )
        try:
            async with self.db.session() as session:
                if await session.get(Merchant, pid) is None:
                    raise MerchantNotFound(pid)
                session.add(user)
                await session.flush()
                audit.add(session, actor, "merchant_user.create", f"merchant:{pid}", after={"username": username})
        except IntegrityError as exc:
            if "username" not in str(exc.orig):
                raise
            raise UserError(f"there is already a merchant sign-in {username!r}") from None
        return user

    async def of_merchant(self, pid: int) -> list[MerchantUser]:
        async with self.db.session() as session:
            query = select(MerchantUser).where(MerchantUser.merchant_pid == pid).order_by(MerchantUser.username)
            return list((await session.scalars(query)).all())

    async def set_disabled(self, pid: int, user_id: int, disabled: bool, actor: audit.Actor) -> MerchantUser | None:
        """Disable (every session ends with it) or enable merchant ``pid``'s sign-in; None if it has no such one."""
        async with self.db.session() as session:
            user = await session.get(MerchantUser, user_id)
            if user is None or user.merchant_pid != pid:
                return None
            user.disabled = disabled
            if disabled:
                await session.execute(delete(MerchantSession).where(MerchantSession.user_id == user_id))
            action = "merchant_user.disable" if disabled else "merchant_user.enable"
            audit.add(session, actor, action, f"merchant:{pid}", after={"username": user.username})
        return user

    @staticmethod
    def signup_name(address: str) -> str:
        """Sign-ups are counted as sign-in attempts of this name: at most the per-name limit of them
        per address within the lock time, and each one spends the address's budget as a failure would."""
        return f"signup@{address}"[:64]

    async def signup_locked(self, address: str) -> bool:
        return await self.locked(self.signup_name(address), address[:64])

    async def note_signup(self, address: str) -> None:
        await self._remember(self.signup_name(address), address[:64], False)

    async def sign_up(
        self, merchants: Merchants, shop_name: str, username: str, password: str, actor: audit.Actor
    ) -> MerchantCredentials | None:
        """A new merchant, disabled until an operator enables it, and its first sign-in; None when the
        username is taken already.

        Nothing is made unless both can be: the name, the username and the password are checked first,
        and the merchant, its sign-in and their audit entries commit in one transaction, so two
        applicants racing for one new address make one merchant, not a second one without a sign-in.
        A taken username is not an error the applicant sees (it would tell anyone which addresses
        have a sign-in): the password is hashed all the same, before the transaction, so that it
        takes as long and no write waits on the hashing.
        """
        name = shop_name.strip()
        if not name or len(name) > MAX_MERCHANT_NAME:
            raise UserError(f"a shop name is 1 to {MAX_MERCHANT_NAME} characters")
        if not USERNAME.match(username):
            raise UserError("a username is 1 to 64 letters, digits and _ . @ + -")
        password_hash = hash_password(password)

        async def sign_in_and_audit(session: AsyncSession, pid: int) -> None:
            audit.add(session, actor, "merchant.sign_up", f"merchant:{pid}", after={"name": name, "status": "disabled"})
            session.add(
                MerchantUser(
                    merchant_pid=pid,
                    username=username,
                    password_hash=password_hash,
                    disabled=False,
                    created_at=utcnow(),
                )
            )
            await session.flush()
            audit.add(session, actor, "merchant_user.create", f"merchant:{pid}", after={"username": username})

        try:
            # Created disabled: it takes no payment before an operator has looked at it.
            return await merchants.create(
                name, refund_enabled=False, status=MerchantStatus.DISABLED, along=sign_in_and_audit
            )
        except IntegrityError as exc:
            if "username" not in str(exc.orig):
                raise
            return None
