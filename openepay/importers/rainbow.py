"""Merchants from a Rainbow Epay (彩虹易支付) database, with the pid and key their shops already use.

Rainbow keeps merchants in ``<prefix>user`` (the prefix is ``pay_`` unless the installer was
told otherwise) and orders in ``<prefix>order``. What a merchant's shop depends on comes over:

- ``uid`` is the pid and ``key`` the MD5 key, unchanged, so no plugin needs touching;
- ``publickey`` (Rainbow's V2 API, the base64 body of the merchant's RSA public key) and
  ``keytype`` (1: the merchant signs with RSA only) become the merchant's RSA key and RSA-only flag;
  as Rainbow then refuses MD5 signatures everywhere, such a merchant is limited to the V2 API,
  the one dialect that signs with RSA;
- ``status`` (0: banned) and ``pay`` (0: payments closed, 2: awaiting review) decide whether the
  merchant starts enabled; ``refund`` whether ``api.php`` may refund;
- ``codename``, ``username`` or ``email`` names the merchant.

Rainbow has no notification address per merchant: every order carries its own ``notify_url``,
as on OpenEpay. The recent orders are read to check each address the merchant's shops used
against the gateway's outbound rules, so a shop OpenEpay would not notify is known before the
switch, not after its first paid order; and their paid ones are kept as history, so a shop's
query about an order it was paid for keeps its answer and the number stays used.

The older installs lack some columns (``keytype``, ``publickey``, ``refund``): the columns are
read from the table, and what is missing is taken as Rainbow's default.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import select, tuple_

from openepay.core.merchants import MerchantRefused, key_problem, pid_problem
from openepay.core.money import format_yuan
from openepay.core.states import MerchantStatus, OrderStatus
from openepay.db.models import Merchant, Order
from openepay.db.types import storable
from openepay.notify.targets import UnusableUrl, read_target, target_block_reason

DEFAULT_PREFIX = "pay_"
V1_DIALECT = "epay"
V2_DIALECT = "epay_v2"
# Rainbow's order states: 0 unpaid, 1 paid, 2 refunded, 3 frozen (paid, held back from settlement).
PAID_STATUSES = (1, 2, 3)
REFUNDED = 2
TRADE_NO_LENGTH = 32
HISTORY_BATCH = 500
OUT_TRADE_NO_LENGTH = 64
NAME_LENGTH = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class RainbowError(Exception):
    """The Rainbow database cannot be read; the message says what to change."""


@dataclass(frozen=True)
class RainbowMerchant:
    """One ``<prefix>user`` row, as OpenEpay will hold it."""

    pid: int
    name: str
    key: str
    enabled: bool
    why_disabled: str | None
    refund_enabled: bool
    rsa_public_key: str | None
    rsa_only: bool
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotifySite:
    """A place a merchant's recent orders asked to be notified at, and whether OpenEpay will go there."""

    origin: str
    orders: int
    refused: str | None


@dataclass(frozen=True)
class RainbowOrder:
    """One ``<prefix>order`` row that became paid (or was refunded): history a shop may still ask about."""

    trade_no: str
    pid: int
    out_trade_no: str
    dialect: str
    pay_type: str | None
    name: str
    amount_fen: int
    paid_fen: int
    refunded_fen: int
    notify_url: str
    return_url: str | None
    param: str | None
    clientip: str | None
    buyer: str | None
    channel_trade_no: str | None
    created_at: datetime
    paid_at: datetime


@dataclass
class RainbowDatabase:
    merchants: list[RainbowMerchant]
    # Per pid: the notification sites of the orders read (empty unless orders were asked for).
    sites: dict[int, list[NotifySite]] = field(default_factory=dict)
    orders_read: int = 0
    # The paid and refunded orders among them, and how many of those cannot be kept (and why).
    history: list[RainbowOrder] = field(default_factory=list)
    history_left_out: dict[str, int] = field(default_factory=dict)


@dataclass
class ImportReport:
    created: list[RainbowMerchant] = field(default_factory=list)
    already_same_key: list[int] = field(default_factory=list)
    already_other_key: list[int] = field(default_factory=list)
    skipped: list[RainbowMerchant] = field(default_factory=list)
    orders_imported: int = 0
    orders_already_here: int = 0
    orders_of_merchants_left_out: int = 0
    orders_repeated: int = 0


