"""The one way a merchant's request is let in, whichever dialect it speaks.

A request is admitted when the caller is not locked out, the merchant exists, is active and
uses the dialect, and the dialect's verifier accepts the signature; every failed signature
is counted (``openepay.core.lockout``). A number no merchant has is refused uncounted: no key
was tried, so nothing is being guessed, and a shop whose server sends a wrong or not yet created
pid (a typo, a shop moved from Rainbow before the operator created it) would otherwise lock out
its address, and every shop behind the same address, from their own merchants. Such a request
costs no more than a bad signature's refusal. The merchant and its key come from this process's
copy (``openepay.core.merchant_cache``), so a refusal usually costs no query at all. Dialects differ
only in the order and the words of their refusals (Rainbow checks the ban after the signature
on ``submit.php`` and before it on ``/api/...``): each describes its order with a ``Door`` and
turns each ``Refusal`` into its own error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from openepay.core.lockout import Lockout
from openepay.core.merchant_cache import Admission
from openepay.core.merchants import Merchants
from openepay.core.states import MerchantStatus
from openepay.db.models import Merchant


class Refusal(Enum):
    LOCKED_OUT = "locked_out"
    NO_SUCH_MERCHANT = "no_such_merchant"
    DISABLED = "disabled"
    DIALECT_NOT_ENABLED = "dialect_not_enabled"
    BAD_SIGNATURE = "bad_signature"


class Refused(Exception):
    """Not let in; ``retry_after`` (seconds) says how long a lockout lasts at most."""

    def __init__(self, reason: Refusal, retry_after: float | None = None) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class Door:
    """How one dialect lets merchants in: its name, and whether it refuses a banned merchant
    (or one not using the dialect) before looking at the signature or only after it."""

    dialect: str
    permissions_first: bool


# Whether the request carries the merchant's signature, given the merchant and its key. It may
# raise the dialect's own error for a request that cannot be checked at all (no timestamp, say):
# that is no failed check and is not counted.
Verifier = Callable[[Merchant, str], bool]


def uses_dialect(merchant: Merchant, dialect: str) -> bool:
    return merchant.dialects is None or dialect in merchant.dialects


class Gate:
    def __init__(self, merchants: Merchants, lockout: Lockout) -> None:
        self.merchants = merchants
        self.lockout = lockout

    async def admit(self, door: Door, pid: int, client: str, verify: Verifier | None) -> Merchant:
        """The merchant ``pid``, if the request from ``client`` may act for it; else ``Refused``."""
        return (await self.admit_with_key(door, pid, client, verify)).merchant

    async def admit_with_key(self, door: Door, pid: int, client: str, verify: Verifier | None) -> Admission:
        """``admit``, with the merchant's key for endpoints that sign their answers.

        Without a verifier (endpoints that check no key, such as V免签's ``getOrder``) there is no
        lockout either: the merchant must only exist, be active and use the dialect.
        """
        if verify is not None and self.lockout.locked(client, pid):
            raise Refused(Refusal.LOCKED_OUT, retry_after=self.lockout.policy.window)
        admission = await self.merchants.admission(pid)
        if admission is None:
            raise Refused(Refusal.NO_SUCH_MERCHANT)
        merchant = admission.merchant
        if door.permissions_first or verify is None:
            _check_permissions(merchant, door.dialect)
        if verify is None:
            return admission
        if not verify(merchant, admission.key):
            self.lockout.failed(client, pid)
            raise Refused(Refusal.BAD_SIGNATURE)
        self.lockout.succeeded(client, pid)
        if not door.permissions_first:
            _check_permissions(merchant, door.dialect)
        return admission


def _check_permissions(merchant: Merchant, dialect: str) -> None:
    if merchant.status != MerchantStatus.ACTIVE:
        raise Refused(Refusal.DISABLED)
    if not uses_dialect(merchant, dialect):
        raise Refused(Refusal.DIALECT_NOT_ENABLED)
