"""The phones' endpoints at the site root: V免签's ``/appHeart`` and ``/appPush``.

The stock V免签 monitor app is paired with ``host/key`` and sends plain GETs:
``/appHeart?t={ms}&sign=md5(t+key)`` every 30 s and, for each payment it sees,
``/appPush?t={ms}&type={1|2}&price={Java's rendering}&sign=md5(type+price+t+key)``. The
requests carry no device id: the device is the one whose key verifies the signature.

What V免签 lacks, added without changing anything the app sees: ``t`` must be within the
push window of our clock; a replay is refused (the event key is unique and events are kept);
heartbeats cannot be replayed either (a replayed heartbeat would keep a dead phone's account
taking orders); and each device has a rate limit.

A replay is recognised by what the phone signed, not by how the request spells it. The push
signature concatenates ``type + price + t`` with nothing between them, so ``price=10.10&t=17…``
and ``price=10.1&t=017…`` carry the same signature: the event key is over that signed string
(``sha256(device id|type+price+t)``), and ``t`` is refused with a leading zero, which
``System.currentTimeMillis()`` never writes. With ``t`` in its one spelling and inside the
window, the string splits into fields one way only.

The app only logs our answer and never retries, so we answer as V免签 does,
``{"code":1,"msg":"成功"}`` or ``{"code":-1,"msg":...}``, and never with an error page.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.requests import Request

from openepay.channels.base import channel_host
from openepay.channels.qrpool import device_api
from openepay.channels.qrpool.accounts import device_keys, record_heartbeat
from openepay.channels.qrpool.device_api import rate_limit_of
from openepay.channels.qrpool.matching import CREDITED, Decision, PaymentReport, event_key, parse_amount, record_payment
from openepay.channels.qrpool.signing import heartbeat_sign, push_sign, same_sign
from openepay.core.replay import first_sighting
from openepay.db.models import QrDevice
from openepay.db.types import storable, utcnow

log = logging.getLogger(__name__)

router = APIRouter()
# Our own device API is served beside V免签's endpoints, wherever the channel mounts them: its
# routes (already under their prefix) join this router's, for the app to copy one by one
# (``include_router`` would leave one opaque entry that path dispatch cannot file).
router.routes.extend(device_api.router.routes)

# V免签's type codes.
PAY_TYPES = {"1": "wxpay", "2": "alipay"}
# Milliseconds as Java writes a long: no leading zero (another spelling of the same signed string).
MILLISECONDS = re.compile(r"[1-9][0-9]{0,15}")
MAX_PARAM_CHARS = 64
UNREADABLE = "参数含有非法字符 / a parameter holds a NUL byte"


def answer(code: int, msg: str) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg})


def refused(msg: str) -> JSONResponse:
    return answer(-1, msg)


def timestamp_problem(t: str, window_seconds: float, now: datetime) -> str | None:
    """Why ``t`` (milliseconds since the epoch) is not acceptable, or None."""
    if not MILLISECONDS.fullmatch(t):
        return f"时间戳无效 / t={t!r} is not milliseconds since the epoch"
    drift = int(t) / 1000 - now.timestamp()
    if abs(drift) > window_seconds:
        direction = "ahead of" if drift > 0 else "behind"
        return (
            f"时间戳超出允许范围 / the phone's clock is {abs(drift):.0f} s {direction} the server's "
            f"(allowed: {window_seconds:.0f} s); set both to network time"
        )
    return None


async def _signed_by(request: Request, expected: Callable[[str], str]) -> QrDevice | None:
    """The enabled device whose key produces the received signature (V免签 sends no device id)."""
    gateway = channel_host(request)
    sign = request.query_params.get("sign", "")
    for device, key in await device_keys(gateway.db, gateway.box):
        if same_sign(expected(key), sign):
            return device
    return None


class _Unreadable(Exception):
    """A parameter no database can store (a NUL byte): the stock app never sends one."""


def _params(request: Request, *names: str) -> list[str] | None:
    """The named parameters, None if one is missing or too long; raises ``_Unreadable``."""
    values = [request.query_params.get(name, "") for name in names]
    if not all(storable(value) for value in values):
        raise _Unreadable
    if any(not value or len(value) > MAX_PARAM_CHARS for value in values):
        return None
    return values


@router.get("/appHeart", include_in_schema=False)
async def app_heart(request: Request) -> JSONResponse:
    try:
        return await _heartbeat(request)
    except _Unreadable:
        return refused(UNREADABLE)
    except Exception:
        log.exception("qrpool: could not handle a heartbeat")
        return refused("服务器内部错误 / internal error, see the gateway log")


async def _heartbeat(request: Request) -> JSONResponse:
    gateway = channel_host(request)
    params = _params(request, "t", "sign")
    if params is None:
        return refused("参数不完整 / t and sign are required")
    t, _ = params
    device = await _signed_by(request, lambda key: heartbeat_sign(t, key))
    if device is None:
        log.warning("qrpool: heartbeat with a signature no device key verifies")
        return refused("签名校验不通过 / the signature matches no device key")
    if not rate_limit_of(request).allow(device.id):
        log.warning("qrpool: device %s over its rate limit", device.id)
        return refused("请求过于频繁 / too many requests from this device")
    now = utcnow()
    window = gateway.settings.qrpool_push_window_seconds
    problem = timestamp_problem(t, window, now)
    if problem is not None:
        log.warning("qrpool: heartbeat refused from device %s: %s", device.id, problem)
        return refused(problem)
    # Kept for twice the window: a t accepted at the window's far edge stays refused until it expires.
    if not await first_sighting(gateway.db, f"qrpool:heart:{device.id}", t, timedelta(seconds=2 * window)):
        return refused("重复的心跳 / this heartbeat was already received")
    await record_heartbeat(gateway.db, device.id, now)
    return answer(1, "成功")


@router.get("/appPush", include_in_schema=False)
async def app_push(request: Request) -> JSONResponse:
    try:
        return await _push(request)
    except _Unreadable:
        return refused(UNREADABLE)
    except Exception:
        log.exception("qrpool: could not handle a payment push")
        return refused("服务器内部错误 / internal error, see the gateway log")


async def _push(request: Request) -> JSONResponse:
    gateway = channel_host(request)
    params = _params(request, "t", "type", "price", "sign")
    if params is None:
        return refused("参数不完整 / t, type, price and sign are required")
    t, type_code, price, _ = params
    device = await _signed_by(request, lambda key: push_sign(type_code, price, t, key))
    if device is None:
        log.warning("qrpool: payment push with a signature no device key verifies")
        return refused("签名校验不通过 / the signature matches no device key")
    # Over the limit a push is still stored, unmatched: the app never retries, and the money may be real.
    within_rate = rate_limit_of(request).allow(device.id)
    if not within_rate:
        log.warning(
            "qrpool: device %s over its rate limit, type=%r price=%r kept for review", device.id, type_code, price
        )

    now = utcnow()
    pay_type = PAY_TYPES.get(type_code)
    amount_fen = parse_amount(price)
    problems = (
        None if within_rate else "请求过于频繁 / too many requests from this device, not matched",
        timestamp_problem(t, gateway.settings.qrpool_push_window_seconds, now),
        None if pay_type else f"未知的支付类型 / type={type_code!r}: 1 is WeChat Pay, 2 is Alipay",
        None if amount_fen else f"金额无效 / price={price!r} is not a positive amount in yuan",
    )
    report = PaymentReport(
        event_key=event_key(device.id, type_code + price + t),
        source="vmq",
        device=device,
        pay_type=pay_type,
        amount_fen=amount_fen,
        amount_text=price,
        # The stock app pushes the moment it sees the payment and never queues: our clock is
        # the payment's time, the phone's ``t`` only proves the request is fresh.
        occurred_at=now,
        payload=urlencode({"t": t, "type": type_code, "price": price}),
        refusal=next((problem for problem in problems if problem), None),
    )
    outcome = await record_payment(gateway.db, gateway.settings, report)
    if outcome.repeated:
        log.warning("qrpool: repeated payment push from device %s (event %s)", device.id, outcome.event_id)
        return refused(f"重复推送 / this push was already received (event {outcome.event_id}), ignored")
    if outcome.decision is Decision.REJECTED:
        return refused(f"{outcome.reason} (event {outcome.event_id}, kept for review)")
    if outcome.decision in CREDITED:
        return answer(1, "成功")
    return answer(1, f"已记录，待人工处理 / recorded for review: {outcome.reason}")
