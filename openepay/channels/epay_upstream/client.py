"""The epay V1 wire format, spoken to an upstream gateway: MD5-signed forms and ``api.php``.

Signing: every field but ``sign`` and ``sign_type``, empty values left out, sorted by name,
joined as raw ``k=v`` with ``&``, the key appended, lowercase hex MD5. Verifying what the
upstream sends is strict (constant time, no leniency for blank values): unlike our own
merchants, an upstream's callbacks are money arriving.

Every call says whether the request surely never reached the upstream (``NotSent``) or may
have (``Uncertain``), because routing may only try another account in the first case.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from openepay.channels.epay_upstream.config import EpayUpstreamConfig

if TYPE_CHECKING:
    import httpx

MAX_ANSWER_CHARS = 300


class NotSent(Exception):
    """The upstream could not be reached: nothing was created or changed there."""


class Uncertain(Exception):
    """The request may have reached the upstream, but its answer is missing or unreadable."""


def sign(params: Mapping[str, str], key: str) -> str:
    content = "&".join(
        f"{name}={params[name]}"
        for name in sorted(params, key=lambda k: k.encode())
        if name not in ("sign", "sign_type") and params[name] != ""
    )
    return hashlib.md5((content + key).encode()).hexdigest()


def signed(params: Mapping[str, str], key: str) -> dict[str, str]:
    fields = {name: value for name, value in params.items() if value != ""}
    return {**fields, "sign": sign(fields, key), "sign_type": "MD5"}


def signature_valid(params: Mapping[str, str], key: str) -> bool:
    received = params.get("sign", "")
    if not received.isascii():
        return False
    return hmac.compare_digest(sign(params, key).encode(), received.lower().encode())


class EpayClient:
    def __init__(self, http: httpx.AsyncClient, config: EpayUpstreamConfig) -> None:
        self.http = http
        self.config = config

    @property
    def key(self) -> str:
        return self.config.key.get_secret_value()

    def submit_url(self, fields: Mapping[str, str]) -> str:
        """The page-jump address: the buyer's browser creates the order at the upstream."""
        return f"{self.config.api_url}submit.php?{urlencode(signed(fields, self.key))}"

    async def mapi(self, fields: Mapping[str, str]) -> dict[str, Any]:
        return await self._call("POST", "mapi.php", data=signed(fields, self.key))

    async def api(self, act: str, fields: Mapping[str, str], *, post: bool = False) -> dict[str, Any]:
        """``api.php?act=...``, authenticated with the plain key as the upstream expects (use HTTPS)."""
        params = {"act": act, "pid": self.config.pid, "key": self.key, **fields}
        if post:
            return await self._call("POST", f"api.php?act={act}", data=params)
        return await self._call("GET", "api.php", params=params)

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        import httpx  # loaded with the first upstream call, not by every CLI command that loads the channels

        url = self.config.api_url + path
        try:
            response = await self.http.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise NotSent(f"cannot reach {self.config.api_url}: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise Uncertain(f"no answer from {self.config.api_url}: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise Uncertain(f"{path} answered HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise Uncertain(
                f"{path} answered something that is not JSON: {response.text[:MAX_ANSWER_CHARS]!r}"
            ) from None
        if not isinstance(answer, dict):
            raise Uncertain(f"{path} answered {answer!r:.{MAX_ANSWER_CHARS}}")
        return answer


def answer_code(answer: Mapping[str, Any]) -> int | None:
    try:
        return int(answer.get("code"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def answer_message(answer: Mapping[str, Any]) -> str:
    return str(answer.get("msg") or "")[:MAX_ANSWER_CHARS]
