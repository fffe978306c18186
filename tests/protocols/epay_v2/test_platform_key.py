"""The gateway's V2 key pair: made on first need, sealed at rest, one per database however many processes race."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from openepay.db import Database
from openepay.db.models import PlatformKey
from openepay.protocols.epay_v2.platform_key import forget_loaded, platform_key
from openepay.secretbox import SecretBox, SecretBoxError
from tests.support.cli import openepay
from tests.support.epay_v2 import load_platform_key, pem_of, platform_signed
from tests.support.settings import TEST_SECRET

CONTEXT = "platform-key:epay_v2"


async def stored_rows(gateway) -> list[PlatformKey]:
    async with gateway.db.session() as session:
        return list((await session.scalars(select(PlatformKey))).all())


async def test_made_on_first_need_sealed_at_rest_and_used_by_the_running_gateway(server, gateway, database_url, v2):
    assert await stored_rows(gateway) == []
    printed = await openepay(database_url, "platform", "public-key")
    assert printed.returncode == 0, printed.stderr
    [row] = await stored_rows(gateway)
    assert row.name == "epay_v2"
    assert row.public_pem.strip() == printed.stdout.strip()

    private_pem = SecretBox(TEST_SECRET).open(row.private_sealed, CONTEXT)
    # Not one line of the key (its header, or any 64 characters of it) is stored as it is.
    assert not [line for line in private_pem.splitlines() if line and line in row.private_sealed]
    private_key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert private_key.key_size == 2048
    assert pem_of(private_key.public_key()) == row.public_pem
    with pytest.raises(SecretBoxError):
        SecretBox("another-secret").open(row.private_sealed, CONTEXT)
    with pytest.raises(SecretBoxError):
        SecretBox(TEST_SECRET).open(row.private_sealed, "platform-key:other")

    # The web app, which had not needed the key yet, signs with the one the CLI made.
    async with server.client() as client:
        answer = (await client.post("/api/merchant/info", data=v2.request({}))).json()
    assert answer["code"] == 0
    assert platform_signed(load_platform_key(printed.stdout), answer)
    assert len(await stored_rows(gateway)) == 1


async def test_processes_racing_on_an_empty_table_agree_on_one_key(gateway, database_url):
    printed = await asyncio.gather(*(openepay(database_url, "platform", "public-key", "--base64") for _ in range(2)))
    assert all(result.returncode == 0 for result in printed), [result.stderr for result in printed]
    assert len({result.stdout for result in printed}) == 1
    [row] = await stored_rows(gateway)
    assert load_platform_key(printed[0].stdout).public_numbers() == load_platform_key(row.public_pem).public_numbers()


async def test_connections_racing_in_one_process_agree_on_one_key(gateway, database_url):
    forget_loaded()
    databases = [Database(database_url) for _ in range(4)]
    try:
        keys = await asyncio.gather(*(platform_key(db, gateway.box) for db in databases))
    finally:
        for db in databases:
            await db.dispose()
    assert len({key.public_pem for key in keys}) == 1
    [row] = await stored_rows(gateway)
    assert row.public_pem == keys[0].public_pem


async def test_loaded_once_then_kept_for_the_process(gateway):
    first = await platform_key(gateway.db, gateway.box)
    async with gateway.db.session() as session:
        await session.execute(PlatformKey.__table__.delete())
    assert await platform_key(gateway.db, gateway.box) is first


async def test_a_wrong_secret_key_is_a_clear_error_not_a_new_key(gateway, database_url):
    made = await platform_key(gateway.db, gateway.box)
    refused = await openepay(database_url, "platform", "public-key", OPENEPAY_SECRET_KEY="not-the-right-one")
    assert refused.returncode == 1
    assert "OPENEPAY_SECRET_KEY" in refused.stderr and "Traceback" not in refused.stderr
    assert refused.stdout == ""
    [row] = await stored_rows(gateway)
    assert row.public_pem == made.public_pem