def connection_arguments(url: str) -> dict[str, Any]:
    """PyMySQL's arguments from ``mysql://user:password@host:port/database``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb", "mysql+pymysql"):
        raise RainbowError("the Rainbow database URL starts with mysql://, e.g. mysql://root@127.0.0.1:3306/epay")
    database = parts.path.lstrip("/")
    if not database or "/" in database:
        raise RainbowError("name the Rainbow database in the URL: mysql://user:password@host:3306/DATABASE")
    try:
        port = parts.port or 3306
    except ValueError:
        raise RainbowError("the port in the Rainbow database URL is not a number") from None
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": port,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": unquote(database),
        "charset": "utf8mb4",
        "connect_timeout": 10,
    }


def read_rainbow(
    url: str,
    *,
    prefix: str = DEFAULT_PREFIX,
    orders_since: datetime | None = None,
    zone: tzinfo = UTC,
    allow_private: bool = False,
) -> RainbowDatabase:
    """Read the merchants and, with ``orders_since``, the orders made since then: their notification
    sites, and the paid ones as history. Rainbow's times are local times in ``zone``."""
    try:
        import pymysql
    except ImportError:
        raise RainbowError("reading a MySQL database needs PyMySQL: pip install 'openepay[mysql]'") from None
    if not prefix.replace("_", "").isalnum():
        raise RainbowError(f"a table prefix is letters, digits and _, not {prefix!r}")
    try:
        connection = pymysql.connect(**connection_arguments(url), cursorclass=pymysql.cursors.DictCursor)
    except pymysql.MySQLError as exc:
        # The URL is not repeated: it may hold a password.
        raise RainbowError(f"cannot connect to the Rainbow database: {exc.args[-1] if exc.args else exc}") from None
    try:
        with connection.cursor() as cursor:
            users = _read_table(cursor, f"{prefix}user", "uid")
            merchants = [_merchant(row) for row in users]
            sites: dict[int, list[NotifySite]] = {}
            orders_read = 0
            history: list[RainbowOrder] = []
            left_out: dict[str, int] = {}
            if orders_since is not None:
                cursor.execute(f"SELECT `id`, `name` FROM `{prefix}type`")
                pay_types = {int(row["id"]): _text(row["name"]) for row in cursor.fetchall()}
                cursor.execute(
                    f"SELECT * FROM `{prefix}order` WHERE `addtime` >= %s ORDER BY `addtime`",
                    (orders_since.astimezone(zone).replace(tzinfo=None),),
                )
                rows = cursor.fetchall()
                orders_read = len(rows)
                sites = _notify_sites(rows, allow_private=allow_private)
                for row in rows:
                    order, reason = _history(row, pay_types, zone)
                    if order is not None:
                        history.append(order)
                    elif reason is not None:
                        left_out[reason] = left_out.get(reason, 0) + 1
    except pymysql.MySQLError as exc:
        raise RainbowError(f"cannot read the Rainbow tables: {exc.args[-1] if exc.args else exc}") from None
    finally:
        connection.close()
    return RainbowDatabase(merchants, sites, orders_read, history, left_out)


def _read_table(cursor: Any, table: str, order_by: str) -> list[dict[str, Any]]:
    cursor.execute("SHOW TABLES LIKE %s", (table,))
    if cursor.fetchone() is None:
        raise RainbowError(
            f"no table {table} in this database: is it Rainbow Epay's, and is its table prefix right (--table-prefix)?"
        )
    cursor.execute(f"SELECT * FROM `{table}` ORDER BY `{order_by}`")
    return list(cursor.fetchall())


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip()
    return str(value).strip()


def _printable(value: object) -> str:
    """A name fit to store and to print on a terminal: control characters (NUL, escapes) become spaces."""
    return " ".join(_CONTROL.sub(" ", _text(value)).split())


def _flag(row: dict[str, Any], column: str, default: int) -> int:
    value = row.get(column)
    return default if value is None else int(value)


