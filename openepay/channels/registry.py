"""Which channels exist (the ``openepay.channels`` entry points) and which this gateway runs.

The gateway never imports a concrete channel: each channel names its class in
``pyproject.toml``, and the registry loads the classes by those names. A channel installed by
another package registers the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib.metadata import entry_points

from openepay.channels.base import Channel, ChannelServices

GROUP = "openepay.channels"


class ChannelsNotInstalled(RuntimeError):
    pass


@cache
def channel_classes() -> dict[str, type[Channel]]:
    """Every registered channel class by name (loaded once per process)."""
    classes: dict[str, type[Channel]] = {}
    for point in entry_points(group=GROUP):
        cls = point.load()
        if not (isinstance(cls, type) and issubclass(cls, Channel)) or cls.name != point.name:
            raise ChannelsNotInstalled(f"entry point {point.name!r} of {GROUP} is not the channel of that name")
        classes[point.name] = cls
    if not classes:
        raise ChannelsNotInstalled(
            f"no channel is registered under the {GROUP!r} entry points: install the package (pip install -e .)"
        )
    return classes


class ChannelRegistry:
    """The channels this gateway runs, by name, and the registered ones it does not run."""

    def __init__(self, channels: Iterable[Channel], idle: Iterable[Channel] = ()) -> None:
        self._channels = {channel.name: channel for channel in channels}
        self._idle = list(idle)

    @classmethod
    def load(cls, services: ChannelServices) -> ChannelRegistry:
        """Every registered channel, built with the gateway's services; those their setting switches off idle."""
        settings = services.settings
        built = [channel(services) for channel in channel_classes().values()]
        return cls(
            [channel for channel in built if channel.enabled_by(settings)],
            [channel for channel in built if not channel.enabled_by(settings)],
        )

    def housekeepers(self) -> list[Channel]:
        """Every registered channel: a worker configured without a channel still tidies what it left behind."""
        return [*self._channels.values(), *self._idle]

    def get(self, name: str | None) -> Channel | None:
        return self._channels.get(name) if name else None

    def all(self) -> list[Channel]:
        return list(self._channels.values())
