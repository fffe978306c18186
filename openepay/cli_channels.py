"""``openepay channel ...``: channel accounts, their credentials and their routing rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from openepay.channels.base import ChannelConfig, callback_path, describe_config
from openepay.channels.registry import channel_classes
from openepay.cli_audit import audited
from openepay.cli_runtime import fail, with_gateway
from openepay.config import Settings
from openepay.core import routing_rule_text as rule_text
from openepay.core import usage
from openepay.core.channel_accounts import AccountError, read_config_file
from openepay.core.money import format_yuan
from openepay.db.models import ChannelAccountRecord
from openepay.db.types import utcnow
from openepay.gateway import Gateway

channel_app = typer.Typer(help="Channel accounts: credentials, routing rules, live checks.", no_args_is_help=True)


def _run(action):  # type: ignore[no-untyped-def]
    try:
        return with_gateway(Settings(), action)
    except AccountError as exc:
        raise fail(exc.message) from None


@channel_app.command("schema")
def channel_schema(
    channel: str = typer.Argument(..., help="A channel name: " + ", ".join(channel_classes())),
    as_json: bool = typer.Option(False, "--json", help="The form description as JSON (labels, secrets, types)."),
) -> None:
    """Show the fields an account of CHANNEL is configured with."""
    cls = channel_classes().get(channel)
    if cls is None:
        raise fail(f"there is no channel {channel!r} (channels: {', '.join(channel_classes())})")
    fields = describe_config(cls.config_schema)
    if as_json:
        typer.echo(json.dumps(fields, ensure_ascii=False, indent=2))
        return
    if not fields:
        typer.echo(f"{channel}: accounts need no configuration")
    for entry in fields:
        flags = ", ".join(
            flag
            for flag in (
                "required" if entry["required"] else f"default {entry['default']!r}",
                "secret" * entry["secret"],
            )
            if flag
        )
        typer.echo(f"{entry['name']:<20} {entry['label']['zh']} / {entry['label']['en']} ({flags})")
        if entry["help"]:
            typer.echo(f"{'':<20} {entry['help']}")


@channel_app.command("add")
def channel_add(
    channel: str = typer.Argument(..., help="The channel: " + ", ".join(channel_classes())),
    name: str = typer.Argument(..., help="A name for the account, unique across channels."),
    config: Path | None = typer.Option(
        None, "--config", help="The account's settings: a JSON object, or TOML if the file name ends in .toml."
    ),
) -> None:
    """Add an account to a channel; its settings are checked against the channel's schema, secrets sealed."""
    values = read_config_file(config) if config is not None else {}

    async def add(gateway: Gateway) -> ChannelAccountRecord:
        return await gateway.accounts.add(channel, name, values)

    record = _run(audited("channel.add", lambda made: f"channel:{made.name}", add))
    typer.echo(f"channel account {record.name} added to {record.channel} (id {record.id})")
    typer.echo(f"upstream callbacks go to: <public URL>{callback_path(record.channel, str(record.id))}")
    if gateway_channel_off(record.channel):
        typer.echo(f"note: the {record.channel} channel is not switched on in this configuration", err=True)


def gateway_channel_off(channel: str) -> bool:
    cls = channel_classes().get(channel)
    return cls is None or not cls.enabled_by(Settings())


@channel_app.command("list")
def channel_list() -> None:
    """List channel accounts: switch, pay types, priority and weight, today's usage against the caps, health."""

    async def load(gateway: Gateway) -> tuple[list[ChannelAccountRecord], dict[int, tuple[int, int]]]:
        day = utcnow().astimezone(gateway.settings.zone).date().isoformat()
        return await gateway.accounts.records(), await usage.used_today(gateway.db, day)

    records, used = _run(load)
    if not records:
        typer.echo("no channel accounts (built-in ones: the sandbox and qrpool, when switched on)")
    for record in records:
        amount, count = used.get(record.id, (0, 0))
        state = "enabled" if record.enabled else "disabled"
        if record.paused_until and record.paused_until > utcnow():
            state = "paused"
        typer.echo(
            f"{record.name:<20} {record.channel:<14} {state:<8} types {rule_text.listed(record.pay_types):<20} "
            f"p{record.priority} w{record.weight}  today {format_yuan(amount)}/{_cap_yuan(record.daily_amount_fen)} "
            f"{count}/{record.daily_count if record.daily_count is not None else '-'} orders"
        )


