"""A channel account's form, generated from its channel's config schema (``describe_config``), and what an
operator typed in it read back into the values ``ChannelAccounts`` validates, seals and stores.

Secret fields are write-only: the form never holds their value, and left empty when editing they keep
the stored one. Routing rules are read by ``openepay.core.routing_rule_text``, as ``openepay channel set``
reads them; an empty amount, count or pay type list is no limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openepay.channels.base import describe_config
from openepay.channels.registry import channel_classes
from openepay.core import routing_rule_text as rule_text
from openepay.core.channel_accounts import AccountError, check_range, check_rules
from openepay.core.money import format_yuan
from openepay.db.models import ChannelAccountRecord

CONFIG_PREFIX = "cfg_"
RULE_INPUTS = ("pay_types", "min", "max", "daily_amount", "daily_count", "priority", "weight")


@dataclass(frozen=True)
class FormField:
    """One input of an account's configuration, as its channel's schema describes it."""

    name: str
    label: dict[str, str]
    secret: bool
    required: bool
    default: Any
    help: str
    kind: str  # text, textarea, number, select, checkbox
    choices: tuple[str, ...] = ()

    @property
    def input_name(self) -> str:
        return CONFIG_PREFIX + self.name


def _kind(schema: dict[str, Any], help_text: str) -> tuple[str, tuple[str, ...]]:
    options = [schema, *schema.get("anyOf", [])]
    choices = next((tuple(str(value) for value in option["enum"]) for option in options if "enum" in option), ())
    if choices:
        return "select", choices
    types = {option.get("type") for option in options}
    if "boolean" in types:
        return "checkbox", ()
    if "integer" in types:
        return "number", ()
    # Keys and certificates are pasted whole, line breaks included.
    return ("textarea" if "PEM" in help_text else "text"), ()


def form_fields(channel: str) -> list[FormField]:
    cls = channel_classes().get(channel)
    if cls is None:
        raise AccountError(f"there is no channel {channel!r} (channels: {', '.join(channel_classes())})")
    fields = []
    for entry in describe_config(cls.config_schema):
        kind, choices = _kind(entry["schema"], entry["help"])
        fields.append(
            FormField(
                entry["name"],
                entry["label"],
                entry["secret"],
                entry["required"],
                entry["default"],
                entry["help"],
                kind,
                choices,
            )
        )
    return fields


def config_values(fields: list[FormField], form: Mapping[str, str], *, editing: bool) -> dict[str, Any]:
    """The configuration the form asks for; the schema itself judges the values.

    An empty secret is left out (kept, when editing); an empty optional field takes its default;
    an empty required field is left out when adding (the schema says it is required) and given as
    nothing when editing (the schema says what it should be).
    """
    values: dict[str, Any] = {}
    for field in fields:
        raw = form.get(field.input_name, "")
        if field.kind == "checkbox":
            values[field.name] = raw == "on"
            continue
        text = raw.strip()
        if text:
            values[field.name] = text
        elif field.secret:
            continue
        elif not field.required:
            values[field.name] = field.default
        elif editing:
            values[field.name] = None
    return values


def typed_config(fields: list[FormField], record: ChannelAccountRecord | None) -> dict[str, str]:
    """The form as the stored account fills it; secrets always empty."""
    typed = {}
    for field in fields:
        if field.secret:
            typed[field.name] = ""
            continue
        value = record.config.get(field.name, field.default) if record is not None else field.default
        if field.kind == "checkbox":
            typed[field.name] = "on" if value else ""
        else:
            typed[field.name] = "" if value is None else str(value)
    return typed


def rule_inputs(record: ChannelAccountRecord | None) -> dict[str, str]:
    """The routing part of the form as the stored account fills it (a new account: no limits, weight 1)."""

    def yuan(fen: int | None) -> str:
        return format_yuan(fen) if fen is not None else ""

    if record is None:
        return {"pay_types": rule_text.ALL, "priority": "0", "weight": "1", "enabled": "on"} | dict.fromkeys(
            ("min", "max", "daily_amount", "daily_count"), ""
        )
    return {
        "pay_types": rule_text.listed(record.pay_types),
        "min": yuan(record.min_fen),
        "max": yuan(record.max_fen),
        "daily_amount": yuan(record.daily_amount_fen),
        "daily_count": str(record.daily_count) if record.daily_count is not None else "",
        "priority": str(record.priority),
        "weight": str(record.weight),
        "enabled": "on" if record.enabled else "",
    }


def _no_limit(text: str) -> str:
    return text.strip() or rule_text.NO_LIMIT


def read_rules(form: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The routing rules asked for, checked as ``set_rules`` checks them, and a message per field that is wrong."""
    readers = {
        "pay_types": ("pay_types", lambda text: rule_text.names(text.strip() or rule_text.ALL)),
        "min": ("min_fen", lambda text: rule_text.yuan_or_none(_no_limit(text), "min_fen")),
        "max": ("max_fen", lambda text: rule_text.yuan_or_none(_no_limit(text), "max_fen")),
        "daily_amount": ("daily_amount_fen", lambda text: rule_text.yuan_or_none(_no_limit(text), "daily_amount_fen")),
        "daily_count": ("daily_count", lambda text: rule_text.count_or_none(_no_limit(text))),
        "priority": ("priority", lambda text: rule_text.whole(text, signed=True)),
        "weight": ("weight", lambda text: rule_text.whole(text)),
    }
    rules: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field, (rule, reader) in readers.items():
        try:
            rules[rule] = check_rules({rule: reader(form.get(field, ""))})[rule]
        except AccountError as exc:
            errors[field] = exc.message
    if not errors:
        try:
            check_range(rules["min_fen"], rules["max_fen"])
        except AccountError as exc:
            errors["max"] = exc.message
    return rules, errors
