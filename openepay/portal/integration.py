"""What the integration page lists: each dialect's endpoints on this gateway and a request to start from.

Examples carry the merchant's pid and a placeholder for the key, never the key itself: the
portal shows a key only once, on the page that made it.
"""

from __future__ import annotations

from dataclasses import dataclass

KEY_PLACEHOLDER = "YOUR_MERCHANT_KEY"


@dataclass(frozen=True)
class Dialect:
    name: str
    title: str
    endpoints: list[tuple[str, str]]
    example: str


def _epay(base: str, pid: int) -> str:
    return f"""<?php
$key = '{KEY_PLACEHOLDER}';
$fields = ['pid' => '{pid}', 'type' => 'alipay', 'out_trade_no' => 'A' . time(),
    'notify_url' => 'https://shop.example.com/pay/notify', 'return_url' => 'https://shop.example.com/pay/return',
    'name' => 'VIP', 'money' => '9.90'];
ksort($fields);
$pairs = [];
foreach ($fields as $k => $v) {{ if ($v !== '') $pairs[] = "$k=$v"; }}
$fields['sign'] = md5(implode('&', $pairs) . $key);
$fields['sign_type'] = 'MD5';
header('Location: {base}/submit.php?' . http_build_query($fields));"""


def _pay_mapi(base: str, pid: int) -> str:
    return (
        f"curl {base}/pay/mapi.php -d pid={pid} -d type=alipay -d out_trade_no=A1 \\\n"
        "  -d notify_url=https://shop.example.com/pay/notify -d name=VIP -d money=9.90 -d clientip=127.0.0.1 \\\n"
        f"  -d sign=MD5_OF_SORTED_FIELDS_AND_{KEY_PLACEHOLDER} -d sign_type=MD5"
    )


def _payfor(base: str, pid: int) -> str:
    return (
        f"curl {base}/Home/Pay/payFor -d uid={pid} -d price=9.90 -d type=1 -d order_id=A1 \\\n"
        "  -d notify_url=https://shop.example.com/pay/notify -d return_url=https://shop.example.com/pay/return \\\n"
        f"  -d format=json -d key=MD5_OF_VALUES_IN_NAME_ORDER_WITH_TOKEN_{KEY_PLACEHOLDER}"
    )


def _epay_v2(base: str, pid: int) -> str:
    return (
        f"curl {base}/api/pay/create -d pid={pid} -d type=alipay -d out_trade_no=A1 \\\n"
        "  -d notify_url=https://shop.example.com/pay/notify -d name=VIP -d money=9.90 -d clientip=127.0.0.1 \\\n"
        "  -d timestamp=$(date +%s) -d sign_type=RSA -d sign=SHA256withRSA_WITH_YOUR_PRIVATE_KEY"
    )


def _vmq(base: str, pid: int) -> str:
    return (
        f"curl '{base}/vmq/{pid}/createOrder?payId=A1&type=2&price=9.90&param=&isHtml=0"
        f"&sign=MD5_OF_payId_param_type_price_{KEY_PLACEHOLDER}'"
    )


def dialects(base: str, pid: int) -> list[Dialect]:
    """Every dialect this gateway speaks, addressed at ``base`` (no trailing slash), for merchant ``pid``."""
    return [
        Dialect(
            "epay",
            "彩虹易支付 Epay V1",
            [
                ("submit.php", f"{base}/submit.php"),
                ("mapi.php", f"{base}/mapi.php"),
                ("api.php", f"{base}/api.php?act=query&pid={pid}&key={KEY_PLACEHOLDER}"),
            ],
            _epay(base, pid),
        ),
        Dialect(
            "pay_mapi",
            "/pay/ (mapi)",
            [("mapi.php", f"{base}/pay/mapi.php"), ("submit.php", f"{base}/pay/submit.php")],
            _pay_mapi(base, pid),
        ),
        Dialect("payfor", "payFor (PaysApi)", [("payFor", f"{base}/Home/Pay/payFor")], _payfor(base, pid)),
        Dialect(
            "epay_v2",
            "Epay V2",
            [
                ("pay/submit", f"{base}/api/pay/submit"),
                ("pay/create", f"{base}/api/pay/create"),
                ("pay/query", f"{base}/api/pay/query"),
                ("pay/refund", f"{base}/api/pay/refund"),
                ("merchant/info", f"{base}/api/merchant/info"),
            ],
            _epay_v2(base, pid),
        ),
        Dialect(
            "vmq",
            "V免签",
            [
                ("createOrder", f"{base}/vmq/{pid}/createOrder"),
                ("getOrder", f"{base}/vmq/{pid}/getOrder"),
                ("checkOrder", f"{base}/vmq/{pid}/checkOrder"),
                ("closeOrder", f"{base}/vmq/{pid}/closeOrder"),
            ],
            _vmq(base, pid),
        ),
    ]
