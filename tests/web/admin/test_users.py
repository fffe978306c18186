"""Console users, for administrators: added in the console, disabled (their sessions end), TOTP reset."""

from __future__ import annotations

import re

from sqlalchemy import select

from openepay.admin.roles import Role
from openepay.db.models import AuditEntry
from tests.support.admin import ConsoleClient, ConsoleUser, make_user, stored_user


async def test_an_administrator_adds_a_user_disables_them_everywhere_and_resets_a_lost_totp(server, gateway):
    admin = await make_user(gateway, "ada", Role.ADMINISTRATOR)
    phone_lost = await make_user(gateway, "paul", Role.VIEWER, with_totp=True)
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(admin)
        await browser.get("/admin/users")
        weak = await browser.post("/admin/users", {"username": "olga", "password": "short", "role": "operator"})
        assert weak.status_code == 400 and "at least 10 characters" in weak.text
        bad_role = await browser.post(
            "/admin/users", {"username": "olga", "password": "long enough pw", "role": "root"}
        )
        assert bad_role.status_code == 400
        added = await browser.post(
            "/admin/users", {"username": "olga", "password": "long enough pw", "role": "operator"}
        )
        assert added.status_code == 303
        twice = await browser.post("/admin/users", {"username": "olga", "password": "long enough pw", "role": "viewer"})
        assert twice.status_code == 400 and "already a user" in twice.text

        olga = ConsoleUser("olga", "long enough pw", Role.OPERATOR)
        async with ConsoleClient(server.url) as colleague:
            assert "运营" in (await colleague.sign_in(olga)).text
            olga_id = (await stored_user(gateway, "olga")).id
            assert (await browser.post(f"/admin/users/{olga_id}/disable")).status_code == 303
            assert (await colleague.get("/admin")).status_code == 303
            assert (await colleague.submit_login(olga.username, olga.password)).status_code == 401
            assert (await browser.post(f"/admin/users/{olga_id}/enable")).status_code == 303
            await colleague.sign_in(olga)

        own = (await stored_user(gateway, "ada")).id
        refused = await browser.post(f"/admin/users/{own}/disable")
        assert refused.status_code == 409 and "不能停用自己的账户" in refused.text
        assert (await browser.post("/admin/users/99999/enable")).status_code == 404

        paul_id = (await stored_user(gateway, "paul")).id
        assert (await browser.post(f"/admin/users/{paul_id}/reset-totp")).status_code == 303
        page = await browser.get("/admin/users")
        assert re.search(r'id="user-paul">.*?<td>否</td>', page.text, re.S)
    async with ConsoleClient(server.url) as paul:
        phone_lost.totp_secret = None
        await paul.sign_in(phone_lost)
    async with gateway.db.session() as session:
        actions = (await session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "ada"))).all()
    assert list(actions) == ["user.create", "user.disable", "user.enable", "user.totp_reset"]
