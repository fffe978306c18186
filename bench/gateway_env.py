"""The environment of a gateway a benchmark starts, with none of the caller's own ``OPENEPAY_*`` settings."""

from __future__ import annotations

import os
import secrets


def sandbox_env(database_url: str, **settings: str) -> dict[str, str]:
    """A sandbox gateway on ``database_url``: a fresh secret key, warnings only, merchants on
    loopback allowed (the benchmark's sinks), then ``settings`` (full ``OPENEPAY_*`` names)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENEPAY_")}
    env.update(
        OPENEPAY_DATABASE_URL=database_url,
        OPENEPAY_SECRET_KEY=secrets.token_urlsafe(32),
        OPENEPAY_SANDBOX="1",
        OPENEPAY_LOG_LEVEL="WARNING",
        OPENEPAY_NOTIFY_ALLOW_PRIVATE="1",
    )
    env.update(settings)
    return env
