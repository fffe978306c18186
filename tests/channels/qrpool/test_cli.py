"""``openepay qrpool`` as an operator runs it: accounts, codes from text or pictures, phones and pairing."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import segno
from PIL import Image

from openepay.channels.qrpool import accounts
from openepay.db.types import utcnow
from tests.support.qrpool import qrpool_cli

WECHAT = "wxp://f2f0hXkQ9bA3cD4eF5gH6iJ7kL8mN9oP0qR"


def terminal_qr(content: str) -> str:
    out = io.StringIO()
    segno.make_qr(content).terminal(out=out, compact=True)
    return out.getvalue()


async def test_accounts_and_codes(gateway, database_url, tmp_path):
    added = await qrpool_cli(database_url, "account", "add", "wx-main", "--type", "wxpay")
    assert added.returncode == 0, added.stderr
    assert "'wx-main' (wxpay) added" in added.stdout
    again = await qrpool_cli(database_url, "account", "add", "wx-main", "--type", "alipay")
    assert again.returncode == 1 and "an account named 'wx-main' already exists" in again.stderr
    bank = await qrpool_cli(database_url, "account", "add", "bank", "--type", "bank")
    assert bank.returncode == 1 and "pay type must be one of wxpay, alipay, qqpay" in bank.stderr

    picture = tmp_path / "收款码.png"
    segno.make_qr(WECHAT).save(picture, scale=6)
    from_image = await qrpool_cli(database_url, "code", "add", "wx-main", "--image", str(picture))
    assert from_image.returncode == 0, from_image.stderr
    assert f"generic code added to 'wx-main': {WECHAT}" in from_image.stdout
    fixed = await qrpool_cli(database_url, "code", "add", "wx-main", "--content", "wxp://f990", "--amount", "9.9")
    assert fixed.returncode == 0 and "code for 9.90 added" in fixed.stdout

    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), "white").save(blank)
    no_code = await qrpool_cli(database_url, "code", "add", "wx-main", "--image", str(blank), "--amount", "5")
    assert no_code.returncode == 1 and "no QR code found in the image" in no_code.stderr
    both = await qrpool_cli(database_url, "code", "add", "wx-main", "--content", "x", "--image", str(picture))
    assert both.returncode == 1 and "exactly one of --content or --image" in both.stderr
    bad_amount = await qrpool_cli(database_url, "code", "add", "wx-main", "--content", "x", "--amount", "1.001")
    assert bad_amount.returncode == 1 and "--amount" in bad_amount.stderr

    listed = await qrpool_cli(database_url, "code", "list", "wx-main")
    assert listed.stdout.split() == ["generic", WECHAT, "9.90", "wxp://f990"]
    unknown = await qrpool_cli(database_url, "code", "list", "nope")
    assert unknown.returncode == 1 and "no receiving account 'nope'" in unknown.stderr


async def test_pairing_a_phone_and_watching_it(gateway, database_url):
    account = await accounts.create_account(gateway.db, "wx-main", "wxpay")
    with_path = await qrpool_cli(
        database_url, "device", "add", "wx-main", OPENEPAY_PUBLIC_URL="https://example.com/pay"
    )
    assert with_path.returncode == 1 and "has a path" in with_path.stderr
    assert await accounts.list_devices(gateway.db, account.id) == []

    added = await qrpool_cli(
        database_url, "device", "add", "wx-main", "--name", "红米", OPENEPAY_PUBLIC_URL="https://pay.example.com"
    )
    assert added.returncode == 0, added.stderr
    key = re.search(r"^key: ([0-9a-f]{32})$", added.stdout, re.M).group(1)
    assert f"\npairing: pay.example.com/{key}\n" in added.stdout
    assert terminal_qr(f"pay.example.com/{key}") in added.stdout
    [(device, stored_key)] = await accounts.device_keys(gateway.db, gateway.box, account.id)
    assert (device.name, stored_key) == ("红米", key)

    override = await qrpool_cli(
        database_url, "device", "add", "wx-main", "--host", "10.0.0.5:8000", OPENEPAY_PUBLIC_URL="https://x.com/pay"
    )
    assert override.returncode == 0, override.stderr
    second_key = re.search(r"^pairing: 10\.0\.0\.5:8000/([0-9a-f]{32})$", override.stdout, re.M).group(1)
    assert second_key != key

    paused = await qrpool_cli(database_url, "account", "list")
    assert re.search(r"wx-main\s+wxpay\s+0 code\(s\)\s+paused", paused.stdout)
    heartbeat_at = utcnow() - timedelta(seconds=5)
    await accounts.record_heartbeat(gateway.db, device.id, heartbeat_at)
    live = await qrpool_cli(database_url, "account", "list")
    listed_by = utcnow()
    assert re.search(r"wx-main\s+wxpay\s+0 code\(s\)\s+live", live.stdout)
    pattern = r"device \d+ '红米': last heartbeat \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \((\d+) s ago\)"
    ago = int(re.search(pattern, live.stdout).group(1))
    # However long the command took to start, the age it shows lies between 5 s and the age by its end.
    assert 5 <= ago <= (listed_by - heartbeat_at).total_seconds(), (ago, live.stdout)

    devices = await qrpool_cli(database_url, "device", "list", "wx-main")
    assert len(devices.stdout.splitlines()) == 2 and "'phone': last heartbeat never" in devices.stdout
    assert key not in devices.stdout + live.stdout and second_key not in devices.stdout

    disabled = await qrpool_cli(database_url, "account", "disable", "wx-main")
    assert disabled.returncode == 0 and "disabled" in disabled.stdout
    assert re.search(r"wx-main .* disabled$", (await qrpool_cli(database_url, "account", "list")).stdout, re.M)
    assert await accounts.live_accounts(gateway.db, "wxpay", timedelta(seconds=90)) == []

    revoked = await qrpool_cli(database_url, "device", "disable", str(device.id))
    assert revoked.returncode == 0
    assert [d.name for d, _ in await accounts.device_keys(gateway.db, gateway.box, account.id)] == ["phone"]
