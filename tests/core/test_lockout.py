"""The lockout after failed signature checks: counted in memory, shared through the database, lifting by itself.

Two ``Lockout`` objects on one database play two processes, on a clock the test moves; the last
test runs two real ``openepay serve`` processes.
"""

from __future__ import annotations

import httpx
from sqlalchemy import event

from openepay.config import Settings
from openepay.core.gate import Door, Gate, Refusal, Refused
from openepay.core.lockout import Lockout, LockoutPolicy, address_key
from openepay.db import Database
from tests.support.endpoints import SHOP, from_address, number
from tests.support.epay import order_params, signed
from tests.support.processes import ServeProcess, worker_env, worker_processes
from tests.support.waiting import eventually

POLICY = LockoutPolicy(window=60, per_ip=3, per_merchant=5, sync_interval=1)
DEFAULTS = LockoutPolicy(
    window=Settings.model_fields["auth_failure_window"].default,
    per_ip=Settings.model_fields["auth_failures_per_ip"].default,
    per_merchant=Settings.model_fields["auth_failures_per_merchant"].default,
    sync_interval=1,
)
ATTACKER = "198.51.100.7"
PID = 1000


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def processes(db: Database, policy: LockoutPolicy = POLICY, count: int = 2) -> tuple[Clock, list[Lockout]]:
    clock = Clock()
    return clock, [Lockout(db, policy, clock=clock) for _ in range(count)]


async def test_a_lockout_reached_through_one_process_holds_in_the_others_after_their_next_sync(gateway):
    _, (one, other) = processes(gateway.db)
    for _ in range(POLICY.per_ip):
        one.failed(ATTACKER, PID)
    assert one.locked(ATTACKER, PID), "the process that counted knows at once"
    assert not other.locked(ATTACKER, PID)
    await other.sync()
    assert not other.locked(ATTACKER, PID), "nothing shared before the counting process syncs"
    await one.sync()
    await other.sync()
    assert other.locked(ATTACKER, PID)
    assert not other.locked("198.51.100.8", PID), "only that address: the merchant has 3 of its 5"


async def test_failures_spread_over_processes_add_up(gateway):
    _, lockouts = processes(gateway.db, count=3)
    for lockout in lockouts:
        lockout.failed(ATTACKER, PID)
    assert not any(lockout.locked(ATTACKER, PID) for lockout in lockouts)
    for _ in range(2):  # the first round sends every count, the second reads the sums
        for lockout in lockouts:
            await lockout.sync()
    assert all(lockout.locked(ATTACKER, PID) for lockout in lockouts)


async def test_a_lockout_lifts_by_itself_once_the_failures_leave_the_window(gateway):
    clock, (one, other) = processes(gateway.db)
    for _ in range(POLICY.per_ip):
        one.failed(ATTACKER, PID)
    await one.sync()
    await other.sync()
    clock.now += POLICY.window / 2
    await one.sync()
    await other.sync()
    assert one.locked(ATTACKER, PID) and other.locked(ATTACKER, PID)
    clock.now += POLICY.window
    await one.sync()
    await other.sync()
    assert not one.locked(ATTACKER, PID) and not other.locked(ATTACKER, PID)


async def test_a_merchants_lockout_spares_an_address_that_signed_correctly(gateway):
    _, (one, other) = processes(gateway.db)
    one.succeeded("192.0.2.10", PID)
    for index in range(POLICY.per_merchant):
        one.failed(f"198.51.100.{index}", PID)
    await one.sync()
    await other.sync()
    assert one.locked("203.0.113.1", PID) and other.locked("203.0.113.1", PID)
    assert not one.locked("192.0.2.10", PID)
    assert not one.locked("203.0.113.1", PID + 1), "other merchants are not concerned"


async def test_an_ipv6_client_counts_as_its_64(gateway):
    _, (lockout,) = processes(gateway.db, count=1)
    for host in range(1, POLICY.per_ip + 1):
        lockout.failed(f"2001:db8:1:2::{host}", PID)
    assert lockout.locked("2001:db8:1:2:ffff::1", PID)
    assert not lockout.locked("2001:db8:1:3::1", PID)
    assert address_key("::ffff:198.51.100.7") == ATTACKER


async def test_the_count_follows_every_failure_and_the_window_either_way(gateway):
    """A process's own count is kept as a total between failures: it must still grow with each
    failure, drop the failures the window leaves behind, and take them back if the clock steps back."""
    clock, (lockout,) = processes(gateway.db, count=1)
    bucket = POLICY.window / 6
    lockout.failed(ATTACKER, PID)
    clock.now += POLICY.window / 2
    assert not lockout.locked(ATTACKER, PID)
    lockout.failed(ATTACKER, PID)
    assert not lockout.locked(ATTACKER, PID)
    lockout.failed(ATTACKER, PID)
    assert lockout.locked(ATTACKER, PID), "three in the window"
    clock.now += POLICY.window / 2 + bucket
    assert not lockout.locked(ATTACKER, PID), "the first has left the window"
    lockout.failed(ATTACKER, PID)
    assert lockout.locked(ATTACKER, PID), "three again"
    clock.now += POLICY.window
    assert not lockout.locked(ATTACKER, PID)
    clock.now -= POLICY.window + POLICY.window / 2 + bucket
    assert lockout.locked(ATTACKER, PID), "the clock stepped back: all four are in the window again"


