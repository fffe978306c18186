"""Every command that writes leaves an audit entry by ``cli:<OS user>`` with before and after, shown in the console."""

from __future__ import annotations

import asyncio
import getpass
import json
import re

from sqlalchemy import select

from openepay.admin.roles import Role
from openepay.db.models import AuditEntry
from tests.support.admin import ConsoleClient, make_user
from tests.support.rainbow import openepay_in_process

UPSTREAM_KEY = "UpstreamSecret0123456789abcdefXYZ"


async def openepay(database_url: str, *args: str):  # type: ignore[no-untyped-def]
    """The command run in this process (quicker than a process each), on a thread of its own for its event loop."""
    return await asyncio.to_thread(openepay_in_process, database_url, *args)


async def test_cli_writes_are_audited_with_before_and_after_and_never_a_key(server, gateway, database_url, tmp_path):
    created = await openepay(database_url, "merchant", "create", "--name", "CLI Shop", "--json")
    assert created.exit_code == 0, created.output
    made = json.loads(created.stdout)
    pid, first_key = made["pid"], made["key"]
    assert (await openepay(database_url, "merchant", "set", str(pid), "--pay-types", "alipay")).exit_code == 0
    rotated = await openepay(database_url, "merchant", "rotate-key", str(pid))
    new_key = re.search(r"^key: (\w+)$", rotated.stdout, re.M).group(1)
    assert (await openepay(database_url, "merchant", "disable", str(pid))).exit_code == 0
    missing = await openepay(database_url, "merchant", "set", "999999", "--allow-refund")
    assert missing.exit_code == 1 and "no merchant 999999" in missing.output
    config = tmp_path / "up.json"
    config.write_text(json.dumps({"api_url": "https://up.example/", "pid": "77", "key": UPSTREAM_KEY}))
    added = await openepay(database_url, "channel", "add", "epay_upstream", "up-1", "--config", str(config))
    assert added.exit_code == 0, added.output
    assert (await openepay(database_url, "channel", "disable", "up-1")).exit_code == 0
    qr = await openepay(database_url, "qrpool", "account", "add", "wx-main", "--type", "wxpay")
    assert qr.exit_code == 0, qr.output

    async with gateway.db.session() as session:
        entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    actor = f"cli:{getpass.getuser()}"
    assert [(e.actor, e.action, e.target) for e in entries] == [
        (actor, "merchant.create", f"merchant:{pid}"),
        (actor, "merchant.set", f"merchant:{pid}"),
        (actor, "merchant.rotate_key", f"merchant:{pid}"),
        (actor, "merchant.disable", f"merchant:{pid}"),
        (actor, "channel.add", "channel:up-1"),
        (actor, "channel.disable", "channel:up-1"),
        (actor, "qrpool.account_add", "qrpool-account:1"),
    ]
    create, change, rotate, disable, channel_add, channel_disable, _ = entries
    assert create.before is None and create.after["name"] == "CLI Shop" and create.after["status"] == "active"
    assert (change.before["pay_types"], change.after["pay_types"]) == (None, ["alipay"])
    assert rotate.before == change.after and rotate.after == {**change.after, "key": "replaced"}
    assert (disable.before, disable.after) == ({"status": "active"}, {"status": "disabled"})
    assert channel_add.before is None and channel_add.after["secrets"] == ["key"]
    assert (channel_add.after["config"]["api_url"], channel_add.after["config"]["pid"]) == ("https://up.example/", "77")
    assert (channel_disable.before["enabled"], channel_disable.after["enabled"]) == (True, False)
    logged = json.dumps([(e.before, e.after) for e in entries])
    assert first_key not in logged and new_key not in logged and UPSTREAM_KEY not in logged

    admin = await make_user(gateway, "ada", Role.ADMINISTRATOR)
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(admin)
        page = (await browser.get("/admin/audit")).text
    rows = re.findall(r'<tr class="audit-row">(.*?)</tr>', page, re.S)
    assert sum(actor in row for row in rows) == 7
    assert any("merchant.set" in row and "alipay" in row for row in rows)
