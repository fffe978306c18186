"""Keeping a shop's pid and key when it moves over: ``merchant create --pid --key`` and ``merchant set-key``."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys

import httpx

from tests.support.cli import openepay
from tests.support.epay import order_params, signed
from tests.support.waiting import answering

RAINBOW_KEY = "Qx7RbT2mKp9LwZc4Nf8HjV3dYs6GaE1u"  # 32 letters and digits, as Rainbow makes them
DOCS_KEY = "DemoShopKey20261001"
DOCS_MAPI_EXAMPLE = {
    "pid": "1001",
    "type": "alipay",
    "out_trade_no": "DOC-V1-0001",
    "notify_url": "https://shop.example.com/notify.php",
    "return_url": "https://shop.example.com/return.php",
    "name": "VIP会员",
    "money": "1.00",
    "clientip": "203.0.113.7",
    "device": "pc",
    "sign": "8f26b9e22dad58ddfe8cc1fbec567105",
    "sign_type": "MD5",
}


async def submit(server, pid: int, key: str, out_trade_no: str) -> dict:
    async with server.client() as client:
        response = await client.post(
            "/mapi.php", data=signed(order_params(pid, "http://127.0.0.1:9", out_trade_no, clientip="1.2.3.4"), key)
        )
    return response.json()


async def test_a_shop_keeps_its_pid_and_key(server, database_url):
    created = await openepay(
        database_url, "merchant", "create", "--pid", "4321", "--key", RAINBOW_KEY, "--name", "老商户"
    )
    assert created.returncode == 0, created.stderr
    assert "pid: 4321" in created.stdout and RAINBOW_KEY not in created.stdout

    answer = await submit(server, 4321, RAINBOW_KEY, "KEEP-1")
    assert answer["code"] == 1, answer
    assert (await submit(server, 4321, RAINBOW_KEY[::-1], "KEEP-2"))["code"] != 1

    shown = await openepay(database_url, "merchant", "show", "4321")
    assert "name: 老商户" in shown.stdout and RAINBOW_KEY not in shown.stdout


async def test_a_taken_pid_is_refused_and_the_merchant_there_keeps_its_key(server, database_url):
    first = await openepay(database_url, "merchant", "create", "--pid", "5000", "--key", RAINBOW_KEY, "--json")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == '{"pid": 5000}'
    again = await openepay(
        database_url, "merchant", "create", "--pid", "5000", "--key", "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp"
    )
    assert again.returncode == 1 and "pid 5000 is taken" in again.stderr
    assert (await submit(server, 5000, RAINBOW_KEY, "TAKEN-1"))["code"] == 1


async def test_pids_and_keys_that_cannot_work_are_refused_with_the_reason(gateway, database_url):
    refusals = {
        ("--pid", "0", "--key", RAINBOW_KEY): "a pid is a whole number from 1",
        ("--pid", "2147483648", "--key", RAINBOW_KEY): "a pid is a whole number from 1",
        ("--pid", "7000", "--key", "short1A"): "16 to 64 characters long (this one has 7)",
        ("--pid", "7000", "--key", "a" * 32): "too easy to guess",
        ("--pid", "7000", "--key", "1234567890123456"): "too easy to guess",
        ("--pid", "7000", "--key", "key-with-dash-and+plus-012345678"): "letters and digits only",
    }
    for args, reason in refusals.items():
        refused = await openepay(database_url, "merchant", "create", *args)
        assert refused.returncode == 1, args
        assert reason in refused.stderr, (args, refused.stderr)
        assert "Traceback" not in refused.stderr
    assert "7000" not in (await openepay(database_url, "merchant", "list")).stdout


async def test_set_key_gives_the_shop_its_old_key_or_a_new_one(server, database_url):
    created = await openepay(database_url, "merchant", "create", "--name", "Shop", "--json")
    pid = int(re.search(r'"pid": (\d+)', created.stdout).group(1))

    given = await openepay(database_url, "merchant", "set-key", str(pid), "--key", RAINBOW_KEY)
    assert given.returncode == 0, given.stderr
    assert RAINBOW_KEY not in given.stdout
    assert (await submit(server, pid, RAINBOW_KEY, "SET-1"))["code"] == 1

    weak = await openepay(database_url, "merchant", "set-key", str(pid), "--key", "abcabcabcabcabcabc")
    assert weak.returncode == 1 and "too easy to guess" in weak.stderr
    assert (await submit(server, pid, RAINBOW_KEY, "SET-2"))["code"] == 1

    made = await openepay(database_url, "merchant", "set-key", str(pid))
    new_key = re.search(r"key: ([A-Za-z0-9]{32})$", made.stdout.strip()).group(1)
    assert (await submit(server, pid, new_key, "SET-3"))["code"] == 1
    assert (await submit(server, pid, RAINBOW_KEY, "SET-4"))["code"] != 1

    missing = await openepay(database_url, "merchant", "set-key", "999999", "--key", RAINBOW_KEY)
    assert missing.returncode == 1 and "no merchant 999999" in missing.stderr


async def test_the_demo_runs_the_merchant_docs_dialects_md_uses(tmp_path):
    """docs/dialects.md's examples run against `openepay demo --pid 1001 --key DemoShopKey20261001`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {name: value for name, value in os.environ.items() if not name.startswith("OPENEPAY_")}
    weak = subprocess.run(
        [sys.executable, "-m", "openepay", "demo", "--pid", "1001", "--key", "epaykey123"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert weak.returncode == 1 and "16 to 64 characters long" in weak.stderr
    assert not (tmp_path / "openepay.db").exists()

    command = [sys.executable, "-m", "openepay", "demo", "--port", str(port), "--pid", "1001", "--key", DOCS_KEY]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        lines = [await asyncio.to_thread(process.stdout.readline) for _ in range(4)]
        assert "merchant pid: 1001" in lines[2] and f"merchant key: {DOCS_KEY}" in lines[3]

        await answering(f"http://127.0.0.1:{port}/readyz")
        async with httpx.AsyncClient() as client:
            # The mapi.php example of docs/dialects.md, with the signature printed there.
            answer = await client.post(f"http://127.0.0.1:{port}/mapi.php", data=DOCS_MAPI_EXAMPLE)
        assert answer.json()["code"] == 1, answer.text
    finally:
        process.terminate()
        process.wait(timeout=20)
