"""How long a sign-in session lasts and when failures lock a name or an address: the console's
``OPENEPAY_ADMIN_*`` settings, and the merchant portal's ``OPENEPAY_MERCHANT_*`` (each the console's unless set)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

from openepay.admin.users import LoginPolicy
from openepay.config import Settings


@dataclass(frozen=True)
class SignInSettings:
    """How long a session lasts, and how many failures within the lock time lock a name or an address."""

    session_hours: float
    failures_per_user: int
    failures_per_ip: int
    lock_minutes: float

    @classmethod
    def of(cls, settings: Settings, area: str) -> SignInSettings:
        """The settings ``<area>_session_hours``, ``_failures_per_user``, ``_failures_per_ip`` and
        ``_lock_minutes``; each one the portal leaves unset (None) is the console's (``admin_...``)."""

        def setting(name: str) -> Any:
            value = getattr(settings, f"{area}_{name}")
            return getattr(settings, f"admin_{name}") if value is None else value

        return cls(*(setting(field.name) for field in fields(cls)))

    @property
    def policy(self) -> LoginPolicy:
        return LoginPolicy(self.failures_per_user, self.failures_per_ip, timedelta(minutes=self.lock_minutes))

    @property
    def lifetime(self) -> timedelta:
        return timedelta(hours=self.session_hours)
