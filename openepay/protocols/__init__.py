"""Merchant-facing dialects. Each folder parses and signs one dialect and formats its messages."""
