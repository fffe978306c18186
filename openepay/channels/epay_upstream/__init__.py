"""Relaying orders to another epay gateway (Rainbow Epay and its clones, OpenEpay itself)."""
