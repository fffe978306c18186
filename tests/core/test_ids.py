import multiprocessing
import re
import threading
from datetime import UTC, datetime

from openepay.core.ids import TradeNoGenerator


def test_trade_numbers_are_digits_time_prefixed_and_short_enough():
    trade_no = TradeNoGenerator().next()
    assert re.fullmatch(r"\d{26}", trade_no)
    stamp = datetime.strptime(trade_no[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 5


def test_one_process_never_repeats_and_numbers_sort_in_time_order():
    generator = TradeNoGenerator()
    numbers = [generator.next() for _ in range(50_000)]
    assert len(set(numbers)) == len(numbers)
    assert numbers == sorted(numbers)


def test_threads_sharing_a_generator_never_collide():
    generator = TradeNoGenerator()
    results: list[list[str]] = [[] for _ in range(8)]

    def draw(bucket: list[str]) -> None:
        bucket.extend(generator.next() for _ in range(10_000))

    threads = [threading.Thread(target=draw, args=(bucket,)) for bucket in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [n for bucket in results for n in bucket]
    assert len(set(everything)) == 80_000


def _draw_in_child(count: int) -> list[str]:
    from openepay.core.ids import trade_numbers

    return [trade_numbers.next() for _ in range(count)]


def test_separate_processes_do_not_collide():
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        batches = pool.map(_draw_in_child, [20_000] * 4)
    everything = [n for batch in batches for n in batch]
    assert len(set(everything)) == len(everything)
