"""A fake Alipay OpenAPI gateway on loopback: real HTTP, real RSA2 both ways, real signed notifications.

It holds the application's public key (to check every request our gateway signs: a bad
signature or another app id gets the ``error_response`` Alipay sends) and an "Alipay" private
key of its own (to sign its answers and notifications; the test gives our account its public
half). The signing rules are written out here again, independently of the gateway's code, so
a mistake on either side fails the tests instead of agreeing with itself.

- ``alipay.trade.precreate`` answers a ``qr_code``; until ``scan`` (or ``pay``) the trade does
  not exist for query and close (``ACQ.TRADE_NOT_EXIST``), as on the real gateway.
- ``alipay.trade.page.pay`` / ``wap.pay`` arrive as the buyer's browser: a cashier page with a
  pay button, which pays, notifies and returns the browser to ``return_url``.
- ``query``, ``close``, ``refund`` (idempotent by ``out_request_no``) and
  ``fastpay.refund.query`` follow Alipay's answers. ``refund_mode`` makes refunds misbehave on
  cue: ``hang`` refunds and then answers too late, ``system_error`` answers ``20000`` without
  refunding.
- ``pay`` marks a trade paid and POSTs the signed notification to its ``notify_url``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.requests import Request

from tests.support.servers import ServerThread

BEIJING = timezone(timedelta(hours=8))


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_base64(key: rsa.RSAPrivateKey) -> str:
    """The public key as the Alipay console shows it: bare base64 of the SubjectPublicKeyInfo."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def rsa2(key: rsa.RSAPrivateKey, content: str) -> str:
    return base64.b64encode(key.sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def sign_notification(fields: dict[str, str], key: rsa.RSAPrivateKey) -> dict[str, str]:
    """A notification as Alipay signs it: all fields but sign and sign_type, sorted, empty ones kept."""
    content = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k not in ("sign", "sign_type"))
    return {**fields, "sign_type": "RSA2", "sign": rsa2(key, content)}


# The names Alipay's certificates carry, written out as the issuer string its SN rule reads.
ROOT_NAME = {
    "CN": "Ant Financial Certification Authority R1",
    "OU": "Certification Authority",
    "O": "Ant Financial",
    "C": "CN",
}


def cert_name(parts: dict[str, str]) -> x509.Name:
    oids = {"CN": NameOID.COMMON_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "O": NameOID.ORGANIZATION_NAME}
    oids["C"] = NameOID.COUNTRY_NAME
    # Stored country first, as certificates list them; the SN string reads them the other way round.
    return x509.Name([x509.NameAttribute(oids[k], parts[k]) for k in ("C", "O", "OU", "CN")])


def sn_issuer(parts: dict[str, str]) -> str:
    return ",".join(f"{k}={parts[k]}" for k in ("CN", "OU", "O", "C"))


def make_certificate(
    subject: dict[str, str], key, issuer: dict[str, str] | x509.Name, signer, serial: int, algorithm
) -> x509.Certificate:  # type: ignore[no-untyped-def]
    """A certificate; ``issuer`` as CN/OU/O/C parts, or as any name the test builds itself."""
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(cert_name(subject))
        .issuer_name(cert_name(issuer) if isinstance(issuer, dict) else issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(signer, algorithm)
    )


@dataclass
class AlipayCertificates:
    """Certificate mode: what the console hands the operator, and the SNs Alipay expects back."""

    app_cert: str
    alipay_cert: str
    alipay_root_cert: str
    app_cert_sn: str
    alipay_cert_sn: str
    alipay_root_cert_sn: str


