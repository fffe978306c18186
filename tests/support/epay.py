"""Building signed epay requests the way merchant plugins do, and the reference vectors of the epay notes."""

from __future__ import annotations

import hashlib
from urllib.parse import quote_plus

from tests.support.merchant import plugin_sign

# The reference requests of the epay notes (§3), signed by Rainbow under PHP 8.2; each test
# holds the signature it expects next to the assertion.
SDK_KEY = "WWc3Z2jkK7jhNGPALcGKjHLPK47wRK85"  # the SDK's sample merchant 1000
VECTOR_A = {  # mapi.php, merchant 1001 with key "123456"
    "pid": "1001",
    "type": "alipay",
    "out_trade_no": "20160806151343349",
    "notify_url": "https://www.pay.com/notify_url.php",
    "return_url": "https://www.pay.com/return_url.php",
    "name": "VIP会员",
    "money": "1.00",
    "clientip": "192.168.1.100",
    "device": "pc",
    "param": "",
    "sign_type": "md5",
}
VECTOR_B = {  # submit.php, the SDK's sample merchant
    "pid": "1000",
    "type": "alipay",
    "notify_url": "http://127.0.0.1/SDK/notify_url.php",
    "return_url": "http://127.0.0.1/SDK/return_url.php",
    "out_trade_no": "20240101120000123",
    "name": "测试商品",
    "money": "0.01",
}
VECTOR_D = {  # raw values with URL-reserved characters, key "abcdefghijklmnopqrstuvwxyz012345"
    "pid": "1001",
    "type": "wxpay",
    "out_trade_no": "ORDER-0001",
    "notify_url": "https://shop.example.com/notify?x=1",
    "return_url": "https://shop.example.com/return",
    "name": "Pro Plan 1 month",
    "money": "12.50",
    "param": "uid=42&plan=pro",
    "clientip": "203.0.113.7",
    "device": "mobile",
}
VECTOR_E = {  # a param of "0", which is signed; key "key"
    "pid": "1001",
    "type": "alipay",
    "out_trade_no": "T0",
    "notify_url": "http://a.b/n",
    "return_url": "http://a.b/r",
    "name": "n",
    "money": "0.01",
    "param": "0",
}


def signed(params: dict[str, str], key: str) -> dict[str, str]:
    return {**params, "sign": plugin_sign(params, key), "sign_type": "MD5"}


def url_encoded_signed(params: dict[str, str], key: str) -> dict[str, str]:
    """Vector D's client mistake (payshift@cf97f7b): signing ``quote_plus`` of each value."""
    content = "&".join(f"{k}={quote_plus(params[k])}" for k in sorted(params))
    return {**params, "sign": hashlib.md5((content + key).encode()).hexdigest(), "sign_type": "MD5"}


def order_params(pid: int, merchant_url: str, out_trade_no: str, **overrides: str | None) -> dict[str, str]:
    """An order as merchant plugins send it; an override of None leaves the field out."""
    params: dict[str, str | None] = {
        "pid": str(pid),
        "type": "alipay",
        "out_trade_no": out_trade_no,
        "notify_url": f"{merchant_url}/notify",
        "return_url": f"{merchant_url}/return",
        "name": "VIP会员",
        "money": "1.00",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}
