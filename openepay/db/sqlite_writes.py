"""Writers of one SQLite file taking turns across processes, and its WAL checkpoints off the event loop.

SQLite lets one connection write at a time and keeps no queue: a connection that finds the
write lock taken either fails at once (busy timeout 0) or sleeps in SQLite's busy handler, in
naps of 1 to 100 ms that the other writer's commit does not cut short. With ``serve --workers
2`` the two web processes' creates collided this way on about one write in twenty, and a write
that had to wait waited tens to hundreds of milliseconds, however short the other one was.

``WriteTurn`` is the wake-up SQLite lacks: an ``flock`` on a file beside the database, taken
around each write of the lane, which runs on the event loop and holds it for a fraction of a
millisecond. A writer that finds it taken waits for it with its event loop stopped, blocked in
``flock`` (``take_within``), which the kernel ends the moment the holder lets go: it is woken
then, before the holder's next writer, still busy with its own request, comes back for the turn.
Only a turn held longer than ``TURN_WAIT_ON_LOOP`` (a checkpoint, a holder the kernel took the
core from) is waited for off the loop, in a thread of its own (one per process) blocked in
``flock``, however long that takes, instead of giving up and waiting in SQLite's busy handler.
The turn is never held across an ``await``: a writer handed the turn while its event loop is
busy elsewhere would hold up every other writer until its loop came round, which under load is
longer than the writes. The turn only orders the writers that take it (``SqliteLane``'s);
SQLite's own lock still guards the data, so a writer that does not take it (a session, the
worker, a CLI command) is waited for as before, and a turn lost or shared by mistake costs a
retry, never a wrong write.

``Checkpoints`` moves the WAL's checkpoint, which copies the WAL back into the database file and
waits for the disk twice (``fsync``), off the connection that writes on the event loop. SQLite
runs it by default inside the commit that fills the WAL past 1,000 pages: 10 to 130 ms, measured
on this kind of machine, during which that process's event loop answered nothing. Here the
lane's connection never checkpoints (``wal_autocheckpoint=0``) and a thread of the process runs
a ``PASSIVE`` checkpoint after every ``CHECKPOINT_EVERY`` writes: it waits for no lock and
stops no reader or writer. Under writes that never pause the WAL could then grow without
end (SQLite starts it over only once a checkpoint caught up with every write), so once it has
grown past ``WAL_FRAMES_LIMIT`` the checkpoint is finished holding the write turn: writers
wait for its last few pages and two ``fsync``s, and the WAL starts over.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

log = logging.getLogger(__name__)

# Writes of a process's lane between two checkpoints: an order's INSERT adds 5 to 10 pages to
# the WAL, so this is about SQLite's own default (a checkpoint every 1,000 pages).
CHECKPOINT_EVERY = 100
# WAL pages beyond which a checkpoint is finished holding the write turn, so that it catches up
# and the WAL starts over (about 16 MB of 4 KiB pages; SQLite's own default keeps about 4 MB).
WAL_FRAMES_LIMIT = 4_000


def _open_private(path: Path) -> int | None:
    """The lock file's descriptor, created readable by this user only; None where it cannot be had
    (a read-only directory): the writers then find SQLite's lock as they did without turns."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        log.warning("no write turns for %s (%s): writers will retry instead of queueing", path, error)
        return None


class _TurnWait:
    """One ``take_within``: the turn handed to the caller, or, once it has given up, given back."""

    __slots__ = ("granted", "decided", "abandoned")

    def __init__(self) -> None:
        self.granted = threading.Event()
        self.decided = threading.Lock()
        self.abandoned = False


