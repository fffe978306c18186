"""Console passwords as argon2id hashes (argon2-cffi's defaults, RFC 9106's second recommendation)."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10

_hasher = PasswordHasher()


@cache
def _unknown_user_hash() -> str:
    """Checked when no such user exists, so that a wrong username costs the same time as a wrong password.
    Made on first use, not on import: hashing is slow on purpose, and most processes never sign anyone in."""
    return _hasher.hash("no such user: this hash is only ever compared against")


class WeakPassword(ValueError):
    pass


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a console password has at least {MIN_LENGTH} characters")


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``; with None (no such user) it spends the same time and says no."""
    try:
        matched = _hasher.verify(stored or _unknown_user_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return matched and stored is not None