async def test_an_honest_shop_that_fails_now_and_then_is_never_locked_out(gateway):
    """One wrong signature every ten seconds, for an hour, under the default limits."""
    clock, (lockout,) = processes(gateway.db, DEFAULTS, count=1)
    for _ in range(360):
        assert not lockout.locked("192.0.2.10", PID)
        lockout.failed("192.0.2.10", PID)
        clock.now += 10
        await lockout.sync()


async def test_a_shop_that_got_its_key_wrong_is_let_in_one_window_after_it_stops_failing(gateway, merchant):
    """Attempts refused while locked out are not counted, so retrying does not prolong the lockout."""
    clock, (lockout,) = processes(gateway.db, count=1)
    gate = Gate(gateway.merchants, lockout)
    door = Door("epay", permissions_first=False)

    async def attempt(key_right: bool) -> Refusal | None:
        try:
            await gate.admit(door, merchant.pid, "192.0.2.10", lambda _, key: key_right)
        except Refused as refused:
            return refused.reason
        return None

    assert [await attempt(False) for _ in range(POLICY.per_ip)] == [Refusal.BAD_SIGNATURE] * POLICY.per_ip
    for _ in range(100):
        clock.now += 0.5
        assert await attempt(False) == Refusal.LOCKED_OUT
    await lockout.sync()
    assert await attempt(True) == Refusal.LOCKED_OUT
    clock.now += POLICY.window
    await lockout.sync()
    assert await attempt(True) is None


async def test_a_sync_with_nothing_to_send_only_reads_and_still_learns_the_lockouts(gateway):
    """Each web process syncs every second: with nothing counted it must not take SQLite's write
    lock (a transaction here begins with ``BEGIN IMMEDIATE``) from the orders being created."""
    _, (one, other) = processes(gateway.db)
    for _ in range(POLICY.per_ip):
        one.failed(ATTACKER, PID)
    await one.sync()
    await other.sync()  # the first sync of a process also sweeps old counts: a write
    sent: list[str] = []
    for engine in gateway.db.engines:
        event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))

    await other.sync()

    assert [sql.split()[0] for sql in sent] == ["SELECT"]
    assert other.locked(ATTACKER, PID)


async def test_counting_goes_on_while_the_database_is_unreachable(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'gone.db'}")
    try:
        _, (lockout,) = processes(db, count=1)
        for _ in range(POLICY.per_ip):
            lockout.failed(ATTACKER, PID)
            await lockout.sync()
        assert lockout.locked(ATTACKER, PID)
    finally:
        await db.dispose()


async def test_two_real_processes_share_a_lockout(gateway, merchant, database_url, tmp_path):
    env = worker_env(
        database_url,
        auth_failures_per_ip=POLICY.per_ip,
        auth_failure_sync_interval=0.2,
        auth_failures_per_merchant=1000,
    )

    def order(key: str) -> dict[str, str]:
        return signed(order_params(merchant.pid, SHOP, number("P-"), clientip="203.0.113.9"), key)

    with worker_processes(env, tmp_path, ServeProcess) as servers:
        first, second = servers.start(2)

        async def ready() -> bool:
            try:
                async with httpx.AsyncClient() as client:
                    for server in (first, second):
                        if (await client.get(f"{server.url}/readyz")).status_code != 200:
                            return False
                return True
            except httpx.TransportError:
                return False

        await eventually(ready, interval=0.2)
        attacker = from_address(ATTACKER)
        locked_out = {"code": -1, "msg": "签名校验失败次数过多，请1分钟后再试"}
        async with httpx.AsyncClient(timeout=10) as client:

            async def mapi(server: ServeProcess, key: str) -> dict:
                return (await client.post(f"{server.url}/mapi.php", data=order(key), headers=attacker)).json()

            assert (await mapi(second, merchant.key))["code"] == 1, servers.logs()
            for _ in range(POLICY.per_ip):
                assert (await mapi(first, "x" * 32))["msg"] == "签名校验失败，请返回重试！"
            assert await mapi(first, merchant.key) == locked_out

            async def second_refuses() -> bool:
                return await mapi(second, merchant.key) == locked_out

            # The second process never saw a failure: it learns of the lockout through the database.
            await eventually(second_refuses, interval=0.1)
