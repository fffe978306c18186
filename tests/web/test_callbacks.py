"""``/channels/{name}/notify``: every upstream callback is stored, so one no database can store is refused first."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from openepay.db.models import ChannelCallback


async def test_a_callback_with_a_nul_byte_is_refused_and_nothing_fails(server, gateway, caplog):
    """PostgreSQL cannot store a NUL: the callback log and the order lookup never see one."""
    async with server.client() as client:
        replies = [
            await client.get("/channels/sandbox/notify", params={"trade_no": "1\x00", "sign": "x"}),
            await client.post("/channels/sandbox/notify", data={"trade_no": "1\x00", "amount_fen": "100"}),
            await client.post("/channels/sandbox/notify", data={"x": "\x00"}, files={"f": ("a", b"")}),
            await client.post("/channels/sandbox/notify", content=b'{"trade_no": "1\x00"}'),
        ]
    for reply in replies:
        assert (reply.status_code, reply.text) == (400, "fail")
    async with gateway.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(ChannelCallback)) == 0
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
