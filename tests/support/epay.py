"""Building signed epay requests the way merchant plugins do."""

from __future__ import annotations

from tests.support.merchant import plugin_sign


def signed(params: dict[str, str], key: str) -> dict[str, str]:
    return {**params, "sign": plugin_sign(params, key), "sign_type": "MD5"}


def order_params(pid: int, merchant_url: str, out_trade_no: str, **overrides: str) -> dict[str, str]:
    params = {
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
