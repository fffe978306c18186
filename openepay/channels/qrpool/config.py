"""A qrpool channel account needs no settings of its own.

Its receiving accounts, codes and phones live in the channel's own tables
(``openepay qrpool ...``); a stored channel account only gives the pool routing rules
(pay types, amount range, caps, priority) beside other channels' accounts.
"""

from __future__ import annotations

from openepay.channels.base import NoConfig


class QrPoolConfig(NoConfig):
    pass
