"""What an administrator does to channel accounts in the console: add one, change its settings and routing
rules, check its credentials live. Each change goes through ``ChannelAccounts`` (the schema, sealing,
the rules' checks, as ``openepay channel add/set`` do) and is written to the audit log: the settings
before and after, and which secrets were replaced, never a secret's value."""

from __future__ import annotations

from typing import Any

from openepay.admin import audit
from openepay.channels.base import CredentialCheck
from openepay.core.channel_accounts import RULE_FIELDS
from openepay.db.models import ChannelAccountRecord
from openepay.gateway import Gateway


def snapshot(record: ChannelAccountRecord) -> dict[str, Any]:
    """What the audit log keeps of an account: its public settings, rules and switch; secrets by name only."""
    return {
        "config": dict(record.config),
        "secrets_set": sorted(record.secrets),
        **{rule: getattr(record, rule) for rule in RULE_FIELDS},
        "enabled": record.enabled,
    }


async def add(
    gateway: Gateway,
    channel: str,
    name: str,
    config: dict[str, Any],
    rules: dict[str, Any],
    enabled: bool,
    actor: audit.Actor,
) -> ChannelAccountRecord:
    """A new account; ``rules`` come checked (``account_form.read_rules``), so nothing fails after it is stored."""
    await gateway.accounts.add(channel, name, config)
    record = await gateway.accounts.set_rules(name, rules)
    if not enabled:
        record = await gateway.accounts.set_enabled(name, False)
    await audit.record(gateway.db, actor, "channel.add", f"account:{name}", after=snapshot(record))
    return record


async def change(
    gateway: Gateway,
    name: str,
    config: dict[str, Any],
    replaced_secrets: list[str],
    rules: dict[str, Any],
    enabled: bool,
    actor: audit.Actor,
) -> ChannelAccountRecord:
    """Change an account; its configuration is judged first, so a refused one changes nothing."""
    before = await gateway.accounts.record(name)
    await gateway.accounts.reconfigure(name, config)
    record = await gateway.accounts.set_rules(name, rules)
    if enabled != record.enabled:
        record = await gateway.accounts.set_enabled(name, enabled)
    after = snapshot(record) | {"secrets_replaced": replaced_secrets}
    await audit.record(gateway.db, actor, "channel.change", f"account:{name}", before=snapshot(before), after=after)
    return record


async def check(gateway: Gateway, name: str, actor: audit.Actor) -> CredentialCheck:
    result = await gateway.check_credentials(name)
    await audit.record(
        gateway.db, actor, "channel.test", f"account:{name}", after={"ok": result.ok, "detail": result.detail[:200]}
    )
    return result
