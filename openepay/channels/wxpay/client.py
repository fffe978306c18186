"""The WeChat Pay API v3 wire format: signed JSON requests, signed answers, encrypted notifications.

Requests are signed with the merchant API private key (SHA256withRSA over
``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n``) and carry the signature in
``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=...,nonce_str=...,signature=...,timestamp=...,serial_no=...``.
WeChat signs every answer and notification with its own key over ``TIMESTAMP\\nNONCE\\nBODY\\n``
(``Wechatpay-*`` headers); we believe an answer only when that signature verifies with the
account's WeChat Pay public key and the timestamp is recent. Notification resources are
AES-256-GCM encrypted with the APIv3 key.

We speak the protocol ourselves rather than through ``wechatpayv3``: that library brings its
own HTTP client (we send everything through the gateway's upstream client), fixes the host in
a private attribute, raises bare ``Exception``s and checks no timestamps.

Every call says whether the request surely never reached WeChat (``NotSent``) or may have
(``Uncertain``), because routing may only try another account in the first case.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256

from openepay.channels.wxpay.config import WxPayConfig

if TYPE_CHECKING:
    import httpx

SCHEMA = "WECHATPAY2-SHA256-RSA2048"
# How far WeChat's clock and ours may disagree, in seconds, before a signed message is refused as stale.
MAX_CLOCK_SKEW = 300
MAX_MESSAGE_CHARS = 300


class NotSent(Exception):
    """WeChat could not be reached: nothing was created or changed there."""


class Uncertain(Exception):
    """The request may have reached WeChat, but its answer is missing, unreadable or not signed by WeChat."""


@dataclass(frozen=True)
class Answer:
    """WeChat's verified answer: the HTTP status and the JSON body (empty for 204)."""

    status: int
    body: dict[str, Any]
    # Whether WeChat signed it (every 2xx is; errors are when WeChat accepted our signature).
    signed: bool = True

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str:
        return str(self.body.get("code") or "")

    @property
    def message(self) -> str:
        text = f"{self.code} {self.body.get('message') or ''}".strip()
        return text[:MAX_MESSAGE_CHARS] or f"HTTP {self.status}"


def rsa_sign(key: rsa.RSAPrivateKey, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), SHA256())).decode()


def rsa_verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(), SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def authorization(config: WxPayConfig, method: str, path: str, body: str, *, now: int | None = None) -> str:
    """The ``Authorization`` header of one request (``path`` with its query string, ``body`` exactly as sent)."""
    timestamp = str(int(time.time()) if now is None else now)
    nonce = secrets.token_hex(16)
    signature = rsa_sign(config.signing_key, f"{method}\n{path}\n{timestamp}\n{nonce}\n{body}\n")
    return (
        f'{SCHEMA} mchid="{config.mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{config.merchant_serial_no}"'
    )


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return ""


def wechat_signature_problem(config: WxPayConfig, headers: Mapping[str, str], body: bytes, *, now: float) -> str | None:
    """Why a message said to come from WeChat is not believed, or None when its signature and timestamp hold."""
    timestamp, nonce = _header(headers, "Wechatpay-Timestamp"), _header(headers, "Wechatpay-Nonce")
    signature, serial = _header(headers, "Wechatpay-Signature"), _header(headers, "Wechatpay-Serial")
    if not (timestamp and nonce and signature and serial):
        return "missing signature headers"
    if serial != config.platform_public_key_id:
        return "unknown Wechatpay-Serial"
    if not timestamp.isdigit() or len(timestamp) > 12:
        return "bad Wechatpay-Timestamp"
    if abs(now - int(timestamp)) > MAX_CLOCK_SKEW:
        return "stale timestamp"
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    if not rsa_verify(config.wechat_key, message, signature):
        return "bad signature"
    return None


def decrypt_resource(config: WxPayConfig, resource: Mapping[str, Any]) -> dict[str, Any]:
    """A notification's ``resource``, opened with the APIv3 key; ``ValueError`` if it does not open."""
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise ValueError("resource is not AEAD_AES_256_GCM")
    try:
        nonce = str(resource["nonce"]).encode()
        associated = str(resource.get("associated_data") or "").encode()
        ciphertext = base64.b64decode(str(resource["ciphertext"]), validate=True)
        plain = AESGCM(config.apiv3_key.get_secret_value().encode()).decrypt(nonce, ciphertext, associated)
        opened = json.loads(plain)
    except (KeyError, ValueError, InvalidTag) as exc:
        raise ValueError(f"resource does not decrypt: {type(exc).__name__}") from None
    if not isinstance(opened, dict):
        raise ValueError("resource is not a JSON object")
    return opened


class WxPayClient:
    def __init__(self, http: httpx.AsyncClient, config: WxPayConfig) -> None:
        self.http = http
        self.config = config

    async def get(self, path: str) -> Answer:
        return await self.call("GET", path, None)

    async def post(self, path: str, data: Mapping[str, Any]) -> Answer:
        return await self.call("POST", path, data)

    async def call(self, method: str, path: str, data: Mapping[str, Any] | None) -> Answer:
        """One signed request; the answer only if WeChat signed it (errors included, when they are signed)."""
        import httpx  # loaded with the first upstream call, not by every CLI command that loads the channels

        body = "" if data is None else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        headers = {
            "Authorization": authorization(self.config, method, path, body),
            "Accept": "application/json",
            "User-Agent": "OpenEpay wxpay",
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        url = self.config.api_base + path
        try:
            response = await self.http.request(method, url, content=body.encode() or None, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise NotSent(f"cannot reach {self.config.api_base}: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise Uncertain(f"no answer from {self.config.api_base}: {type(exc).__name__}") from exc
        try:
            answer = response.json() if response.content else {}
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise Uncertain(f"{path} answered HTTP {response.status_code}: {response.text[:MAX_MESSAGE_CHARS]!r}")
        signed = bool(_header(response.headers, "Wechatpay-Signature"))
        if response.status_code < 300 or signed:
            problem = wechat_signature_problem(self.config, response.headers, response.content, now=time.time())
            if problem is not None:
                raise Uncertain(f"{path} answer not believed: {problem}")
        return Answer(response.status_code, answer, signed)