def _merchant(row: dict[str, Any]) -> RainbowMerchant:
    from openepay.protocols.epay_v2.signing import KeyFormatError, load_public_key, public_pem

    pid = int(row["uid"])
    key = _text(row.get("key"))
    problems = [problem for problem in (pid_problem(pid), key_problem(key)) if problem]
    notes: list[str] = []
    name = next((_printable(row.get(c)) for c in ("codename", "username", "email") if _printable(row.get(c))), "")
    name = (name or f"Rainbow merchant {pid}")[:NAME_LENGTH]

    why_disabled = None
    if _flag(row, "status", 1) == 0:
        why_disabled = "banned in Rainbow (status 0)"
    elif _flag(row, "pay", 1) == 0:
        why_disabled = "payments closed in Rainbow (pay 0)"
    elif _flag(row, "pay", 1) == 2:
        why_disabled = "awaiting review in Rainbow (pay 2)"

    rsa_public_key = None
    rsa_only = False
    body = _text(row.get("publickey"))
    if body:
        try:
            rsa_public_key = public_pem(load_public_key(body))
            rsa_only = _flag(row, "keytype", 0) == 1
        except KeyFormatError as exc:
            notes.append(f"RSA public key left out ({exc}): set it with openepay merchant set-rsa")
    elif _flag(row, "keytype", 0) == 1:
        notes.append("signs with RSA only in Rainbow, but has no public key there")
    return RainbowMerchant(
        pid=pid,
        name=name,
        key=key,
        enabled=why_disabled is None,
        why_disabled=why_disabled,
        refund_enabled=_flag(row, "refund", 0) == 1,
        rsa_public_key=rsa_public_key,
        rsa_only=rsa_only,
        problems=tuple(problems),
        notes=tuple(notes),
    )


def _fen(value: object) -> int:
    """Rainbow's DECIMAL(10,2) yuan as whole fen."""
    return int((Decimal(str(value)) * 100).to_integral_value())


def _history(row: dict[str, Any], pay_types: dict[int, str], zone: tzinfo) -> tuple[RainbowOrder | None, str | None]:
    """The order as history, or None and why not (None for an unpaid order: nothing to keep)."""
    status = _flag(row, "status", 0)
    if status not in PAID_STATUSES:
        return None, None
    out_trade_no, trade_no = _text(row.get("out_trade_no")), _text(row.get("trade_no"))
    if not trade_no or len(trade_no) > TRADE_NO_LENGTH:
        return None, "a trade_no longer than 32 characters"
    if not out_trade_no or len(out_trade_no) > OUT_TRADE_NO_LENGTH or not storable(out_trade_no):
        return None, "an out_trade_no longer than 64 characters"
    created = row.get("addtime")
    if not isinstance(created, datetime):
        return None, "no creation time"
    ended = row.get("endtime") if isinstance(row.get("endtime"), datetime) else created
    amount = _fen(row["money"])
    paid = _fen(row["realmoney"]) if row.get("realmoney") is not None else amount
    refunded = 0
    if status == REFUNDED:
        refunded = _fen(row["refundmoney"]) if row.get("refundmoney") is not None else paid
    return (
        RainbowOrder(
            trade_no=trade_no,
            pid=int(row["uid"]),
            out_trade_no=out_trade_no,
            dialect=V2_DIALECT if _flag(row, "version", 0) == 1 else V1_DIALECT,
            pay_type=pay_types.get(int(row.get("type") or 0)),
            name=_printable(row.get("name")),
            amount_fen=amount,
            paid_fen=paid,
            refunded_fen=min(refunded, paid),
            notify_url=_text(row.get("notify_url")),
            return_url=_text(row.get("return_url")) or None,
            param=_text(row.get("param")) or None,
            clientip=_text(row.get("ip"))[:64] or None,
            buyer=_printable(row.get("buyer"))[:128] or None,
            channel_trade_no=_text(row.get("api_trade_no"))[:64] or None,
            created_at=created.replace(tzinfo=zone).astimezone(UTC),
            paid_at=ended.replace(tzinfo=zone).astimezone(UTC),
        ),
        None,
    )


def _notify_sites(rows: Iterable[dict[str, Any]], *, allow_private: bool) -> dict[int, list[NotifySite]]:
    """Per merchant, each scheme://host:port its orders were notified at, judged as OpenEpay will judge it."""
    counts: dict[int, dict[str, int]] = {}
    verdicts: dict[str, str | None] = {}
    for row in rows:
        url = _text(row.get("notify_url"))
        if not url:
            continue
        try:
            target = read_target(url)
        except UnusableUrl as exc:
            origin, verdict = _shown_origin(url), exc.reason
        else:
            origin = f"{target.scheme}://{target.authority}"
            verdict = target_block_reason(target, allow_private=allow_private)
        verdicts[origin] = verdict
        per_merchant = counts.setdefault(int(row["uid"]), {})
        per_merchant[origin] = per_merchant.get(origin, 0) + 1
    return {
        pid: [NotifySite(origin, number, verdicts[origin]) for origin, number in sorted(origins.items())]
        for pid, origins in counts.items()
    }


