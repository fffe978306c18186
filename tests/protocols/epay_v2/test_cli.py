"""``openepay merchant set-rsa`` and ``openepay platform public-key``, as an operator runs them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.support.cli import openepay
from tests.support.epay import signed as md5_signed
from tests.support.epay_v2 import V2Merchant, bare_body, load_platform_key, platform_signed


def set_rsa(database_url: str, pid: int, key_file: Path, *flags: str):  # type: ignore[no-untyped-def]
    return openepay(database_url, "merchant", "set-rsa", str(pid), "--public-key", str(key_file), *flags)


async def info(server, params: dict[str, str]) -> dict:
    async with server.client() as client:
        return (await client.post("/api/merchant/info", data=params)).json()


def md5_info_request(merchant) -> dict[str, str]:
    return md5_signed({"pid": str(merchant.pid), "timestamp": str(int(time.time()))}, merchant.key)


async def test_set_rsa_from_rainbows_bare_base64_and_rsa_only(
    server, gateway, merchant, merchant_private_key, database_url, tmp_path
):
    v2 = V2Merchant(merchant.pid, merchant.key, merchant_private_key)
    assert (await info(server, v2.request({})))["msg"] == "签名校验失败，商户公钥错误"
    key_file = tmp_path / "merchant_public.txt"
    key_file.write_text(bare_body(v2.public_pem) + "\n")
    result = await openepay(
        database_url, "merchant", "set-rsa", str(merchant.pid), "--public-key", str(key_file), "--rsa-only"
    )
    assert result.returncode == 0, result.stderr
    assert "RSA public key set (2048 bits)" in result.stdout and "refused (RSA only)" in result.stdout
    stored = await gateway.merchants.get(merchant.pid)
    assert stored.rsa_public_key == v2.public_pem and stored.rsa_only is True
    assert (await info(server, v2.request({})))["code"] == 0
    assert await info(server, md5_info_request(merchant)) == {"code": -3, "msg": "该商户只能使用RSA签名类型"}


async def test_set_rsa_from_a_pem_file_and_allow_md5_again(server, gateway, v2, database_url, tmp_path):
    await gateway.merchants.update(v2.pid, rsa_only=True, rsa_public_key=None)
    key_file = tmp_path / "merchant_public.pem"
    key_file.write_text(v2.public_pem)
    result = await openepay(
        database_url, "merchant", "set-rsa", str(v2.pid), "--public-key", str(key_file), "--allow-md5"
    )
    assert result.returncode == 0, result.stderr
    assert "MD5-signed V2 requests: accepted" in result.stdout
    assert (await info(server, md5_info_request(v2)))["code"] == 0
    assert (await info(server, v2.request({})))["code"] == 0


async def test_set_rsa_refuses_what_is_not_a_usable_public_key(gateway, v2, database_url, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n")
    refused, missing = await asyncio.gather(
        set_rsa(database_url, v2.pid, junk), set_rsa(database_url, 424242, tmp_path / "none")
    )
    assert refused.returncode == 1
    assert "key refused: the key does not parse as a public key" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert (await gateway.merchants.get(v2.pid)).rsa_public_key == v2.public_pem
    assert missing.returncode == 1 and "cannot read" in missing.stderr


async def test_set_rsa_for_an_unknown_merchant(gateway, v2, database_url, tmp_path):
    key_file = tmp_path / "merchant_public.pem"
    key_file.write_text(v2.public_pem)
    result = await set_rsa(database_url, 424242, key_file)
    assert result.returncode == 1 and "no merchant 424242" in result.stderr


async def test_platform_public_key_as_pem_and_as_bare_base64(server, v2, database_url):
    pem, body = await asyncio.gather(
        openepay(database_url, "platform", "public-key"), openepay(database_url, "platform", "public-key", "--base64")
    )
    assert pem.returncode == body.returncode == 0, pem.stderr + body.stderr
    assert pem.stdout.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert pem.stdout.endswith("-----END PUBLIC KEY-----\n")
    assert all(len(line) <= 64 for line in pem.stdout.splitlines())
    assert body.stdout.strip() == bare_body(pem.stdout) and "\n" not in body.stdout.strip()
    answer = await info(server, v2.request({}))
    # What a merchant pastes, in either form, verifies the gateway's answers.
    assert platform_signed(load_platform_key(pem.stdout), answer)
    assert platform_signed(load_platform_key(body.stdout), answer)
