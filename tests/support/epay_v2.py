"""An epay V2 merchant, written from Rainbow's SDK V2.0 (``EpayCore.class.php``), not from the gateway's code.

It signs requests with its own private key and checks the gateway's answers and
notifications with the platform public key, using ``cryptography`` directly: sign content =
every field but ``sign``/``sign_type``, lists and blank values, ``ksort``-ed, raw ``k=v`` joined
with ``&``; SHA256withRSA, PKCS#1 v1.5, standard base64; and, like the SDK's ``verify()``,
a ``timestamp`` within 300 s of the merchant's clock.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.epay import order_params
from tests.support.links import sandbox_path

SDK_WINDOW = 300


def sdk_content(fields: dict[str, object]) -> str:
    pairs = []
    for name in sorted(fields):
        value = fields[name]
        if name in ("sign", "sign_type") or value is None or isinstance(value, list | dict):
            continue
        text = str(value)
        if text.strip(" \t\n\r\0\x0b") == "":
            continue
        pairs.append(f"{name}={text}")
    return "&".join(pairs)


def rsa_signature(private_key: rsa.RSAPrivateKey, content: str) -> str:
    return base64.b64encode(private_key.sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def signature_valid(public_key: rsa.RSAPublicKey, content: str, sign: str) -> bool:
    try:
        public_key.verify(base64.b64decode(sign), content.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def pem_of(public_key: rsa.RSAPublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def bare_body(pem: str) -> str:
    """A PEM's base64 body on one line, as Rainbow's panel shows keys."""
    return "".join(line.strip() for line in pem.strip().splitlines() if not line.startswith("-----"))


def load_platform_key(text: str) -> rsa.RSAPublicKey:
    """The platform key as a merchant pastes it: PEM, or the bare base64 the SDK wraps itself."""
    text = text.strip()
    if not text.startswith("-----BEGIN"):
        body = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
        text = f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----"
    key = serialization.load_pem_public_key(text.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    return key


@dataclass
class V2Merchant:
    """A merchant with an RSA key pair of its own (and its V1 MD5 key)."""

    pid: int
    key: str
    private_key: rsa.RSAPrivateKey

    @property
    def public_pem(self) -> str:
        return pem_of(self.private_key.public_key())

    def request(self, fields: dict[str, str], *, timestamp: int | None = None) -> dict[str, str]:
        """``buildRequestParam``: ``pid`` and ``timestamp`` added, RSA-signed."""
        params = {"pid": str(self.pid), **fields}
        params.setdefault("timestamp", str(int(time.time()) if timestamp is None else timestamp))
        params["sign"] = rsa_signature(self.private_key, sdk_content(params))
        params["sign_type"] = "RSA"
        return params


def platform_signed(public_key: rsa.RSAPublicKey, fields: dict[str, object], now: float | None = None) -> bool:
    """The SDK's ``verify()``: a signature, a fresh timestamp, and the platform's RSA signature over the rest."""
    sign, timestamp = fields.get("sign"), fields.get("timestamp")
    if not isinstance(sign, str) or not sign or not timestamp:
        return False
    if abs((time.time() if now is None else now) - int(str(timestamp))) > SDK_WINDOW:
        return False
    return signature_valid(public_key, sdk_content(fields), sign)


def order_fields(merchant_url: str, out_trade_no: str, **overrides: str | None) -> dict[str, str]:
    """V1's order plus V2's ``method`` and the buyer's device and IP; ``V2Merchant.request`` adds ``pid``."""
    fields: dict[str, str | None] = {"method": "web", "device": "pc", **order_params(0, merchant_url, out_trade_no)}
    del fields["pid"]
    fields.update({"clientip": "203.0.113.9", **overrides})
    return {name: value for name, value in fields.items() if value is not None}


# The shop the V2 tests place orders for.
SHOP = "https://shop.example.com"


async def create(client: httpx.AsyncClient, v2: V2Merchant, out_trade_no: str, **overrides: str | None) -> dict:
    answer = (
        await client.post("/api/pay/create", data=v2.request(order_fields(SHOP, out_trade_no, **overrides)))
    ).json()
    assert answer["code"] == 0, answer
    return answer


async def paid(client: httpx.AsyncClient, v2: V2Merchant, out_trade_no: str, **overrides: str | None) -> str:
    trade_no = (await create(client, v2, out_trade_no, **overrides))["trade_no"]
    assert (await client.post(sandbox_path(trade_no))).status_code == 303
    return trade_no


async def api(client: httpx.AsyncClient, v2: V2Merchant, endpoint: str, **fields: str) -> dict:
    return (await client.post(f"/api/{endpoint}", data=v2.request(fields))).json()