class WriteTurn:
    """One writer at a time across the processes (and the ``WriteTurn``s) of one SQLite file."""

    def __init__(self, database: Path) -> None:
        self.path = Path(f"{database}-lock")
        # Opened at the first write, so that a database nobody writes gets no lock file beside it.
        self._fd: int | None = None
        self._opened = False
        # The turn within this process: ``flock`` belongs to the open file, which every thread of the
        # process shares, so it cannot tell two writers of this process apart.
        self._held = threading.Lock()
        self._queue: ThreadPoolExecutor | None = None
        self._free: Future[None] | None = None
        # The last ``take_within`` wait its caller gave up on, while its thread still waits in ``flock``.
        self._given_up: Future[None] | None = None

    def _lock_file(self) -> int | None:
        """The lock file's descriptor (called holding ``_held``)."""
        if not self._opened:
            self._fd, self._opened = _open_private(self.path), True
        return self._fd

    def take(self) -> bool:
        """The turn if it is free now (never waits); give it back before the next ``await``."""
        if not self._held.acquire(blocking=False):
            return False
        fd = self._lock_file()
        if fd is None:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._held.release()
            return False
        return True

    def take_waiting(self) -> None:
        """Wait for the turn, blocking the calling thread (never call it on the event loop)."""
        self._held.acquire()
        try:
            fd = self._lock_file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._held.release()
            raise

    def take_within(self, timeout: float) -> bool:
        """The turn, waited for up to ``timeout`` seconds blocking the calling thread (the event loop's,
        briefly); False, and not taken, if it was not had by then.

        ``flock`` has no timeout, so a thread of the process waits in it; a turn it gets after the
        caller gave up is given back at once. While a wait given up on is still blocked there, the
        turn has been held longer than that wait lasted: a new one would only queue behind it,
        stopping the event loop for nothing, so it is not had at once."""
        if self._given_up is not None and not self._given_up.done():
            return False
        wait = _TurnWait()
        waiting = self._waiter().submit(self._take_for, wait)
        if wait.granted.wait(timeout):
            return True
        with wait.decided:
            wait.abandoned = not wait.granted.is_set()
        if wait.abandoned:
            self._given_up = waiting
        return not wait.abandoned

    def _take_for(self, wait: _TurnWait) -> None:
        self.take_waiting()
        with wait.decided:
            if not wait.abandoned:
                wait.granted.set()
                return
        self.give_back()

    def _waiter(self) -> ThreadPoolExecutor:
        if self._queue is None:
            self._queue = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-write-turn")
        return self._queue

    def give_back(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._held.release()

    def _wait_free(self) -> None:
        self.take_waiting()
        self.give_back()

    async def free(self) -> None:
        """Returns once the turn has been free (then ``take`` it, which may find it taken again).

        One thread waits for the whole process, its writers all wake when it returns; the turn is
        never held across an ``await``, so no writer waits for another's event loop to come round.
        """
        if self._free is None or self._free.done():
            self._free = self._waiter().submit(self._wait_free)
        # Shielded: a writer that leaves (cancelled) must not cancel the others' wait.
        await asyncio.shield(asyncio.wrap_future(self._free))

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """The turn, waited for off the event loop and held across the block's awaits: only for a write
        that must wait for SQLite's lock anyway (see ``Database.one``), so that the lane writers of
        every process wait behind it in their turn instead of retrying into the same lock."""
        while not self.take():
            await self.free()
        try:
            yield
        finally:
            self.give_back()

    def close(self) -> None:
        if self._queue is not None:
            self._queue.shutdown(wait=False, cancel_futures=True)
            self._queue = None
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._opened = None, False


class Checkpoints:
    """The WAL copied back into the database in a thread of its own, every ``CHECKPOINT_EVERY`` writes."""

    def __init__(self, database: Path, turn: WriteTurn) -> None:
        self.database = database
        self._turn = turn
        self._writes = 0
        self._running: Future[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def wrote(self) -> None:
        """One more write on the lane; starts a checkpoint when enough have come and none is running."""
        self._writes += 1
        if self._writes < CHECKPOINT_EVERY or (self._running is not None and not self._running.done()):
            return
        self._writes = 0
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoint")
        self._running = self._thread.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        """A ``PASSIVE`` checkpoint; then, if the WAL has outgrown its limit, one more holding the write turn.

        The first copies the bulk while writers go on; the second has only what they added
        meanwhile to copy, so the writers queue for little more than its two ``fsync``s, and
        the WAL, caught up with, starts over at the next write.
        """
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False)
            if self._run(self._conn) <= WAL_FRAMES_LIMIT:
                return
            self._turn.take_waiting()
            try:
                self._run(self._conn)
            finally:
                self._turn.give_back()
        except (sqlite3.Error, OSError) as error:
            log.warning("checkpoint of %s failed: %s", self.database, error)
            self.close_connection()

    @staticmethod
    def _run(conn: sqlite3.Connection) -> int:
        """The checkpoint; the WAL's size in pages as it found it."""
        _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(frames)

    def close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        self.close_connection()
