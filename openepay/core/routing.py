"""Choosing the channel for an order."""

from __future__ import annotations

from openepay.channels.base import Channel
from openepay.channels.registry import ChannelRegistry


def choose_channel(channels: ChannelRegistry, pay_type: str, amount_fen: int) -> Channel | None:
    """The first enabled channel that serves the pay type.

    Amount limits, daily caps and weighted strategies belong here as channels gain accounts.
    """
    candidates = channels.serving(pay_type)
    return candidates[0] if candidates else None