@channel_app.command("show")
def channel_show(name: str) -> None:
    """Show one account: settings (secrets only as set or unset), routing rules, health, today's usage."""

    async def load(gateway: Gateway) -> tuple[ChannelAccountRecord, tuple[int, int]]:
        record = await gateway.accounts.record(name)
        day = utcnow().astimezone(gateway.settings.zone).date().isoformat()
        return record, (await usage.used_today(gateway.db, day)).get(record.id, (0, 0))

    record, (amount, count) = _run(load)
    schema: type[ChannelConfig] | None = getattr(channel_classes().get(record.channel), "config_schema", None)
    typer.echo(f"name: {record.name}")
    typer.echo(f"channel: {record.channel}")
    typer.echo(f"id: {record.id}")
    typer.echo(f"enabled: {'yes' if record.enabled else 'no'}")
    typer.echo(f"callback path: {callback_path(record.channel, str(record.id))}")
    for field in describe_config(schema) if schema else []:
        if field["secret"]:
            value = "set" if field["name"] in record.secrets else "unset"
        else:
            value = record.config.get(field["name"], field["default"])
        typer.echo(f"config {field['name']}: {value}")
    typer.echo(f"pay types: {rule_text.listed(record.pay_types)}")
    typer.echo(f"devices: {rule_text.listed(record.devices)}")
    typer.echo(f"amount range: {_cap_yuan(record.min_fen)} to {_cap_yuan(record.max_fen)}")
    typer.echo(f"daily caps: {_cap_yuan(record.daily_amount_fen)}, {record.daily_count or '-'} orders")
    typer.echo(f"today: {format_yuan(amount)} in {count} orders")
    typer.echo(f"priority: {record.priority}, weight: {record.weight}")
    paused = record.paused_until and record.paused_until > utcnow()
    typer.echo(
        "health: "
        + (f"paused until {record.paused_until.isoformat(timespec='seconds')}" if paused else "ok")
        + (f", {record.failures} failure(s) in a row" if record.failures else "")
    )


@channel_app.command("test")
def channel_test(name: str) -> None:
    """Check the account's credentials with a live call to its upstream."""

    result = _run(lambda gateway: gateway.check_credentials(name))
    typer.echo(("ok: " if result.ok else "FAILED: ") + result.detail)
    if not result.ok:
        raise typer.Exit(1)


def _switch(name: str, enabled: bool) -> None:
    action = "channel.enable" if enabled else "channel.disable"
    record = _run(audited(action, f"channel:{name}", lambda gateway: gateway.accounts.set_enabled(name, enabled)))
    typer.echo(f"channel account {record.name} is {'enabled' if record.enabled else 'disabled'}")


@channel_app.command("disable")
def channel_disable(name: str) -> None:
    """Stop routing new orders to the account (its open orders, callbacks and refunds still work)."""
    _switch(name, False)


@channel_app.command("enable")
def channel_enable(name: str) -> None:
    """Route orders to the account again (and forget its failures)."""
    _switch(name, True)


@channel_app.command("set")
def channel_set(
    name: str,
    config: Path | None = typer.Option(
        None, "--config", help="Settings to change (JSON, or TOML for *.toml); fields left out keep their value."
    ),
    pay_types: str | None = typer.Option(None, help="Pay types it takes, e.g. alipay,wxpay; 'all'."),
    devices: str | None = typer.Option(None, help="Buyer devices it takes, e.g. pc,mobile; 'all'."),
    min_money: str | None = typer.Option(None, "--min", help="Smallest order in yuan, e.g. 1.00; 'none'."),
    max_money: str | None = typer.Option(None, "--max", help="Largest order in yuan; 'none'."),
    daily_amount: str | None = typer.Option(None, help="Cap on today's paid and open orders, in yuan; 'none'."),
    daily_count: str | None = typer.Option(None, help="Cap on today's number of paid and open orders; 'none'."),
    priority: int | None = typer.Option(None, help="Higher is tried first (default 0)."),
    weight: int | None = typer.Option(None, help="Share among accounts of one priority (weighted strategy)."),
) -> None:
    """Change an account's settings or routing rules."""
    rules: dict[str, Any] = {}
    try:
        if pay_types is not None:
            rules["pay_types"] = rule_text.names(pay_types)
        if devices is not None:
            rules["devices"] = rule_text.names(devices)
        for field, text in (("min_fen", min_money), ("max_fen", max_money), ("daily_amount_fen", daily_amount)):
            if text is not None:
                rules[field] = rule_text.yuan_or_none(text, field)
        if daily_count is not None:
            rules["daily_count"] = rule_text.count_or_none(daily_count)
    except AccountError as exc:
        raise fail(exc.message) from None
    if priority is not None:
        rules["priority"] = priority
    if weight is not None:
        rules["weight"] = weight
    values = read_config_file(config) if config is not None else None
    if not rules and values is None:
        raise fail("nothing to change")

    async def change(gateway: Gateway) -> None:
        if values is not None:
            await gateway.accounts.reconfigure(name, values)
        if rules:
            await gateway.accounts.set_rules(name, rules)

    _run(audited("channel.set", f"channel:{name}", change))
    typer.echo(f"channel account {name} updated")


def _cap_yuan(fen: int | None) -> str:
    return format_yuan(fen) if fen is not None else "-"
