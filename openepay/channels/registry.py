"""Which channels this gateway runs, by name."""

from __future__ import annotations

from collections.abc import Iterable

from openepay.channels.base import Channel


class ChannelRegistry:
    def __init__(self, channels: Iterable[Channel]) -> None:
        self._channels = {channel.name: channel for channel in channels}

    def get(self, name: str | None) -> Channel | None:
        return self._channels.get(name) if name else None

    def all(self) -> list[Channel]:
        return list(self._channels.values())

    def serving(self, pay_type: str) -> list[Channel]:
        return [channel for channel in self._channels.values() if pay_type in channel.pay_types]

    def pay_types(self) -> list[str]:
        """Every pay type some channel serves, in a stable, buyer-friendly order."""
        order = ["alipay", "wxpay", "qqpay", "bank", "jdpay", "paypal"]
        served = {pay_type for channel in self._channels.values() for pay_type in channel.pay_types}
        return sorted(served, key=lambda t: (order.index(t) if t in order else len(order), t))
