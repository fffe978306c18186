"""Reading a WeChat Pay v3 payment notification.

WeChat POSTs JSON ``{id, create_time, event_type, resource_type, resource{algorithm,
ciphertext, nonce, associated_data, original_type}, summary}`` with ``Wechatpay-*`` signature
headers. It is believed only if the signature verifies with this account's WeChat Pay public
key, the timestamp is within five minutes of our clock (an old genuine notification replayed
later is refused), the resource decrypts with the APIv3 key, and the transaction inside names
this account's ``mchid`` and ``appid``. The core then checks that ``out_trade_no`` is an order
of this account and that ``amount.total`` is exactly its amount in fen.

WeChat reads any 2xx as taken and retries on 4xx/5xx with ``{"code":"FAIL","message":...}``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from openepay.channels.base import CallbackOutcome, CallbackRequest, Confirmation, Reply
from openepay.channels.wxpay.client import decrypt_resource, wechat_signature_problem
from openepay.channels.wxpay.config import WxPayConfig

JSON = "application/json"
ACK = Reply(json.dumps({"code": "SUCCESS"}), 200, JSON)
# The core could not record a verified payment: WeChat should send it again later.
RETRY = Reply(json.dumps({"code": "FAIL", "message": "系统繁忙，请稍后重试"}, ensure_ascii=False), 500, JSON)


def _refused(message: str, note: str, status: int = 400, trade_no: str | None = None) -> CallbackOutcome:
    """Not believed: WeChat's failure answer, which makes a genuine sender retry later."""
    reply = Reply(json.dumps({"code": "FAIL", "message": message}, ensure_ascii=False), status, JSON)
    return CallbackOutcome(False, reply, reply, trade_no=trade_no, note=note)


def read_notification(config: WxPayConfig, request: CallbackRequest, *, now: float | None = None) -> CallbackOutcome:
    if request.method != "POST":
        return _refused("请使用POST", "not a POST", 405)
    problem = wechat_signature_problem(config, request.headers, request.body, now=time.time() if now is None else now)
    if problem is not None:
        return _refused("签名验证失败" if problem != "stale timestamp" else "通知已过期", problem, 401)
    try:
        envelope = json.loads(request.body)
        if not isinstance(envelope, dict) or not isinstance(envelope.get("resource"), dict):
            raise ValueError("no resource")
        transaction = decrypt_resource(config, envelope["resource"])
    except ValueError:
        return _refused("报文无法解密", "undecryptable resource")
    trade_no = _text(transaction.get("out_trade_no"), 64) or None
    if transaction.get("mchid") != config.mchid:
        return _refused("商户号不匹配", "another merchant's mchid", trade_no=trade_no)
    if transaction.get("appid") != config.appid:
        return _refused("AppID不匹配", "another app's appid", trade_no=trade_no)
    if envelope.get("event_type") != "TRANSACTION.SUCCESS" or transaction.get("trade_state") != "SUCCESS":
        # Signed but not a payment: taken so WeChat stops, and nothing changes.
        state = _text(transaction.get("trade_state") or envelope.get("event_type"), 20)
        return CallbackOutcome(True, ACK, RETRY, trade_no=trade_no, note=f"state {state}")
    paid_fen = _amount(transaction)
    if trade_no is None or paid_fen is None:
        return _refused("报文缺少订单号或金额", "missing out_trade_no or amount", trade_no=trade_no)
    payer = transaction.get("payer")
    confirmation = Confirmation(
        trade_no=trade_no,
        paid_fen=paid_fen,
        channel_trade_no=_text(transaction.get("transaction_id"), 64) or None,
        buyer=_text(payer.get("openid") if isinstance(payer, dict) else None, 128) or None,
    )
    return CallbackOutcome(True, ACK, RETRY, trade_no=trade_no, confirmation=confirmation)


def _amount(transaction: dict[str, Any]) -> int | None:
    amount = transaction.get("amount")
    total = amount.get("total") if isinstance(amount, dict) else None
    # bool is an int in Python; WeChat's total is a plain integer of fen.
    if type(total) is not int or total <= 0:
        return None
    return total


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""
