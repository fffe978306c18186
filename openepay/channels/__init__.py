"""Upstream channels: who actually collects the money. The contract is in ``base.py``."""
