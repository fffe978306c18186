"""Merchant-facing dialects. Each folder parses and signs one dialect and formats its messages."""

from openepay.protocols import epay, epay_v2, pay_mapi, payfor, vmq

# Every dialect, by the name orders and merchants' dialect lists use, in the order the docs present them.
DIALECT_NAMES = (epay.DIALECT, pay_mapi.DIALECT, payfor.DIALECT, epay_v2.DIALECT, vmq.DIALECT)
