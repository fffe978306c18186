"""The sandbox: a built-in simulated upstream for integration tests and demos.

Enabled only by ``openepay demo`` or the explicit ``OPENEPAY_SANDBOX=1``; its pages say
SANDBOX in large letters so nobody mistakes it for real money.
"""

from openepay.channels.sandbox.channel import SandboxChannel

__all__ = ["SandboxChannel"]
