"""TOTP codes as RFC 6238 defines them, so any authenticator app agrees with the console."""

from __future__ import annotations

import base64

import pytest

from openepay.admin import totp

# RFC 6238 appendix B: the SHA-1 seed is the ASCII "12345678901234567890", codes have 8 digits.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("moment", "code"), RFC_VECTORS)
def test_codes_are_rfc_6238s(moment, code):
    assert totp.hotp(RFC_SECRET, totp.step_at(moment), digits=8) == code


def test_a_code_is_accepted_one_step_either_side_and_only_after_the_last_used_step():
    secret = totp.new_secret()
    now = 1_800_000_000.0
    step = totp.step_at(now)
    assert totp.matching_step(secret, totp.code_at(secret, now), now=now) == step
    assert totp.matching_step(secret, totp.code_at(secret, now - 30), now=now) == step - 1
    assert totp.matching_step(secret, totp.code_at(secret, now + 30), now=now) == step + 1
    assert totp.matching_step(secret, totp.code_at(secret, now - 60), now=now) is None
    assert totp.matching_step(secret, totp.code_at(secret, now), now=now, after=step) is None
    assert totp.matching_step(secret, "12345", now=now) is None
    assert totp.matching_step(secret, "abcdef", now=now) is None


def test_the_setup_address_names_the_account_and_carries_the_secret():
    uri = totp.provisioning_uri("JBSWY3DPEHPK3PXP", "alice")
    assert uri.startswith("otpauth://totp/OpenEpay%3Aalice?")
    assert "secret=JBSWY3DPEHPK3PXP" in uri and "issuer=OpenEpay" in uri
