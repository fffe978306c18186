"""What each console user may do: a viewer reads, an operator also works orders, notifications and
the personal codes' day-to-day (codes, switching accounts, revoking phones), an administrator also
manages merchants and adds receiving accounts and phones (and everything else)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMINISTRATOR = "administrator"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def may(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMINISTRATOR: 2}
