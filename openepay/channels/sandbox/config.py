"""A sandbox account needs no settings: the simulated upstream is part of the gateway."""

from __future__ import annotations

from openepay.channels.base import NoConfig


class SandboxConfig(NoConfig):
    pass
