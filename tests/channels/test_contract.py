"""The channel contract as the code holds it: registration by name, one folder per channel, no upward imports."""

from __future__ import annotations

import ast
from pathlib import Path

import openepay
from openepay.channels.base import Channel, describe_config
from openepay.channels.registry import channel_classes

PACKAGE = Path(openepay.__file__).parent
CHANNEL_FILES = ("config.py", "channel.py")


def imports_of(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_every_channel_registers_by_name_and_lives_in_its_own_folder():
    classes = channel_classes()
    assert {"sandbox", "qrpool", "epay_upstream"} <= set(classes)
    for name, cls in classes.items():
        assert issubclass(cls, Channel) and cls.name == name
        folder = PACKAGE / "channels" / name
        assert all((folder / file).exists() for file in CHANNEL_FILES), name
        assert cls.__module__ == f"openepay.channels.{name}.channel"


def test_the_upstream_relay_has_the_whole_file_set():
    folder = PACKAGE / "channels" / "epay_upstream"
    assert {"config.py", "client.py", "channel.py", "callbacks.py"} <= {path.name for path in folder.iterdir()}


def test_channels_never_import_the_web_layer_or_the_gateway():
    for path in (PACKAGE / "channels").rglob("*.py"):
        modules = imports_of(path)
        assert not any(module.startswith("openepay.web") for module in modules), path
        # Operator commands living with their channel (``openepay qrpool ...``) sit above the gateway.
        if not path.name.endswith("cli.py"):
            assert "openepay.gateway" not in modules and not any(
                module.startswith("openepay.protocols") for module in modules
            ), path


def test_the_gateway_core_and_notifications_know_no_concrete_channel():
    concrete = {f"openepay.channels.{name}" for name in channel_classes()}
    paths = [
        PACKAGE / "gateway.py",
        PACKAGE / "app.py",
        *(PACKAGE / "core").rglob("*.py"),
        *(PACKAGE / "notify").rglob("*.py"),
    ]
    for path in paths:
        assert not any(module.startswith(tuple(concrete)) for module in imports_of(path)), path


def test_account_schemas_describe_their_forms_with_both_labels_and_secrets():
    described = {field["name"]: field for field in describe_config(channel_classes()["epay_upstream"].config_schema)}
    assert list(described) == ["api_url", "pid", "key", "mode", "paid_status", "refund_success_code"]
    assert described["key"]["label"] == {"zh": "商户密钥", "en": "Merchant key"}
    assert (described["key"]["secret"], described["key"]["required"]) == (True, True)
    assert (described["mode"]["default"], described["mode"]["schema"]["enum"]) == ("mapi", ["mapi", "submit"])
    assert not any(field["secret"] for name, field in described.items() if name != "key")
    assert describe_config(channel_classes()["sandbox"].config_schema) == []
