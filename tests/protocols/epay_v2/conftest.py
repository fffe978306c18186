"""Fixtures for epay V2: a merchant with its own RSA key pair, and the platform's public key."""

from __future__ import annotations

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa

from openepay.protocols.epay_v2.platform_key import forget_loaded, platform_key
from tests.support.epay_v2 import V2Merchant, load_platform_key


@pytest.fixture(autouse=True)
def _fresh_platform_key():
    """Every test starts with empty tables, so this process must not sign with a key they no longer hold."""
    forget_loaded()
    yield
    forget_loaded()


@pytest.fixture(scope="session")
def merchant_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest_asyncio.fixture
async def v2(gateway, merchant, merchant_private_key) -> V2Merchant:
    """The ``merchant`` fixture with its RSA public key registered (MD5 still accepted)."""
    v2_merchant = V2Merchant(merchant.pid, merchant.key, merchant_private_key)
    await gateway.merchants.update(merchant.pid, rsa_public_key=v2_merchant.public_pem)
    return v2_merchant


@pytest_asyncio.fixture
async def platform_public(gateway) -> rsa.RSAPublicKey:
    """The platform public key as merchants get it (its PEM), parsed by the test itself."""
    return load_platform_key((await platform_key(gateway.db, gateway.box)).public_pem)
