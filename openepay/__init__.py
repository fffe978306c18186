"""OpenEpay: a self-hosted payment gateway that speaks the 易支付/epay merchant protocols."""

__version__ = "0.1.0"
