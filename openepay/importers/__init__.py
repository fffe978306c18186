"""Bringing merchants over from other gateways, so their shops keep working unchanged."""
