"""The edges of V2's ``timestamp`` rule: Rainbow refuses ``abs(time() - $timestamp) > 300``.

``timestamp_is_fresh`` is handed the moment to compare with, so the edges are exact seconds,
never a race with the clock. The HTTP tests (``test_api.py``) show the refusal's words.
"""

from __future__ import annotations

from openepay.protocols.epay_v2.verification import timestamp_is_fresh

NOW = 1_721_206_072


def test_a_timestamp_300_seconds_off_either_way_is_fresh_and_301_is_not():
    assert timestamp_is_fresh(str(NOW - 300), now=NOW)
    assert timestamp_is_fresh(str(NOW + 300), now=NOW)
    assert not timestamp_is_fresh(str(NOW - 301), now=NOW)
    assert not timestamp_is_fresh(str(NOW + 301), now=NOW)


def test_a_timestamp_is_compared_with_the_moment_it_is_checked_at():
    assert timestamp_is_fresh(str(NOW), now=NOW)
    assert not timestamp_is_fresh(str(NOW), now=NOW + 3600)


def test_a_timestamp_of_64_characters_is_read_and_a_longer_one_is_refused_unread():
    padded = str(NOW).rjust(64, "0")
    assert timestamp_is_fresh(padded, now=NOW)
    assert not timestamp_is_fresh("0" + padded, now=NOW)
