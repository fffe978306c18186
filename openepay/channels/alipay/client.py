"""The Alipay OpenAPI wire format: RSA2-signed requests to ``gateway.do`` and signed answers.

Requests: the common parameters (``app_id, method, format, charset, sign_type, timestamp,
version``, maybe ``notify_url`` and ``return_url``) and ``biz_content``, a JSON string of the
business fields. The signature is SHA256withRSA (PKCS#1 v1.5) with the application private
key over every parameter but ``sign`` with a value, sorted by name and joined as raw ``k=v``
with ``&``; ``sign_type`` is part of it.

Answers: ``{"alipay_trade_xxx_response": {...}, "sign": "..."}``, where the signature covers
the exact characters of the inner object as sent, checked with the Alipay public key (or
the key in Alipay's public-key certificate; certificate mode also sends ``app_cert_sn`` and
``alipay_root_cert_sn`` with every request, see ``certs.py``). A
success is believed only with a valid signature. Gateway errors arrive as ``error_response``,
sometimes unsigned.

Page and WAP pay need no call from our server: the signed parameters go into the URL the
buyer's browser opens at the gateway.

We sign with ``cryptography`` rather than python-alipay-sdk: that library is synchronous
(``urllib``), its gateway address and answer check are private attributes, and it brings
pycryptodomex and pyOpenSSL; the algorithm is twenty lines.

Every call says whether the request surely never reached Alipay (``NotSent``) or may have
(``Uncertain``): routing may try another account only in the first case, and a refund whose
fate is unknown stays in progress until a refund query settles it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from openepay.channels.alipay.certs import cert_sn, load_certs, root_cert_sn
from openepay.channels.alipay.config import AlipayConfig, load_private_key

if TYPE_CHECKING:
    import httpx

# Alipay's clock: timestamps and expiry times are Beijing time.
ALIPAY_TIME = timezone(timedelta(hours=8))
SUCCESS_CODE = "10000"
# "服务不可用": Alipay may or may not have acted; the same request can be sent again.
UNKNOWN_CODE = "20000"
MAX_ANSWER_CHARS = 300


class NotSent(Exception):
    """Alipay could not be reached: nothing was created or changed there."""


class Uncertain(Exception):
    """The request may have reached Alipay, but its answer is missing, unreadable or not signed by Alipay."""


def signing_content(params: Mapping[str, str]) -> str:
    """What a request's signature covers: every parameter but ``sign`` with a value, sorted, raw ``k=v``."""
    return "&".join(f"{name}={params[name]}" for name in sorted(params) if name != "sign" and params[name] != "")


def notification_content(params: Mapping[str, str]) -> str:
    """What a notification's signature covers: every field but ``sign`` and ``sign_type``, empty ones kept."""
    return "&".join(f"{name}={params[name]}" for name in sorted(params) if name not in ("sign", "sign_type"))


def rsa2_sign(key: rsa.RSAPrivateKey, content: str) -> str:
    return base64.b64encode(key.sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa2_valid(key: rsa.RSAPublicKey, content: str, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, content.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def alipay_time(moment: datetime) -> str:
    return moment.astimezone(ALIPAY_TIME).strftime("%Y-%m-%d %H:%M:%S")


def response_key(method: str) -> str:
    return method.replace(".", "_") + "_response"


def signed_part(text: str, key: str) -> str | None:
    """The exact characters of the JSON object after ``"key":`` in ``text``, as Alipay signed them."""
    marker = f'"{key}":'
    start = text.find(marker)
    if start < 0:
        return None
    start += len(marker)
    while start < len(text) and text[start] in " \t\r\n":
        start += 1
    if start >= len(text) or text[start] != "{":
        return None
    depth, in_string, escaped = 0, False, False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start : index + 1]
    return None


class Answer:
    """Alipay's answer to one call: its fields, and whether Alipay's signature vouches for them."""

    def __init__(self, fields: dict[str, Any], signed: bool) -> None:
        self.fields = fields
        self.signed = signed

    @property
    def code(self) -> str:
        return str(self.fields.get("code") or "")

    @property
    def ok(self) -> bool:
        """A business success, signed by Alipay."""
        return self.signed and self.code == SUCCESS_CODE

    def get(self, name: str) -> str:
        value = self.fields.get(name)
        return "" if value is None else str(value)

    @property
    def message(self) -> str:
        parts = [self.code, self.get("msg"), self.get("sub_code"), self.get("sub_msg")]
        return " ".join(part for part in parts if part)[:MAX_ANSWER_CHARS]


class AlipayClient:
    def __init__(self, http: httpx.AsyncClient, config: AlipayConfig) -> None:
        self.http = http
        self.config = config

    @cached_property
    def private_key(self) -> rsa.RSAPrivateKey:
        return load_private_key(self.config.app_private_key.get_secret_value())

    @cached_property
    def alipay_key(self) -> rsa.RSAPublicKey:
        return self.config.alipay_key()

    @cached_property
    def cert_sns(self) -> dict[str, str]:
        """Certificate mode's two extra request parameters (none in public-key mode)."""
        config = self.config
        if config.app_cert is None or config.alipay_root_cert is None:
            return {}
        return {
            "app_cert_sn": cert_sn(load_certs(config.app_cert)[0]),
            "alipay_root_cert_sn": root_cert_sn(config.alipay_root_cert),
        }

    def signed_params(self, method: str, biz: Mapping[str, Any], **extra: str) -> dict[str, str]:
        params = {
            "app_id": self.config.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": self.config.sign_type,
            "timestamp": alipay_time(datetime.now(ALIPAY_TIME)),
            "version": "1.0",
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
            **self.cert_sns,
            **{name: value for name, value in extra.items() if value},
        }
        params["sign"] = rsa2_sign(self.private_key, signing_content(params))
        return params

    def page_url(self, method: str, biz: Mapping[str, Any], **extra: str) -> str:
        """Where the buyer's browser goes for page or WAP pay: the gateway, with the signed request in the URL."""
        separator = "&" if "?" in self.config.gateway_url else "?"
        return self.config.gateway_url + separator + urlencode(self.signed_params(method, biz, **extra))

    async def call(self, method: str, biz: Mapping[str, Any], **extra: str) -> Answer:
        import httpx  # loaded with the first upstream call, not by every CLI command that loads the channels

        params = self.signed_params(method, biz, **extra)
        try:
            response = await self.http.post(
                self.config.gateway_url,
                data=params,
                headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise NotSent(f"cannot reach {self.config.gateway_url}: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise Uncertain(f"no answer from {self.config.gateway_url}: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise Uncertain(f"{method} answered HTTP {response.status_code}")
        return self.read_answer(method, response.text)

    def read_answer(self, method: str, text: str) -> Answer:
        try:
            body = json.loads(text)
        except ValueError:
            raise Uncertain(f"{method} answered something that is not JSON: {text[:MAX_ANSWER_CHARS]!r}") from None
        if not isinstance(body, dict):
            raise Uncertain(f"{method} answered {text[:MAX_ANSWER_CHARS]!r}")
        for key in (response_key(method), "error_response"):
            part = signed_part(text, key)
            if part is None:
                continue
            # The fields are read from the very characters the signature covers, never from a
            # second copy of the key elsewhere in the body.
            try:
                fields = json.loads(part)
            except ValueError:
                raise Uncertain(f"{method} answered an unreadable {key}") from None
            signature = body.get("sign")
            signed = isinstance(signature, str) and rsa2_valid(self.alipay_key, part, signature)
            return Answer(fields, signed)
        raise Uncertain(f"{method} answered without {response_key(method)}: {text[:MAX_ANSWER_CHARS]!r}")
