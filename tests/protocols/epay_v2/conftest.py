"""Fixtures for epay V2: the platform's public key (the merchant with its own RSA key pair, ``v2``, is shared)."""

from __future__ import annotations

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa

from openepay.protocols.epay_v2.platform_key import forget_loaded, platform_key
from openepay.protocols.epay_v2.signing import stored_public_key
from tests.support.epay_v2 import load_platform_key


@pytest.fixture(autouse=True)
def _fresh_platform_key():
    """Every test starts with empty tables, so this process must not sign with a key they no longer hold."""
    forget_loaded()
    yield
    forget_loaded()


@pytest.fixture(autouse=True)
def _merchant_keys_parsed_afresh():
    """Merchants' keys are parsed once per process (``stored_public_key``); a key parsed by an earlier test
    would be handed back without ``load_public_key`` running, so what it does with a key would go untested."""
    stored_public_key.cache_clear()


@pytest_asyncio.fixture
async def platform_public(gateway) -> rsa.RSAPublicKey:
    """The platform public key as merchants get it (its PEM), parsed by the test itself."""
    return load_platform_key((await platform_key(gateway.db, gateway.box)).public_pem)
