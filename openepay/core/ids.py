"""Gateway order numbers: digits only, time-sortable, unique across processes and machines.

Layout (26 digits): ``YYYYMMDDHHMMSS`` + milliseconds (3) + node (5) + sequence (4).
The node is random per process, the sequence counts within one millisecond in that process,
and the clock never runs backwards inside a process, so one process never repeats itself and
two processes collide only if they drew the same node in the same millisecond at the same
sequence number; the database's UNIQUE constraint turns even that into a retry.
Rainbow's ``date("YmdHis").rand(11111,99999)`` collides under load; this does not.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from datetime import UTC, datetime

_SEQUENCE_PER_MS = 10_000


class TradeNoGenerator:
    def __init__(self, prefix: str = "") -> None:
        self._prefix = prefix
        self._node = secrets.randbelow(100_000)
        self._lock = threading.Lock()
        self._last_ms = 0
        self._sequence = 0
        # The second's digits, formatted once per second rather than once per number.
        self._stamp: tuple[int, str] = (-1, "")

    def next(self) -> str:
        with self._lock:
            now_ms = time.time_ns() // 1_000_000
            if now_ms > self._last_ms:
                self._last_ms = now_ms
                self._sequence = 0
            else:
                self._sequence += 1
                if self._sequence >= _SEQUENCE_PER_MS:
                    self._last_ms += 1
                    self._sequence = 0
            ms, seq = self._last_ms, self._sequence
        second = ms // 1000
        at, stamp = self._stamp
        if at != second:
            stamp = datetime.fromtimestamp(second, UTC).strftime("%Y%m%d%H%M%S")
            self._stamp = (second, stamp)
        return f"{self._prefix}{stamp}{ms % 1000:03d}{self._node:05d}{seq:04d}"

    def redraw_node(self) -> None:
        """A new node for a forked process, which would otherwise share its parent's."""
        with self._lock:
            self._node = secrets.randbelow(100_000)


trade_numbers = TradeNoGenerator()
os.register_at_fork(after_in_child=trade_numbers.redraw_node)
