"""Time-based one-time passwords (RFC 6238, SHA-1, 6 digits, 30-second steps), as phone apps make them.

Small enough to keep here: HOTP (RFC 4226) is an HMAC, four bytes picked from it and six digits.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

STEP_SECONDS = 30
DIGITS = 6
# A code from the step before or after is still accepted: phone clocks drift, people type slowly.
DRIFT_STEPS = 1


def new_secret() -> str:
    """160 random bits in base32, the form authenticator apps take."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


def hotp(secret: str, counter: int, digits: int = DIGITS, digest: str = "sha1") -> str:
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def step_at(moment: float) -> int:
    return int(moment // STEP_SECONDS)


def code_at(secret: str, moment: float) -> str:
    return hotp(secret, step_at(moment))


def matching_step(secret: str, code: str, *, now: float | None = None, after: int | None = None) -> int | None:
    """The step whose code ``code`` is (within the drift), later than ``after``; None if none is."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    current = step_at(time.time() if now is None else now)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # Every candidate is compared, so the time taken says nothing about which one matched.
        if hmac.compare_digest(hotp(secret, step), code) and (after is None or step > after):
            found = step
    return found


def provisioning_uri(secret: str, account: str, issuer: str = "OpenEpay") -> str:
    """The ``otpauth://`` address an authenticator app reads from a QR code."""
    label = quote(f"{issuer}:{account}")
    return f"otpauth://totp/{label}?{urlencode({'secret': secret, 'issuer': issuer, 'digits': DIGITS})}"