def issue_certificates(app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPrivateKey) -> AlipayCertificates:
    """A root bundle (an RSA root, and an EC root standing in for the SM2 one the SN skips) and two certificates."""
    root_key = new_key()
    root_serial = secrets.randbits(64)
    root = make_certificate(ROOT_NAME, root_key, ROOT_NAME, root_key, root_serial, hashes.SHA256())
    ec_name = {**ROOT_NAME, "CN": "Ant Financial Certification Authority E1"}
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_root = make_certificate(ec_name, ec_key, ec_name, ec_key, 0x77, hashes.SHA256())
    app_serial, alipay_serial = secrets.randbits(64), secrets.randbits(64)
    app = make_certificate(
        {**ROOT_NAME, "CN": "2021000123456789"}, app_key, ROOT_NAME, root_key, app_serial, hashes.SHA256()
    )
    alipay = make_certificate(
        {**ROOT_NAME, "CN": "支付宝(中国)网络技术有限公司"},
        alipay_key,
        ROOT_NAME,
        root_key,
        alipay_serial,
        hashes.SHA256(),
    )

    def pem(cert: x509.Certificate) -> str:
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def sn(serial: int) -> str:
        return hashlib.md5((sn_issuer(ROOT_NAME) + str(serial)).encode()).hexdigest()

    return AlipayCertificates(
        app_cert=pem(app),
        alipay_cert=pem(alipay),
        alipay_root_cert=pem(root) + pem(ec_root),
        app_cert_sn=sn(app_serial),
        alipay_cert_sn=sn(alipay_serial),
        alipay_root_cert_sn=sn(root_serial),
    )


@dataclass
class Trade:
    out_trade_no: str
    total_amount: str
    subject: str
    notify_url: str
    method: str
    trade_no: str
    status: str = "WAIT_BUYER_PAY"
    scanned: bool = False
    return_url: str = ""
    buyer_logon_id: str = ""
    refunds: dict[str, str] = field(default_factory=dict)

    @property
    def refunded(self) -> Decimal:
        return sum((Decimal(amount) for amount in self.refunds.values()), Decimal("0"))


