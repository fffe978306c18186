"""A fake WeChat Pay API v3 on loopback: real HTTP, real RSA signatures, real AES-256-GCM notifications.

Keys are made when the fake is: the merchant's API key pair (the gateway signs with the private
half, the fake verifies with the public one), WeChat Pay's own key pair (the fake signs every
answer and notification, the gateway verifies with the public half) and the APIv3 key.

Every request's ``Authorization`` is checked as WeChat does (mchid, serial number, a timestamp
within five minutes, SHA256withRSA over ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n`` of
the raw body); a bad one gets an unsigned ``401 SIGN_ERROR``. Everything else is answered and
signed over the exact bytes sent. ``pay`` plays the buyer: the order becomes SUCCESS and the
fake POSTs a signed, encrypted notification to the order's ``notify_url``; ``notification``
builds one (genuine or tampered) for a test to send itself.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from fastapi import FastAPI
from fastapi.responses import Response
from starlette.requests import Request

from tests.support.servers import ServerThread

MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
PUBLIC_KEY_ID = "PUB_KEY_ID_0119000001092025010100000000000001"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def rsa_sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), SHA256())).decode()


def wechat_headers(key: rsa.RSAPrivateKey, body: bytes, *, timestamp: int | None = None, serial: str = PUBLIC_KEY_ID):
    """The ``Wechatpay-*`` headers WeChat puts on an answer or a notification with this body."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = secrets.token_hex(16)
    return {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        "Wechatpay-Signature": rsa_sign(key, stamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"),
    }


TRADE_TYPES = {"native": "NATIVE", "h5": "MWEB", "jsapi": "JSAPI"}


def _openid_of(order: dict[str, Any]) -> str | None:
    payer = order.get("payer")
    openid = payer.get("openid") if isinstance(payer, dict) else None
    return openid if isinstance(openid, str) and openid else None


@dataclass
class Notification:
    headers: dict[str, str]
    body: bytes


class FakeWxPay:
    def __init__(self) -> None:
        self.merchant_key = new_key()
        self.wechat_key = new_key()
        self.apiv3_key = secrets.token_hex(16)
        self.orders: dict[str, dict[str, Any]] = {}
        self.refunds: list[dict[str, Any]] = []
        self.refused: list[str] = []
        # How the next refund request fails on WeChat's side: "before" or "after" taking the refund.
        self.refund_failure: str | None = None
        self.thread: ServerThread | None = None

    @property
    def url(self) -> str:
        assert self.thread is not None
        return self.thread.url

    def account_config(self, **overrides: object) -> dict[str, object]:
        return {
            "mchid": MCHID,
            "appid": APPID,
            "merchant_serial_no": MERCHANT_SERIAL,
            "merchant_private_key": private_pem(self.merchant_key),
            "apiv3_key": self.apiv3_key,
            "platform_public_key": public_pem(self.wechat_key),
            "platform_public_key_id": PUBLIC_KEY_ID,
            "api_base": self.url,
            **overrides,
        }

    # --- what the fake answers ------------------------------------------------------------------

    def _answer(self, status: int, payload: dict[str, Any] | None = None) -> Response:
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        headers = wechat_headers(self.wechat_key, body)
        return Response(body, status_code=status, headers=headers, media_type="application/json" if body else None)

    def _authorization_problem(self, request: Request, body: bytes) -> str | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("WECHATPAY2-SHA256-RSA2048 "):
            return "no WECHATPAY2-SHA256-RSA2048 authorization"
        fields = dict(re.findall(r'(\w+)="([^"]*)"', header))
        if fields.get("mchid") != MCHID or fields.get("serial_no") != MERCHANT_SERIAL:
            return "unknown mchid or serial_no"
        if not fields.get("timestamp", "").isdigit() or abs(time.time() - int(fields["timestamp"])) > 300:
            return "stale timestamp"
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        message = f"{request.method}\n{path}\n{fields['timestamp']}\n{fields.get('nonce_str', '')}\n".encode()
        try:
            signature = base64.b64decode(fields.get("signature", ""), validate=True)
            self.merchant_key.public_key().verify(signature, message + body + b"\n", padding.PKCS1v15(), SHA256())
        except (InvalidSignature, ValueError):
            return "bad signature"
        return None

    async def _refusal(self, request: Request) -> Response | None:
        """WeChat's unsigned ``401 SIGN_ERROR`` when our request's signature does not hold."""
        problem = self._authorization_problem(request, await request.body())
        if problem is None:
            return None
        self.refused.append(problem)
        return Response(
            json.dumps({"code": "SIGN_ERROR", "message": f"签名错误: {problem}"}, ensure_ascii=False),
            status_code=401,
            media_type="application/json",
        )

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v3/pay/transactions/{kind}")
        async def place(kind: str, request: Request) -> Response:
            if refusal := await self._refusal(request):
                return refusal
            order = json.loads(await request.body())
            if kind not in ("native", "h5", "jsapi") or order.get("mchid") != MCHID or order.get("appid") != APPID:
                return self._answer(400, {"code": "PARAM_ERROR", "message": "参数错误"})
            if kind == "jsapi" and not _openid_of(order):
                return self._answer(
                    400,
                    {
                        "code": "PARAM_ERROR",
                        "message": "输入源“/body/payer/openid”映射到字段“用户标识”必填性规则校验失败",
                    },
                )
            if kind != "jsapi" and "payer" in order:
                return self._answer(400, {"code": "PARAM_ERROR", "message": "payer 仅用于JSAPI下单"})
            number = order["out_trade_no"]
            if number in self.orders:
                return self._answer(400, {"code": "OUT_TRADE_NO_USED", "message": "商户订单号重复"})
            transaction_id = f"42000{secrets.randbelow(10**23):023d}"
            self.orders[number] = {**order, "kind": kind, "trade_state": "NOTPAY", "transaction_id": transaction_id}
            if kind == "jsapi":
                self.orders[number]["prepay_id"] = f"wx{secrets.token_hex(16)}"
                return self._answer(200, {"prepay_id": self.orders[number]["prepay_id"]})
            if kind == "h5":
                page = f"https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx{number}&package=1"
                return self._answer(200, {"h5_url": page})
            return self._answer(200, {"code_url": f"weixin://wxpay/bizpayurl?pr={number[-9:]}"})

        @app.get("/v3/pay/transactions/out-trade-no/{number}")
        async def query(number: str, request: Request, mchid: str = "") -> Response:
            if refusal := await self._refusal(request):
                return refusal
            order = self.orders.get(number)
            if order is None or mchid != MCHID:
                return self._answer(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
            return self._answer(200, self.transaction(number))

        @app.post("/v3/pay/transactions/out-trade-no/{number}/close")
        async def close(number: str, request: Request) -> Response:
            if refusal := await self._refusal(request):
                return refusal
            order = self.orders.get(number)
            if order is None:
                return self._answer(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
            if order["trade_state"] == "SUCCESS":
                return self._answer(400, {"code": "ORDERPAID", "message": "订单已支付"})
            order["trade_state"] = "CLOSED"
            return self._answer(204)

        @app.post("/v3/refund/domestic/refunds")
        async def refund(request: Request) -> Response:
            if refusal := await self._refusal(request):
                return refusal
            asked = json.loads(await request.body())
            order = self.orders.get(asked.get("out_trade_no", ""))
            if order is None or order["trade_state"] not in ("SUCCESS", "REFUND"):
                return self._answer(404, {"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在"})
            if asked["amount"]["total"] != order["amount"]["total"]:
                return self._answer(400, {"code": "PARAM_ERROR", "message": "订单金额或退款金额与之前请求不一致"})
            failure, self.refund_failure = self.refund_failure, None
            if failure == "before":
                return Response(b"", status_code=502)
            earlier = [r for r in self.refunds if r["out_refund_no"] == asked["out_refund_no"]]
            if not earlier:
                self.refunds.append({**asked, "refund_id": f"50300{len(self.refunds) + 1:027d}"})
                order["trade_state"] = "REFUND"
            if failure == "after":
                return self._answer(500, {"code": "SYSTEM_ERROR", "message": "系统超时"})
            made = earlier[0] if earlier else self.refunds[-1]
            return self._answer(200, {**made, "status": "PROCESSING"})

        @app.get("/v3/refund/domestic/refunds/{number}")
        async def refund_query(number: str, request: Request) -> Response:
            if refusal := await self._refusal(request):
                return refusal
            made = [r for r in self.refunds if r["out_refund_no"] == number]
            if not made:
                return self._answer(404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"})
            return self._answer(200, {**made[0], "status": "SUCCESS"})

        return app

    # --- the buyer and the notifications ------------------------------------------------------

    def transaction(self, number: str, **overrides: Any) -> dict[str, Any]:
        """WeChat's view of an order, as queries answer it and notifications carry it."""
        order = self.orders[number]
        total = order["amount"]["total"]
        return {
            "mchid": order["mchid"],
            "appid": order["appid"],
            "out_trade_no": number,
            "transaction_id": order["transaction_id"],
            "trade_type": TRADE_TYPES[order["kind"]],
            "trade_state": order["trade_state"],
            "trade_state_desc": "支付成功" if order["trade_state"] == "SUCCESS" else "未支付",
            "bank_type": "OTHERS",
            "success_time": "2026-01-01T12:00:00+08:00",
            "payer": {"openid": _openid_of(order) or "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
            **overrides,
        }

    def notification(
        self,
        transaction: dict[str, Any],
        *,
        signing_key: rsa.RSAPrivateKey | None = None,
        apiv3_key: str | None = None,
        timestamp: int | None = None,
        serial: str = PUBLIC_KEY_ID,
    ) -> Notification:
        """A TRANSACTION.SUCCESS notification of ``transaction``: encrypted, then signed over the exact body."""
        nonce = secrets.token_hex(6)
        plain = json.dumps(transaction, ensure_ascii=False).encode()
        ciphertext = AESGCM((apiv3_key or self.apiv3_key).encode()).encrypt(nonce.encode(), plain, b"transaction")
        envelope = {
            "id": f"EV-{secrets.token_hex(8)}",
            "create_time": "2026-01-01T12:00:01+08:00",
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode(),
                "associated_data": "transaction",
                "nonce": nonce,
            },
        }
        body = json.dumps(envelope, ensure_ascii=False).encode()
        headers = wechat_headers(signing_key or self.wechat_key, body, timestamp=timestamp, serial=serial)
        return Notification({**headers, "Content-Type": "application/json"}, body)

    async def send(self, url: str, notification: Notification) -> httpx.Response:
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(url, content=notification.body, headers=notification.headers)

    def buyer_pays(self, number: str) -> dict[str, Any]:
        """The buyer pays the order at WeChat; its transaction, now SUCCESS."""
        self.orders[number]["trade_state"] = "SUCCESS"
        return self.transaction(number)

    async def pay(self, number: str) -> tuple[httpx.Response, Notification]:
        """The buyer pays and WeChat notifies the order's ``notify_url``; the gateway's reply and what was sent."""
        notification = self.notification(self.buyer_pays(number))
        return await self.send(self.orders[number]["notify_url"], notification), notification

    def start(self) -> FakeWxPay:
        self.thread = ServerThread(self.app()).start()
        return self

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.stop()


@contextmanager
def running_fake_wxpay() -> Iterator[FakeWxPay]:
    fake = FakeWxPay().start()
    try:
        yield fake
    finally:
        fake.stop()
