"""Persistence: engine and sessions, models, migrations."""

from openepay.db.engine import Database

__all__ = ["Database"]
