"""The states orders, refunds and notifications move through.

Orders: ``created -> paying -> paid -> partially_refunded -> refunded`` and
``created|paying -> closed``. A payment confirmed upstream after an order closed takes the
explicit late edge ``closed -> paid`` and the order is flagged ``paid_late``.
"""

from enum import StrEnum


class OrderStatus(StrEnum):
    CREATED = "created"
    PAYING = "paying"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    CLOSED = "closed"


UNPAID = (OrderStatus.CREATED, OrderStatus.PAYING)
SETTLED_PAID = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED)
REFUNDABLE = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED)


class NotifyStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class MerchantStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
