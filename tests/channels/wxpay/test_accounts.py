"""A WeChat Pay account as an operator adds it: PEM keys pasted into TOML, checked live, secrets never shown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import openepay_cli
from tests.support.fake_wxpay import FakeWxPay, running_fake_wxpay


@pytest.fixture(scope="module")
def wechat() -> Iterator[FakeWxPay]:
    with running_fake_wxpay() as fake:
        yield fake


def toml_file(path: Path, values: dict[str, object]) -> Path:
    """The account as an operator writes it: PEM keys as TOML multi-line literal strings."""
    lines = []
    for name, value in values.items():
        text = str(value)
        lines.append(f"{name} = '''\n{text}'''" if "\n" in text else f"{name} = {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_an_account_is_added_from_toml_tested_live_and_shown_without_its_secrets(
    gateway, database_url, tmp_path, wechat
):
    config = wechat.account_config()
    added = await openepay_cli(
        database_url, "channel", "add", "wxpay", "wx-main", "--config", str(toml_file(tmp_path / "wx.toml", config))
    )
    assert added.returncode == 0, added.stderr
    assert "/channels/wxpay/" in added.stdout

    tested = await openepay_cli(database_url, "channel", "test", "wx-main")
    assert (tested.returncode, tested.stdout.split(":")[0]) == (0, "ok"), tested.stdout + tested.stderr

    shown = await openepay_cli(database_url, "channel", "show", "wx-main")
    assert "config merchant_private_key: set" in shown.stdout and "config apiv3_key: set" in shown.stdout
    assert f"config mchid: {config['mchid']}" in shown.stdout
    private_body = str(config["merchant_private_key"]).splitlines()[1]
    for output in (added.stdout, tested.stdout, shown.stdout, shown.stderr, tested.stderr):
        assert private_body not in output and str(config["apiv3_key"]) not in output


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (
            {"merchant_private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"},
            "apiclient_key.pem",
        ),
        ({"apiv3_key": "too-short"}, "exactly 32 characters"),
        ({"platform_public_key": "garbage"}, "pub_key.pem"),
        ({"api_base": "ftp://api.example"}, "http(s) address"),
    ],
)
async def test_a_wrong_setting_is_refused_with_what_to_fix(gateway, database_url, tmp_path, wechat, change, complaint):
    path = toml_file(tmp_path / "wx.toml", wechat.account_config(**change))
    refused = await openepay_cli(database_url, "channel", "add", "wxpay", "wx-bad", "--config", str(path))
    assert refused.returncode == 1
    assert complaint in refused.stderr
    assert "Traceback" not in refused.stderr
