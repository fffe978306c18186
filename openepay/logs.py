"""Logging: one line per event, JSON in production, with order context and never a secret.

Request lines are logged without their query strings, because epay requests carry ``sign``
and ``api.php`` carries the merchant ``key`` there; uvicorn's own access log is turned off.

When the database goes away, every request and every worker cycle fails the same way; logged
with a traceback each, an outage writes megabytes a minute and buries everything else. So a
failure logged with a traceback is shown in full the first time its kind is seen, and after
that once per interval as a single line with how often it happened meanwhile.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

CONTEXT_FIELDS = (
    "trade_no",
    "merchant",
    "attempt",
    "worker",
    "target_host",
    "http_status",
    "latency_ms",
    "error_class",
    "outcome",
    "decision",
    "count",
    "method",
    "route",
    "path",
    "status",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in CONTEXT_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{field}={getattr(record, field)}" for field in CONTEXT_FIELDS if getattr(record, field, None) is not None
        )
        return f"{line} {context}" if context else line


@dataclass
class _Kind:
    """A kind of failure: where it was logged and what was raised; its repeats since ``since``."""

    since: float
    repeats: int = 0
    latest: logging.LogRecord | None = None


class QuietRepeats(logging.Handler):
    """Hands records to ``target``, holding back repeated failures.

    A failure's kind is the logger, the message template and the exception's class. The first
    record of a kind goes through with its traceback. Later ones within ``interval`` seconds are
    counted, and when the interval is over one line says how many there were, with the latest
    one's text; a kind that comes back after a quiet interval gets one line without traceback.
    A record about one order (it carries a ``trade_no``) is never held back, only shortened to
    one line. Records without a traceback always go through.
    """

    MAX_KINDS = 1000

    def __init__(self, target: logging.Handler, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.target = target
        self.interval = interval
        self.clock = clock
        self._kinds: dict[tuple[str, str, type], _Kind] = {}
        self._next_summary = float("inf")

    def emit(self, record: logging.LogRecord) -> None:
        now = self.clock()
        if now >= self._next_summary:
            self._summarise(now, due_only=True)
        if record.exc_info and record.exc_info[1] is not None:
            record = self._first_of_its_kind(record, now)
            if record is None:
                return
        self.target.handle(record)

    def _first_of_its_kind(self, record: logging.LogRecord, now: float) -> logging.LogRecord | None:
        assert record.exc_info is not None
        key = (record.name, str(record.msg), type(record.exc_info[1]))
        kind = self._kinds.get(key)
        if kind is None:
            if len(self._kinds) >= self.MAX_KINDS:
                self._summarise(now, due_only=False)
                self._kinds.clear()
            self._kinds[key] = _Kind(since=now)
            return record
        if kind.repeats == 0 and now - kind.since >= self.interval:
            kind.since = now
            return _one_line(record, "%s (%s: %s); its traceback was logged earlier")
        if getattr(record, "trade_no", None) is not None:
            # About one order (a payment that could not be recorded): each stays findable, in one line.
            return _one_line(record, "%s (%s: %s); its traceback was logged earlier")
        kind.repeats += 1
        kind.latest = record
        self._next_summary = min(self._next_summary, kind.since + self.interval)
        return None

    def flush(self) -> None:
        self.target.flush()

    def report_held_back(self) -> None:
        """Say now how many repeats were held back (at shutdown, so none goes unreported)."""
        self.acquire()
        try:
            self._summarise(self.clock(), due_only=False)
        finally:
            self.release()

    def close(self) -> None:
        self.report_held_back()
        super().close()

    def _summarise(self, now: float, *, due_only: bool) -> None:
        self._next_summary = float("inf")
        for kind in self._kinds.values():
            if kind.repeats == 0 or kind.latest is None:
                continue
            if due_only and now - kind.since < self.interval:
                self._next_summary = min(self._next_summary, kind.since + self.interval)
                continue
            summary = _one_line(
                kind.latest,
                f"%s (%s: %s); happened {kind.repeats} more times in {now - kind.since:.0f} s, traceback shown once",
            )
            summary.count = kind.repeats
            self.target.handle(summary)
            kind.since, kind.repeats, kind.latest = now, 0, None


def _one_line(record: logging.LogRecord, template: str) -> logging.LogRecord:
    """``record`` as one line: its message and the exception's class and text, without the traceback."""
    exception = record.exc_info[1] if record.exc_info else None
    first_line = (str(exception).splitlines() or [""])[0][:300]
    return logging.makeLogRecord(
        {
            **record.__dict__,
            "msg": template,
            "args": (record.getMessage(), type(exception).__name__, first_line),
            "exc_info": None,
            "exc_text": None,
        }
    )


def configure(level: str = "INFO", fmt: str = "text", *, repeat_interval: float = 60.0) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, QuietRepeats):
            old.close()
    root.handlers[:] = [QuietRepeats(handler, repeat_interval)]
    root.setLevel(level.upper())
    logging.getLogger("uvicorn.access").disabled = True


def report_held_back() -> None:
    """Log the repeats still held back; for servers that end by a signal, before ``logging.shutdown`` could."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, QuietRepeats):
            handler.report_held_back()
