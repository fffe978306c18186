"""The shared parameter reader, ``openepay.protocols.params``: text every dialect can use and store.

A multipart body may declare its own charset; ``charset=utf-7`` turns ``+2AA-`` into a lone
surrogate. Found while fuzzing payFor: unless the reader makes that text valid UTF-8, the epay
signature check fails with ``UnicodeEncodeError`` (``mapi.php`` answered "系统繁忙" and
``submit.php`` a 503). A NUL byte is valid UTF-8 but no PostgreSQL text can hold it: the reader
refuses it once for every dialect, and each dialect says so in its own words.
"""

from __future__ import annotations

import logging

from tests.support.answers import json_answer, page_message
from tests.support.database import order_count
from tests.support.epay import order_params


def utf7_multipart(fields: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    boundary = "charsetboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode("ascii")
        for name, value in fields.items()
    ]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; charset=utf-7; boundary={boundary}"}


def surrogate_order(pid: int) -> dict[str, str]:
    params = order_params(pid, "https://shop.example.com", "UTF7-EPAY", clientip="203.0.113.9", name="+2AA-")
    return {**params, "sign": "0" * 32, "sign_type": "MD5"}


async def test_mapi_reads_a_utf7_multipart_body_without_failing(server, merchant):
    body, headers = utf7_multipart(surrogate_order(merchant.pid))
    async with server.client() as client:
        response = await client.post("/mapi.php", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"code": -1, "msg": "签名校验失败，请返回重试！"}


async def test_submit_reads_a_utf7_multipart_body_without_failing(server, merchant):
    body, headers = utf7_multipart(surrogate_order(merchant.pid))
    async with server.client() as client:
        response = await client.post("/submit.php", content=body, headers=headers)
    assert response.status_code == 200
    assert "签名校验失败，请返回重试！" in response.text


# --- NUL bytes: no database can store one, so the shared reader refuses them for every dialect ------

PAGE = "page"  # an HTML page whose one message is the expected text


def nul_requests(pid: int, key: str) -> list[tuple[str, str, dict[str, str], object]]:
    """One request per dialect endpoint with a NUL byte in a parameter, and the answer it must get."""
    return [
        ("GET", "/submit.php", {"pid": str(pid), "name": "a\x00b"}, (PAGE, "商品名称(name)不合法")),
        ("POST", "/mapi.php", {"pid": str(pid), "money": "1\x00"}, {"code": -1, "msg": "金额(money)不合法"}),
        ("POST", "/mapi.php", {"pid": str(pid), "p\x00id": "1"}, {"code": -1, "msg": "参数(p\\x00id)不合法"}),
        (
            "GET",
            "/api.php",
            {"act": "order", "pid": str(pid), "key": key, "trade_no": "1\x00"},
            {"code": -1, "msg": "参数(trade_no)不合法"},
        ),
        ("GET", "/api/pay/submit", {"pid": str(pid), "return_url": "\x00"}, (PAGE, "回调地址(return_url)不合法")),
        (
            "POST",
            "/api/pay/create",
            {"pid": str(pid), "out_trade_no": "A\x00"},
            {"code": -1, "msg": "订单号(out_trade_no)不合法"},
        ),
        ("POST", "/api/pay/query", {"pid": str(pid), "trade_no": "1\x00"}, {"code": -1, "msg": "参数(trade_no)不合法"}),
        (
            "POST",
            "/pay/mapi.php",
            {"pid": str(pid), "ext": "\x00"},
            {"code": 700, "msg": "Missing parameters", "detail": "ext must not contain NUL bytes"},
        ),
        (
            "GET",
            "/pay/submit.php",
            {"pid": str(pid), "name": "\x00"},
            (PAGE, "700: Missing parameters (name must not contain NUL bytes)"),
        ),
        (
            "POST",
            "/Home/Pay/payFor",
            {"uid": str(pid), "format": "json", "order_name": "\x00"},
            {"code": -3, "msg": "商品名称(order_name)含有非法字符"},
        ),
        ("GET", "/Home/Pay/payFor", {"uid": str(pid), "order_uid": "u\x00"}, (PAGE, "客户号(order_uid)含有非法字符")),
        (
            "POST",
            f"/vmq/{pid}/createOrder",
            {"payId": "P\x00"},
            {"code": -1, "msg": "商户订单号(payId)含有非法字符", "data": None},
        ),
        (
            "GET",
            f"/vmq/{pid}/getOrder",
            {"orderId": "\x00"},
            {"code": -1, "msg": "云端订单编号(orderId)含有非法字符", "data": None},
        ),
        (
            "POST",
            f"/vmq/{pid}/closeOrder",
            {"orderId": "1", "sign": "\x00"},
            {"code": -1, "msg": "签名(sign)含有非法字符", "data": None},
        ),
    ]


async def test_a_nul_byte_in_any_parameter_is_refused_in_the_dialects_own_words(server, merchant, gateway, caplog):
    """No dialect endpoint hands a NUL to the database (PostgreSQL fails on it); each refuses it in its own format."""
    async with server.client() as client:
        for method, path, fields, expected in nul_requests(merchant.pid, merchant.key):
            if method == "GET":
                response = await client.get(path, params=fields)
            else:
                response = await client.post(path, data=fields)
            if isinstance(expected, tuple):
                assert page_message(response) == expected[1], path
            else:
                assert json_answer(response) == expected, path
            # A NUL value in a multipart body, which goes through another parser (a name there is quoted).
            if method == "POST" and all("\x00" not in name for name in fields):
                response = await client.post(path, data=fields, files={"upload": ("a.bin", b"\x00")})
                assert json_answer(response) == expected, path
    assert await order_count(gateway, merchant.pid) == 0
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
