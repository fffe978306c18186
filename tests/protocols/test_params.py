"""A multipart body may declare its own charset; ``charset=utf-7`` turns ``+2AA-`` into a lone surrogate.

Found while fuzzing payFor. The shared reader ``openepay.protocols.params.form_params`` hands
its text to every dialect; unless it makes that text valid UTF-8, the epay signature check fails
with ``UnicodeEncodeError`` (``mapi.php`` answered "系统繁忙" and ``submit.php`` a 503).
"""

from __future__ import annotations

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
