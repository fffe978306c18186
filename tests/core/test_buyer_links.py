"""Buyer handles: only this gateway's secret makes one, and nothing else names an order to a buyer's page."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from openepay.core.buyer_links import BuyerLinks
from openepay.core.ids import TradeNoGenerator

LINKS = BuyerLinks("the gateway's secret")


def test_a_handle_names_its_order_and_stays_the_same_for_it():
    trade_no = TradeNoGenerator().next()
    handle = LINKS.handle(trade_no)
    assert re.fullmatch(rf"{trade_no}-[0-9a-f]{{32}}", handle)
    assert LINKS.trade_no_of(handle) == trade_no
    assert LINKS.handle(trade_no) == handle  # a merchant re-sending the order hands out the same link
    assert LINKS.cashier_path(trade_no) == f"/cashier/{handle}"


def test_the_order_number_alone_or_next_to_a_guess_names_nothing():
    trade_no = "20261130051712258686040000"
    handle = LINKS.handle(trade_no)
    mac = handle.partition("-")[2]
    refused = [
        trade_no,
        f"{trade_no}-",
        f"{trade_no}-{'0' * 32}",
        f"{trade_no}-{mac[:-1]}",
        f"{trade_no}-{mac}0",
        f"{trade_no}-{mac.upper()}",
        f"20261130051712258686040001-{mac}",  # the neighbour's number with this order's MAC
        f"0{trade_no}-{mac}",
        f" {handle}",
        f"{handle}\n",
        handle.replace("-", "_"),
        BuyerLinks("another gateway's secret").handle(trade_no),
        f"{'9' * 33}-{mac}",
        "",
    ]
    assert [candidate for candidate in refused if LINKS.trade_no_of(candidate) is not None] == []


@given(st.text(max_size=80))
def test_no_string_but_a_genuine_handle_is_accepted(candidate):
    trade_no = LINKS.trade_no_of(candidate)
    assert trade_no is None or LINKS.handle(trade_no) == candidate


def test_order_numbers_stay_rainbow_shaped_under_the_handle():
    """Digits, at most 32, sortable by time: the handle is added beside the number, never into it."""
    generator = TradeNoGenerator()
    numbers = [generator.next() for _ in range(1000)]
    assert all(re.fullmatch(r"[0-9]{1,32}", n) for n in numbers)
    assert numbers == sorted(numbers)
    assert [LINKS.trade_no_of(LINKS.handle(n)) for n in numbers] == numbers
