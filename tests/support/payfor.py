"""A payFor merchant, written from the seed's own words, independently of the gateway's code.

Request ``key``: "把使用到的所有参数，连 Token 一起，按参数名字母升序排序。把参数值拼接在一起。做 md5-32 位
加密，取字符串小写。" Notification ``sign``: "order_id + price + token". The shop receives the
POST form, checks ``sign`` like a merchant's notify script and answers from a script.
"""

from __future__ import annotations

import hashlib
import html
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import httpx
from sqlalchemy import update

from openepay.core.merchants import _key_context
from openepay.db.models import Merchant
from tests.support.notify import Answer


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def merchant_key(params: dict[str, str], token: str) -> str:
    """What a merchant's server computes: every parameter it sends (not ``key``) plus ``token``, values by name."""
    used = {name: value for name, value in params.items() if name != "key" and value != ""}
    used["token"] = token
    return md5("".join(used[name] for name in sorted(used)))


def shop_sign(params: dict[str, str], token: str) -> str:
    return md5(params["order_id"] + params["price"] + token)


def payfor_params(uid: int, merchant_url: str, order_id: str, /, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "uid": str(uid),
        "price": "9.90",
        "type": "2",
        "notify_url": f"{merchant_url}/notify",
        "return_url": f"{merchant_url}/return",
        "order_id": order_id,
        "order_uid": "user42",
        "order_name": "VIP月卡",
    }
    params.update(overrides)
    return {name: value for name, value in params.items() if value is not None}


def keyed(params: dict[str, str], token: str) -> dict[str, str]:
    return {**params, "key": merchant_key(params, token)}


async def merchant_with_key(gateway, pid: int, token: str) -> None:  # type: ignore[no-untyped-def]
    """A merchant holding a reference vector's token, so the vector's literal key applies."""
    await gateway.merchants.create(f"Vector merchant {pid}", pid=pid)
    async with gateway.db.session() as session:
        await session.execute(
            update(Merchant).where(Merchant.pid == pid).values(key_sealed=gateway.box.seal(token, _key_context(pid)))
        )


@dataclass
class Delivery:
    method: str
    path: str
    form: dict[str, str]
    query: dict[str, str]
    at: float
    sign_ok: bool


@dataclass
class PayForShop:
    """Merchant endpoints answering from a script (the last answer repeats), after ``delay`` seconds."""

    token: str
    script: list[Answer] = field(default_factory=lambda: [Answer()])
    delay: float = 0.0
    received: list[Delivery] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def notifications(self) -> list[Delivery]:
        return [entry for entry in self.received if entry.path == "/notify"]

    def start(self) -> PayForShop:
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                form = {}
                if "application/x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
                    form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                signed = form or dict(parse_qsl(parts.query, keep_blank_values=True))
                sign_ok = {"order_id", "price", "sign"} <= set(signed) and signed["sign"] == shop_sign(
                    signed, shop.token
                )
                entry = Delivery(
                    self.command, parts.path, form, dict(parse_qsl(parts.query)), time.monotonic(), sign_ok
                )
                answer = shop.script[min(len(shop.received), len(shop.script) - 1)]
                shop.received.append(entry)
                if shop.delay:
                    time.sleep(shop.delay)
                self.send_response(answer.status)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = _handle

            def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


PATH = "/Home/Pay/payFor"
MESSAGE = re.compile(r'<p class="message" id="message">(.*?)</p>', re.S)
TITLE = re.compile(r'<h1 class="message-title[^"]*">(.*?)</h1>', re.S)


async def send(client: httpx.AsyncClient, params: dict[str, str], *, as_json: bool, method: str = "POST"):  # type: ignore[no-untyped-def]
    """One request as a merchant makes it: the form (or the query), ``?format=json`` for JSON."""
    mode = {"format": "json"} if as_json else {}
    if method == "GET":
        return await client.get(PATH, params={**params, **mode})
    return await client.post(PATH, params=mode, data=params)


def json_answer(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert type(answer["code"]) is int
    return answer


def json_error(response: httpx.Response) -> tuple[int, str]:
    answer = json_answer(response)
    assert set(answer) == {"code", "msg"}, answer
    assert answer["code"] <= 0
    return answer["code"], answer["msg"]


def page_error(response: httpx.Response, status: int = 200) -> str:
    """The message of the browser's error page (title 支付失败)."""
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("text/html")
    [title] = TITLE.findall(response.text)
    assert title == "支付失败"
    [message] = MESSAGE.findall(response.text)
    return html.unescape(message)