class FakeAlipay:
    def __init__(self, app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPrivateKey, app_id: str = "2021000123456789"):
        self.app_id = app_id
        self.app_key = app_key
        self.alipay_key = alipay_key
        self.trades: dict[str, Trade] = {}
        self.calls: list[str] = []
        self.refused: list[str] = []
        self.refund_mode = "ok"
        self.hang_seconds = 3.0
        # Certificate mode: every request must name these certificates, and answers name Alipay's.
        self.certificates: AlipayCertificates | None = None
        self.thread: ServerThread | None = None

    # --- what the test gives our gateway -----------------------------------------------------

    @property
    def url(self) -> str:
        assert self.thread is not None
        return self.thread.url

    def account_config(self, **overrides: object) -> dict[str, object]:
        config: dict[str, object] = {
            "app_id": self.app_id,
            "app_private_key": private_pem(self.app_key),
            "gateway_url": self.url + "/gateway.do",
        }
        if self.certificates is None:
            config["alipay_public_key"] = public_base64(self.alipay_key)
        else:
            config.update(
                app_cert=self.certificates.app_cert,
                alipay_cert=self.certificates.alipay_cert,
                alipay_root_cert=self.certificates.alipay_root_cert,
            )
        return {**config, **overrides}

    # --- the buyer ---------------------------------------------------------------------------

    def scan(self, out_trade_no: str) -> Trade:
        trade = self.trades[out_trade_no]
        trade.scanned = True
        return trade

    def notification(self, trade: Trade, **overrides: str) -> dict[str, str]:
        now = datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        fields = {
            "notify_time": now,
            "notify_type": "trade_status_sync",
            "notify_id": secrets.token_hex(16),
            "charset": "utf-8",
            "version": "1.0",
            "app_id": self.app_id,
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "out_biz_no": "",
            "buyer_id": "2088102177846880",
            "buyer_logon_id": trade.buyer_logon_id or "bu***@example.com",
            "seller_id": "2088102177649450",
            "trade_status": "TRADE_SUCCESS",
            "total_amount": trade.total_amount,
            "receipt_amount": trade.total_amount,
            "buyer_pay_amount": trade.total_amount,
            "subject": trade.subject,
            "gmt_create": now,
            "gmt_payment": now,
            **overrides,
        }
        return sign_notification(fields, self.alipay_key)

    async def pay(self, out_trade_no: str) -> httpx.Response:
        """The buyer pays: the trade succeeds and Alipay notifies ``notify_url``; our gateway's answer is returned."""
        trade = self.scan(out_trade_no)
        trade.status = "TRADE_SUCCESS"
        trade.buyer_logon_id = "bu***@example.com"
        return await self.send(trade.notify_url, self.notification(trade))

    @staticmethod
    async def send(notify_url: str, fields: dict[str, str]) -> httpx.Response:
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(
                notify_url,
                content=urlencode(fields),
                headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            )

    # --- the gateway -------------------------------------------------------------------------

    def _answer(self, method: str, result: dict[str, Any], *, signed: bool = True) -> Response:
        inner = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
        key = method.replace(".", "_") + "_response"
        cert = f',"alipay_cert_sn":"{self.certificates.alipay_cert_sn}"' if self.certificates else ""
        signature = f',"sign":"{rsa2(self.alipay_key, inner)}"' if signed else ""
        body = f'{{"{key}":{inner}{cert}{signature}}}'
        return Response(body, media_type="application/json;charset=utf-8")

    def _success(self, method: str, trade: Trade, **fields: str) -> Response:
        base = {"code": "10000", "msg": "Success", "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}
        return self._answer(method, {**base, **fields})

    def _error(self, sub_code: str, sub_msg: str) -> Response:
        result = {"code": "40002", "msg": "Invalid Arguments", "sub_code": sub_code, "sub_msg": sub_msg}
        return Response(json.dumps({"error_response": result}), media_type="application/json;charset=utf-8")

    def _refusal(self, method: str, sub_code: str, sub_msg: str) -> Response:
        return self._answer(
            method, {"code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_msg}
        )

    def _request_valid(self, params: dict[str, str]) -> str | None:
        """What is wrong with a request, as Alipay's gateway would say, or None."""
        if params.get("app_id") != self.app_id:
            return "isv.invalid-app-id"
        if params.get("sign_type") != "RSA2":
            return "isv.invalid-signature-type"
        if self.certificates is not None and (
            params.get("app_cert_sn") != self.certificates.app_cert_sn
            or params.get("alipay_root_cert_sn") != self.certificates.alipay_root_cert_sn
        ):
            return "isv.invalid-app-cert-sn"
        content = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")
        try:
            self.app_key.public_key().verify(
                base64.b64decode(params.get("sign", "")), content.encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, ValueError):
            return "isv.invalid-signature"
        return None

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/gateway.do", methods=["GET", "POST"])
        async def gateway(request: Request) -> Response:
            params = {k: str(v) for k, v in request.query_params.items()}
            if request.method == "POST":
                params.update({k: str(v) for k, v in (await request.form()).items()})
            method = params.get("method", "")
            problem = self._request_valid(params)
            if problem is not None:
                self.refused.append(f"{method}: {problem}")
                if request.method == "GET":
                    return HTMLResponse(f"<p>错误代码 {problem}</p>", status_code=200)
                return self._error(problem, "验签出错" if problem == "isv.invalid-signature" else "参数无效")
            self.calls.append(method)
            biz = json.loads(params.get("biz_content") or "{}")
            handler = {
                "alipay.trade.precreate": self._precreate,
                "alipay.trade.query": self._query,
                "alipay.trade.close": self._close,
                "alipay.trade.refund": self._refund,
                "alipay.trade.fastpay.refund.query": self._refund_query,
            }.get(method)
            if method in ("alipay.trade.page.pay", "alipay.trade.wap.pay"):
                return self._cashier(method, params, biz)
            if handler is None:
                return self._error("isv.invalid-method", "不存在的方法名")
            return await handler(method, params, biz)

        @app.post("/__fake__/pay/{out_trade_no}")
        async def pay(out_trade_no: str) -> Response:
            trade = self.trades[out_trade_no]
            answer = await self.pay(out_trade_no)
            if answer.text != "success":
                return HTMLResponse(f"notify answered {answer.text!r}", status_code=502)
            return RedirectResponse(trade.return_url, status_code=303)

        return app

    def _new_trade(self, method: str, params: dict[str, str], biz: dict[str, Any]) -> Trade:
        out_trade_no = str(biz["out_trade_no"])
        trade = self.trades.get(out_trade_no)
        if trade is None:
            number = datetime.now(BEIJING).strftime("%Y%m%d") + "2200" + f"{len(self.trades) + 1:012d}"
            trade = Trade(
                out_trade_no=out_trade_no,
                total_amount=str(biz["total_amount"]),
                subject=str(biz.get("subject", "")),
                notify_url=params.get("notify_url", ""),
                method=method,
                trade_no=number,
                return_url=params.get("return_url", ""),
            )
            self.trades[out_trade_no] = trade
        return trade

    async def _precreate(self, method: str, params: dict[str, str], biz: dict[str, Any]) -> Response:
        if any(char in str(biz.get("subject", "")) for char in "/=&"):
            return self._refusal(method, "ACQ.INVALID_PARAMETER", "参数无效：subject 不可使用特殊字符")
        trade = self._new_trade(method, params, biz)
        return self._answer(
            method,
            {
                "code": "10000",
                "msg": "Success",
                "out_trade_no": trade.out_trade_no,
                "qr_code": f"https://qr.alipay.com/bax{trade.trade_no[-12:]}",
            },
        )

    def _cashier(self, method: str, params: dict[str, str], biz: dict[str, Any]) -> Response:
        trade = self._new_trade(method, params, biz)
        trade.scanned = True
        page = (
            f"<html><head><title>支付宝 - 收银台</title></head><body><h1>{html.escape(trade.subject)}</h1>"
            f'<p id="amount">{html.escape(trade.total_amount)}</p>'
            f'<p id="product">{html.escape(biz["product_code"])}</p>'
            f'<form method="post" action="/__fake__/pay/{html.escape(trade.out_trade_no)}">'
            '<button type="submit" id="pay">确认付款</button></form></body></html>'
        )
        return HTMLResponse(page)

    def _visible(self, biz: dict[str, Any]) -> Trade | None:
        trade = self.trades.get(str(biz.get("out_trade_no", "")))
        return trade if trade is not None and trade.scanned else None

    async def _query(self, method: str, params: dict[str, str], biz: dict[str, Any]) -> Response:
        trade = self._visible(biz)
        if trade is None:
            return self._refusal(method, "ACQ.TRADE_NOT_EXIST", "交易不存在")
        return self._success(
            method,
            trade,
            trade_status=trade.status,
            total_amount=trade.total_amount,
            buyer_logon_id=trade.buyer_logon_id,
        )

    async def _close(self, method: str, params: dict[str, str], biz: dict[str, Any]) -> Response:
        trade = self._visible(biz)
        if trade is None:
            return self._refusal(method, "ACQ.TRADE_NOT_EXIST", "交易不存在")
        if trade.status != "WAIT_BUYER_PAY":
            return self._refusal(method, "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        trade.status = "TRADE_CLOSED"
        return self._success(method, trade)

    async def _refund(self, method: str, params: dict[str, str], biz: dict[str, Any]) -> Response:
        trade = self._visible(biz)
        if trade is None:
            return self._refusal(method, "ACQ.TRADE_NOT_EXIST", "交易不存在")
        if trade.status not in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            return self._refusal(method, "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if self.refund_mode == "system_error":
            self.refund_mode = "ok"
            return self._answer(
                method, {"code": "20000", "msg": "Service Currently Unavailable", "sub_code": "isp.unknow-error"}
            )
        request_no = str(biz.get("out_request_no") or trade.out_trade_no)
        amount = str(biz["refund_amount"])
        fund_change = "N"
        if request_no in trade.refunds:
            if Decimal(trade.refunds[request_no]) != Decimal(amount):
                return self._refusal(method, "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额与原退款请求不一致")
        elif trade.refunded + Decimal(amount) > Decimal(trade.total_amount):
            return self._refusal(method, "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
        else:
            trade.refunds[request_no] = amount
            fund_change = "Y"
        if self.refund_mode == "hang":
            self.refund_mode = "ok"
            await asyncio.sleep(self.hang_seconds)
        return self._success(
            method,
            trade,
            buyer_logon_id=trade.buyer_logon_id,
            fund_change=fund_change,
            refund_fee=f"{trade.refunded:.2f}",
        )

    async def _refund_query(self, method: str, params: dict[str, str], biz: dict[str, Any]) -> Response:
        trade = self._visible(biz)
        request_no = str(biz.get("out_request_no", ""))
        if trade is None or request_no not in trade.refunds:
            # Alipay's way of saying "no such refund": a success with no refund in it.
            return self._answer(method, {"code": "10000", "msg": "Success"})
        return self._success(
            method,
            trade,
            out_request_no=request_no,
            total_amount=trade.total_amount,
            refund_amount=trade.refunds[request_no],
            refund_status="REFUND_SUCCESS",
        )

    def start(self) -> FakeAlipay:
        self.thread = ServerThread(self.app()).start()
        return self

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.stop()
