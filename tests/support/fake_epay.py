"""A fake upstream epay gateway on loopback, for routing tests that need an upstream to misbehave on cue.

It speaks the real wire format: ``mapi.php`` checks the MD5 signature with its merchant key and
refuses bad ones as Rainbow does; ``behaviour`` decides what a correctly signed order gets:
``ok`` (code 1 and a QR), ``refuse`` (code -1: nothing created), ``broken`` (HTTP 500 after the
order was taken: the outcome is unknown to the caller). ``api.php?act=query`` answers the
merchant's pid and key as Rainbow does. ``pay`` plays the buyer: the upstream sends its signed
``TRADE_SUCCESS`` notification to the order's ``notify_url``. ``api.php?act=refund`` refunds,
or with ``refund_behaviour`` ``broken`` fails with HTTP 502 after taking the refund (the caller
cannot know whether the buyer got the money). Everything received is kept.
"""

from __future__ import annotations

import hashlib
import secrets

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.requests import Request

from tests.support.servers import ServerThread


def md5_sign(params: dict[str, str], key: str) -> str:
    content = "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type") and params[k] != "")
    return hashlib.md5((content + key).encode()).hexdigest()


class FakeEpay:
    def __init__(self, pid: str = "2001", key: str | None = None, behaviour: str = "ok") -> None:
        self.pid = pid
        self.key = key or secrets.token_hex(16)
        self.behaviour = behaviour
        self.refund_behaviour = "ok"
        self.orders: list[dict[str, str]] = []
        self.refunds: list[dict[str, str]] = []
        self.thread: ServerThread | None = None

    @property
    def url(self) -> str:
        assert self.thread is not None
        return self.thread.url + "/"

    def account_config(self, **overrides: object) -> dict[str, object]:
        return {"api_url": self.url, "pid": self.pid, "key": self.key, **overrides}

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/mapi.php")
        async def mapi(request: Request) -> Response:
            params = {k: str(v) for k, v in (await request.form()).items()}
            if params.get("pid") != self.pid or params.get("sign") != md5_sign(params, self.key):
                return JSONResponse({"code": -1, "msg": "签名校验失败，请返回重试！"})
            if self.behaviour == "refuse":
                return JSONResponse({"code": -1, "msg": "通道维护中"})
            self.orders.append(params)
            if self.behaviour == "broken":
                return PlainTextResponse("upstream crashed after taking the order", status_code=500)
            number = f"UP{len(self.orders):06d}"
            return JSONResponse({"code": 1, "trade_no": number, "qrcode": f"https://qr.upstream.test/{number}"})

        @app.get("/api.php")
        async def api(request: Request) -> Response:
            params = dict(request.query_params)
            if params.get("pid") != self.pid or params.get("key") != self.key:
                return JSONResponse({"code": -3, "msg": "商户密钥错误"})
            if params.get("act") == "query":
                return JSONResponse({"code": 1, "pid": int(self.pid), "key": self.key, "active": 1, "money": "0.00"})
            return JSONResponse({"code": -5, "msg": "No Act!"})

        @app.post("/api.php")
        async def api_post(request: Request) -> Response:
            params = {**request.query_params, **{k: str(v) for k, v in (await request.form()).items()}}
            if params.get("pid") != self.pid or params.get("key") != self.key:
                return JSONResponse({"code": -3, "msg": "商户密钥错误"})
            if params.get("act") != "refund":
                return JSONResponse({"code": -5, "msg": "No Act!"})
            self.refunds.append(params)
            if self.refund_behaviour == "broken":
                return PlainTextResponse("Bad Gateway", status_code=502)
            return JSONResponse({"code": 0, "msg": "退款成功！", "refund_no": f"RF{len(self.refunds):06d}"})

        return app

    def number_of(self, our_trade_no: str) -> str:
        """The upstream's number for the order we placed as ``our_trade_no``."""
        [index] = [i for i, order in enumerate(self.orders) if order["out_trade_no"] == our_trade_no]
        return f"UP{index + 1:06d}"

    async def pay(self, our_trade_no: str) -> httpx.Response:
        """The buyer pays upstream, which notifies our callback URL the way Rainbow does; our answer."""
        order = next(order for order in self.orders if order["out_trade_no"] == our_trade_no)
        fields = {
            "pid": self.pid,
            "trade_no": self.number_of(our_trade_no),
            "out_trade_no": our_trade_no,
            "type": order["type"],
            "name": order["name"],
            "money": order["money"],
            "trade_status": "TRADE_SUCCESS",
        }
        params = {**fields, "sign": md5_sign(fields, self.key), "sign_type": "MD5"}
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.get(order["notify_url"], params=params)

    def start(self) -> FakeEpay:
        self.thread = ServerThread(self.app()).start()
        return self

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.stop()
