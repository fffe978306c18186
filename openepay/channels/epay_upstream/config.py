"""What an operator configures for an account at an upstream epay gateway.

Everything comes from the upstream's merchant panel: its API address, the merchant id (pid)
and the merchant key. ``mode`` says how orders are created there: ``mapi`` asks the upstream's
``mapi.php`` from our server and hands the buyer what it answers; ``submit`` sends the buyer's
browser to the upstream's ``submit.php`` (for upstreams that do not open ``mapi.php``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr, field_validator

from openepay.channels.base import ChannelConfig, config_field


class EpayUpstreamConfig(ChannelConfig):
    api_url: str = config_field(
        "接口地址",
        "API URL",
        help="The upstream's base address, e.g. https://pay.example.com/ (mapi.php, submit.php and api.php live there)",
    )
    pid: str = config_field("商户ID", "Merchant ID (pid)", help="Your merchant id at the upstream")
    key: SecretStr = config_field("商户密钥", "Merchant key", secret=True, help="Your MD5 merchant key at the upstream")
    mode: Literal["mapi", "submit"] = config_field(
        "下单方式", "Ordering mode", default="mapi", help="mapi: server-to-server (mapi.php); submit: page jump"
    )
    paid_status: int = config_field(
        "已支付状态值",
        "Paid status value",
        default=1,
        help="The api.php order status that means paid (1 on Rainbow Epay; a few forks use 2)",
    )
    refund_success_code: int = config_field(
        "退款成功返回码",
        "Refund success code",
        default=0,
        help="The code api.php?act=refund answers on success (0 on Rainbow Epay, 1 on OpenEpay and some forks)",
    )

    @field_validator("api_url")
    @classmethod
    def _http_base(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
            raise ValueError("must be an http(s) address such as https://pay.example.com/")
        return value if value.endswith("/") else value + "/"

    @field_validator("pid")
    @classmethod
    def _pid(cls, value: str) -> str:
        value = value.strip()
        if not value or len(value) > 32:
            raise ValueError("must be 1 to 32 characters")
        return value
