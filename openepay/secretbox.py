"""Encryption at rest for secrets the gateway must be able to read back.

Epay merchant keys are symmetric (we recompute MD5 signatures with them), so they cannot be
hashed like passwords. They are sealed with AES-GCM under a key derived from
``OPENEPAY_SECRET_KEY``; the associated data binds each ciphertext to the row it belongs to,
so copying one merchant's sealed key onto another merchant's row does not decrypt.

A box seals nothing until it has been proven against the database (``openepay.key_check``):
with a mistyped ``OPENEPAY_SECRET_KEY`` a process would otherwise write secrets nobody can
open with the right key, and the install would be poisoned for good.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1"
# What a key check seals: a database remembers one, and only the right key opens it.
CHECK_TEXT = "openepay key check"
CHECK_CONTEXT = "key-check"


class SecretBoxError(RuntimeError):
    """A sealed value could not be opened (wrong OPENEPAY_SECRET_KEY, or tampered data)."""


def derive_key(master_key: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose, so no two uses of the master key share key material."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(master_key.encode())


class SecretBox:
    def __init__(self, master_key: str) -> None:
        self._aead = AESGCM(derive_key(master_key, "openepay secretbox v1"))
        self._proven = False

    @property
    def proven(self) -> bool:
        return self._proven

    def prove(self, sealed: str, context: str = CHECK_CONTEXT) -> None:
        """Open a value this database already holds; from now on the box may seal.

        Raises ``SecretBoxError`` when the key is not the one ``sealed`` was made with.
        """
        self.open(sealed, context)
        self._proven = True

    def new_check(self) -> str:
        """The key check a new database is claimed with (the one seal an unproven box makes)."""
        return self._seal(CHECK_TEXT, CHECK_CONTEXT)

    def seal(self, plaintext: str, context: str) -> str:
        if not self._proven:
            raise SecretBoxError("refusing to seal with an OPENEPAY_SECRET_KEY not yet checked against the database")
        return self._seal(plaintext, context)

    def _seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return f"{_VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        version, _, payload = sealed.partition(":")
        if version != _VERSION:
            raise SecretBoxError(f"unknown sealed format {version!r}")
        raw = base64.urlsafe_b64decode(payload)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag as exc:
            raise SecretBoxError(
                "cannot decrypt a stored secret: is OPENEPAY_SECRET_KEY the one the data was written with?"
            ) from exc
