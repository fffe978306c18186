"""Epay V2 RSA signatures: SHA256withRSA (PKCS#1 v1.5) over Rainbow's sign content, base64.

The content is Rainbow's ``getSignContent``: every field sorted by name (byte order), leaving
out ``sign``, ``sign_type``, lists and dicts, missing values and values that are empty once
PHP's ``trim`` has run; joined as raw ``k=v`` pairs with ``&``. Integers take part as their
decimal text, which is what PHP's string concatenation makes of the JSON numbers clients decode.

Keys travel as PEM or, as Rainbow's merchant panel and SDK hand them around, as the bare
base64 body of the PEM; both are read.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from functools import lru_cache

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

EXCLUDED = frozenset({"sign", "sign_type"})
# PHP's trim() strips exactly these; a value made only of them is not signed.
PHP_TRIM = " \t\n\r\0\x0b"
MIN_KEY_BITS = 2048
_BARE_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]+$")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class KeyFormatError(ValueError):
    """Text that is not an RSA public key we accept; the message says why, for the operator."""


def sign_content(fields: Mapping[str, object]) -> str:
    pairs = []
    for name in sorted(fields, key=lambda k: k.encode()):
        value = fields[name]
        if name in EXCLUDED or value is None or isinstance(value, list | tuple | dict):
            continue
        if isinstance(value, bool):
            raise TypeError(f"{name}: booleans have no agreed text form in epay V2 signatures")
        text = str(value)
        if not text.strip(PHP_TRIM):
            continue
        pairs.append(f"{name}={text}")
    return "&".join(pairs)


def rsa_sign(private_key: rsa.RSAPrivateKey, fields: Mapping[str, object]) -> str:
    signature = private_key.sign(sign_content(fields).encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def signature_bytes(sign: str) -> bytes | None:
    """The signature's bytes from its one accepted spelling, or None.

    That spelling is standard base64, padded, on one line: what PHP's ``base64_encode``
    (Rainbow's SDK), Java's ``Base64.getEncoder()``, Go's ``StdEncoding`` and Python's
    ``b64encode`` write. One deviation is read back, because real clients need it: a client
    that put the signature into a URL without encoding it had its ``+`` turned into spaces by
    form decoding (a space is never part of base64, so nothing is ambiguous).

    Everything else a lenient decoder (PHP's, Python's) skips or tolerates is refused: line
    breaks, characters outside the alphabet, missing or surplus padding, text after the
    padding, unused bits set in the last character. No client writes them, and each one is
    another spelling of the same signature: a captured request re-spelled that way once passed
    a replay check that compared spellings.
    """
    text = sign.replace(" ", "+")
    if len(text) % 4 or not _BASE64.fullmatch(text):
        return None
    signature = base64.b64decode(text)
    if base64.b64encode(signature).decode("ascii") != text:
        return None
    return signature


def rsa_verify(public_key: rsa.RSAPublicKey, fields: Mapping[str, object], sign: str) -> bool:
    """Whether ``sign`` (spelled as ``signature_bytes`` accepts) is the key holder's signature over ``fields``."""
    signature = signature_bytes(sign)
    if signature is None:
        return False
    try:
        public_key.verify(signature, sign_content(fields).encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _wrap(body: str, label: str) -> str:
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""])


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM (SubjectPublicKeyInfo or PKCS#1) or from a bare base64 body.

    Raises ``KeyFormatError`` for anything else, including keys too short to trust.
    """
    text = text.strip()
    if not text:
        raise KeyFormatError("the key is empty")
    if "PRIVATE KEY" in text:
        raise KeyFormatError("this is a private key: give the public key, and keep the private key secret")
    if "-----BEGIN" in text:
        candidates = [text.encode()]
    elif _BARE_BASE64.match(text):
        body = "".join(text.split())
        # Rainbow's bodies are SubjectPublicKeyInfo; a PKCS#1 body is also seen in the wild.
        candidates = [_wrap(body, "PUBLIC KEY").encode(), _wrap(body, "RSA PUBLIC KEY").encode()]
    else:
        raise KeyFormatError("not a PEM public key, nor the base64 body of one")
    key = None
    for pem in candidates:
        try:
            key = serialization.load_pem_public_key(pem)
            break
        except (ValueError, UnsupportedAlgorithm):
            continue
    if key is None:
        raise KeyFormatError("the key does not parse as a public key")
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFormatError("the key is not an RSA key (epay V2 signs with SHA256withRSA)")
    if key.key_size < MIN_KEY_BITS:
        raise KeyFormatError(f"the key has {key.key_size} bits; at least {MIN_KEY_BITS} are required")
    return key


@lru_cache(maxsize=512)
def stored_public_key(pem: str) -> rsa.RSAPublicKey:
    """A merchant's stored key, parsed once per process (it is checked on every V2 request)."""
    return load_public_key(pem)


def public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def bare_base64(pem: str) -> str:
    """The PEM's body on one line: what Rainbow's panel shows and its SDK's config expects."""
    return "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
