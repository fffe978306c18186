"""The gateway's settings as every test starts from them: a known secret, the sandbox on, fast retries."""

from __future__ import annotations

from openepay.config import Settings

TEST_SECRET = "test-secret-key-not-for-production"


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "sandbox": True,
        "notify_allow_private": True,
        "worker_poll_interval": 0.05,
        "worker_sweep_interval": 0.2,
        "notify_retry_delays": (0.3, 0.6, 1.0),
        "notify_timeout": 3.0,
        # Some PostgreSQL tests park a dozen transactions on one row lock at once.
        "db_pool_size": 20,
        # Every test client calls from 127.0.0.1 and the fuzzers send bad signatures by the hundred;
        # the lockout is tested under limits of its own (tests/core/test_lockout.py, tests/protocols/test_gate.py).
        "auth_failures_per_ip": 1_000_000,
        "auth_failures_per_merchant": 1_000_000,
        # Tests empty the tables between them; the app's copy of channel accounts must never outlive that.
        "routing_cache_seconds": 0,
        # Nor its copy of merchants: tests change a merchant and use it at once, through another gateway.
        # tests/core/test_merchant_cache.py runs the copy as shipped.
        "merchant_cache_check_interval": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