def _shown_origin(url: str) -> str:
    """Scheme and host of a URL OpenEpay cannot read, without its credentials, path or query."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(not a URL)"
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"[:80]


async def import_merchants(gateway: Any, merchants: list[RainbowMerchant], *, dry_run: bool) -> ImportReport:
    """Create the merchants OpenEpay does not have yet; report those it has (their keys compared, never changed)."""
    report = ImportReport()
    async with gateway.db.session() as session:
        existing = {merchant.pid: merchant for merchant in (await session.scalars(select(Merchant))).all()}
    for merchant in merchants:
        if merchant.problems:
            report.skipped.append(merchant)
            continue
        if merchant.pid in existing:
            _note_existing(report, merchant, gateway.merchants.key_of(existing[merchant.pid]))
            continue
        if not dry_run:
            try:
                await gateway.merchants.create(
                    merchant.name,
                    pid=merchant.pid,
                    key=merchant.key,
                    refund_enabled=merchant.refund_enabled,
                    status=MerchantStatus.ACTIVE if merchant.enabled else MerchantStatus.DISABLED,
                    rsa_public_key=merchant.rsa_public_key,
                    rsa_only=merchant.rsa_only,
                    # Rainbow refuses MD5 on every endpoint for these merchants; here only V2 signs with RSA.
                    dialects=[V2_DIALECT] if merchant.rsa_only else None,
                )
            except MerchantRefused:
                # Created by someone else since the list above was read.
                _note_existing(report, merchant, gateway.merchants.key_of(await gateway.merchants.get(merchant.pid)))
                continue
        report.created.append(merchant)
    return report


async def import_history(gateway: Any, orders: list[RainbowOrder], report: ImportReport, *, dry_run: bool) -> None:
    """Keep the paid orders of the merchants that came over (or were here with the same key).

    They are history: no notification is sent for them and no balance moves. A shop asking
    ``api.php`` about one gets Rainbow's answer, and its number cannot be used for a new order.
    Written in batches, each in its own transaction: an interrupted import keeps what it wrote,
    and running it again adds the rest.
    """
    kept = {merchant.pid for merchant in report.created} | set(report.already_same_key)
    wanted: dict[tuple[int, str], RainbowOrder] = {}
    for order in orders:
        if order.pid not in kept:
            report.orders_of_merchants_left_out += 1
        elif (order.pid, order.out_trade_no) in wanted:
            # Rainbow lets a number be used again; here it names one order: the first paid one stays.
            report.orders_repeated += 1
        else:
            wanted[(order.pid, order.out_trade_no)] = order
    batch = list(wanted.values())
    for start in range(0, len(batch), HISTORY_BATCH):
        chunk = batch[start : start + HISTORY_BATCH]
        async with gateway.db.session() as session:
            taken_numbers = set(
                await session.scalars(select(Order.trade_no).where(Order.trade_no.in_([o.trade_no for o in chunk])))
            )
            pairs = await session.execute(
                select(Order.merchant_pid, Order.out_trade_no).where(
                    tuple_(Order.merchant_pid, Order.out_trade_no).in_([(o.pid, o.out_trade_no) for o in chunk])
                )
            )
            taken_keys = {(pid, number) for pid, number in pairs}
            new = [o for o in chunk if o.trade_no not in taken_numbers and (o.pid, o.out_trade_no) not in taken_keys]
            report.orders_already_here += len(chunk) - len(new)
            report.orders_imported += len(new)
            if not dry_run:
                session.add_all(_order_row(order) for order in new)


def _order_row(order: RainbowOrder) -> Order:
    status = OrderStatus.PAID
    if order.refunded_fen:
        status = OrderStatus.REFUNDED if order.refunded_fen >= order.paid_fen else OrderStatus.PARTIALLY_REFUNDED
    return Order(
        trade_no=order.trade_no,
        merchant_pid=order.pid,
        dialect=order.dialect,
        out_trade_no=order.out_trade_no,
        pay_type=order.pay_type,
        amount_fen=order.amount_fen,
        pay_amount_fen=order.paid_fen,
        money=format_yuan(order.amount_fen),
        name=order.name,
        notify_url=order.notify_url,
        return_url=order.return_url,
        param=order.param,
        clientip=order.clientip,
        attrs={"imported_from": "rainbow"},
        status=status,
        channel_trade_no=order.channel_trade_no,
        buyer=order.buyer,
        paid_fen=order.paid_fen,
        refunded_fen=order.refunded_fen,
        created_at=order.created_at,
        expires_at=order.created_at,
        paid_at=order.paid_at,
    )


def _note_existing(report: ImportReport, merchant: RainbowMerchant, key: str) -> None:
    same = hmac.compare_digest(key.encode(), merchant.key.encode())
    (report.already_same_key if same else report.already_other_key).append(merchant.pid)
