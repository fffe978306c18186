"""The write turn between processes of one SQLite file: a writer waiting for it gets it as soon as it is
given back, and one that stops waiting never keeps it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from openepay.db.sqlite_writes import WriteTurn

# Generous: the tests never assert how long anything took, only what happened.
PATIENCE = 30.0


def _taken_eventually(turn: WriteTurn) -> bool:
    deadline = time.monotonic() + PATIENCE
    while not turn.take():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_turn_given_back_while_a_writer_waits_for_it_goes_to_that_writer(tmp_path: Path):
    path = tmp_path / "turns.db"
    waiting, holding = WriteTurn(path), WriteTurn(path)
    assert holding.take()
    handed_over = threading.Timer(0.05, holding.give_back)
    handed_over.start()
    try:
        assert waiting.take_within(PATIENCE)
        # The timer's thread has let go of its own process's side of the turn too, once it has ended.
        handed_over.join()
        assert not holding.take()
        waiting.give_back()
        assert holding.take()
        holding.give_back()
    finally:
        handed_over.join()
        waiting.close()
        holding.close()


def test_a_writer_that_stops_waiting_leaves_the_turn_to_others_once_it_is_given_back(tmp_path: Path):
    path = tmp_path / "turns.db"
    waiting, holding = WriteTurn(path), WriteTurn(path)
    assert holding.take()
    try:
        assert not waiting.take_within(0.05)
        holding.give_back()
        # The wait went on in a thread after the writer gave up: it takes the turn, and gives it back.
        assert _taken_eventually(holding)
        holding.give_back()
        assert _taken_eventually(waiting)
        assert not holding.take()
        waiting.give_back()
    finally:
        waiting.close()
        holding.close()


def test_a_writer_does_not_stop_its_loop_again_while_a_wait_given_up_on_is_still_blocked(tmp_path: Path):
    """The turn has been held longer than the last wait lasted: the next writer goes off the loop at once,
    rather than queueing behind that wait and being handed the turn only after it."""
    path = tmp_path / "turns.db"
    waiting, holding = WriteTurn(path), WriteTurn(path)
    assert holding.take()
    handed_over = threading.Timer(0.5, holding.give_back)
    try:
        assert not waiting.take_within(0.05)
        handed_over.start()
        assert not waiting.take_within(PATIENCE)
    finally:
        handed_over.join()
    assert _taken_eventually(waiting)
    waiting.give_back()
    waiting.close()
    holding.close()
