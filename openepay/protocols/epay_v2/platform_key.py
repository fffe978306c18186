"""The gateway's own RSA key pair for epay V2: it signs every successful answer and notification.

Generated the first time anything needs it and kept in ``platform_keys`` (name ``epay_v2``),
the private half sealed with ``OPENEPAY_SECRET_KEY``. Merchants paste the public half into
their SDK, so there must only ever be one: several processes starting on an empty table each
offer a fresh pair, the database keeps the first, and everyone reads back what it kept.
Each process loads it once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from openepay.db import Database
from openepay.db.models import PlatformKey as PlatformKeyRow
from openepay.db.types import utcnow
from openepay.protocols.epay_v2.signing import bare_base64, public_pem, rsa_sign
from openepay.secretbox import SecretBox

NAME = "epay_v2"
SEAL_CONTEXT = "platform-key:epay_v2"
KEY_BITS = 2048


@dataclass(frozen=True)
class PlatformKey:
    public_pem: str
    private_key: rsa.RSAPrivateKey

    @property
    def public_base64(self) -> str:
        return bare_base64(self.public_pem)

    def signed(self, fields: dict[str, object]) -> dict[str, object]:
        """``fields`` with ``timestamp`` (now), ``sign_type=RSA`` and the signature appended, in that order."""
        answer = {**fields, "timestamp": str(int(time.time())), "sign_type": "RSA"}
        answer["sign"] = rsa_sign(self.private_key, answer)
        return answer


# Per database URL: one process may serve more than one database (the test suite does).
_loaded: dict[str, PlatformKey] = {}


async def platform_key(db: Database, box: SecretBox) -> PlatformKey:
    key = _loaded.get(db.url)
    if key is None:
        key = await _load_or_create(db, box)
        _loaded[db.url] = key
    return key


def forget_loaded() -> None:
    """Drop what this process loaded, so the next use reads the table again (after it was emptied)."""
    _loaded.clear()


async def _read(db: Database, box: SecretBox) -> PlatformKey | None:
    async with db.session() as session:
        row = await session.get(PlatformKeyRow, NAME)
    if row is None:
        return None
    private_pem = box.open(row.private_sealed, SEAL_CONTEXT)
    private_key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(private_key, rsa.RSAPrivateKey)
    return PlatformKey(row.public_pem, private_key)


def _generate(box: SecretBox) -> tuple[str, str]:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return public_pem(private_key.public_key()), box.seal(private_pem, SEAL_CONTEXT)


async def _load_or_create(db: Database, box: SecretBox) -> PlatformKey:
    existing = await _read(db, box)
    if existing is not None:
        return existing
    # Generating takes a noticeable moment of CPU: not on the event loop.
    public, sealed = await asyncio.to_thread(_generate, box)
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
    async with db.session() as session:
        await session.execute(
            insert(PlatformKeyRow)
            .values(name=NAME, public_pem=public, private_sealed=sealed, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )
    kept = await _read(db, box)
    assert kept is not None
    return kept
