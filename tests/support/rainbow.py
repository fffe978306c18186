"""A Rainbow Epay database on the machine's MariaDB, with the merchant and order tables Rainbow installs.

The columns, types and defaults are those of Rainbow's own install SQL (the V2 release, which
added ``refund``, ``transfer``, ``keytype`` and ``publickey`` to the merchant table); the
older releases lack those four, which ``LEGACY_USER_COLUMNS`` drops again.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pymysql
from typer.testing import CliRunner, Result

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}

USER_TABLE = """
CREATE TABLE `{prefix}user` (
  `uid` int(11) unsigned NOT NULL AUTO_INCREMENT, `gid` int(11) unsigned NOT NULL DEFAULT 0,
  `upid` int(11) unsigned NOT NULL DEFAULT 0, `key` varchar(32) NOT NULL, `pwd` varchar(32) DEFAULT NULL,
  `account` varchar(128) DEFAULT NULL, `username` varchar(128) DEFAULT NULL, `codename` varchar(32) DEFAULT NULL,
  `settle_id` tinyint(4) NOT NULL DEFAULT 1, `alipay_uid` varchar(32) DEFAULT NULL,
  `qq_uid` varchar(32) DEFAULT NULL, `wx_uid` varchar(32) DEFAULT NULL, `money` decimal(10,2) NOT NULL,
  `email` varchar(32) DEFAULT NULL, `phone` varchar(20) DEFAULT NULL, `qq` varchar(20) DEFAULT NULL,
  `url` varchar(64) DEFAULT NULL, `cert` tinyint(4) NOT NULL DEFAULT 0, `certtype` tinyint(4) NOT NULL DEFAULT 0,
  `certmethod` tinyint(4) NOT NULL DEFAULT 0, `certno` varchar(18) DEFAULT NULL,
  `certname` varchar(32) DEFAULT NULL, `certtime` datetime DEFAULT NULL, `certtoken` varchar(64) DEFAULT NULL,
  `certcorpno` varchar(30) DEFAULT NULL, `certcorpname` varchar(80) DEFAULT NULL,
  `addtime` datetime DEFAULT NULL, `lasttime` datetime DEFAULT NULL, `endtime` datetime DEFAULT NULL,
  `level` tinyint(1) NOT NULL DEFAULT 1, `pay` tinyint(1) NOT NULL DEFAULT 1,
  `settle` tinyint(1) NOT NULL DEFAULT 1, `keylogin` tinyint(1) NOT NULL DEFAULT 1,
  `apply` tinyint(1) NOT NULL DEFAULT 0, `mode` tinyint(4) NOT NULL DEFAULT 0,
  `status` tinyint(4) NOT NULL DEFAULT 0, `refund` tinyint(1) NOT NULL DEFAULT 1,
  `transfer` tinyint(1) NOT NULL DEFAULT 0, `keytype` tinyint(1) NOT NULL DEFAULT 0,
  `publickey` varchar(500) DEFAULT NULL, `channelinfo` text, `ordername` varchar(255) DEFAULT NULL,
  `msgconfig` text, `remain_money` varchar(20) DEFAULT NULL, `open_code` tinyint(1) NOT NULL DEFAULT 0,
  `deposit` decimal(10,2) DEFAULT NULL, `voice_devid` varchar(30) DEFAULT NULL,
  `voice_order` tinyint(1) NOT NULL DEFAULT 0, `pay_maxmoney` varchar(10) DEFAULT NULL,
  `pay_minmoney` varchar(10) DEFAULT NULL,
  PRIMARY KEY (`uid`), KEY `email` (`email`), KEY `phone` (`phone`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 AUTO_INCREMENT=1000
"""
LEGACY_USER_COLUMNS = ("refund", "transfer", "keytype", "publickey")

ORDER_TABLE = """
CREATE TABLE `{prefix}order` (
  `trade_no` char(19) NOT NULL, `out_trade_no` varchar(150) NOT NULL, `api_trade_no` varchar(150) DEFAULT NULL,
  `uid` int(11) unsigned NOT NULL, `tid` tinyint(11) unsigned NOT NULL DEFAULT 0, `type` int(10) unsigned NOT NULL,
  `channel` int(10) unsigned NOT NULL, `name` varchar(64) NOT NULL, `money` decimal(10,2) NOT NULL,
  `realmoney` decimal(10,2) DEFAULT NULL, `getmoney` decimal(10,2) DEFAULT NULL,
  `profitmoney` decimal(10,2) DEFAULT NULL, `refundmoney` decimal(10,2) DEFAULT NULL,
  `notify_url` varchar(255) DEFAULT NULL, `return_url` varchar(255) DEFAULT NULL, `param` varchar(255) DEFAULT NULL,
  `addtime` datetime NOT NULL, `endtime` datetime DEFAULT NULL, `date` date DEFAULT NULL,
  `domain` varchar(64) DEFAULT NULL, `domain2` varchar(64) DEFAULT NULL, `ip` varchar(50) DEFAULT NULL,
  `buyer` varchar(100) DEFAULT NULL, `status` tinyint(1) NOT NULL DEFAULT 0, `notify` int(5) NOT NULL DEFAULT 0,
  `notifytime` datetime DEFAULT NULL, `invite` int(11) unsigned NOT NULL DEFAULT 0,
  `invitemoney` decimal(10,2) DEFAULT NULL, `combine` tinyint(1) NOT NULL DEFAULT 0,
  `profits` int(11) NOT NULL DEFAULT 0, `profits2` int(11) NOT NULL DEFAULT 0,
  `settle` tinyint(1) NOT NULL DEFAULT 0, `subchannel` int(11) NOT NULL DEFAULT 0,
  `payurl` varchar(500) DEFAULT NULL, `ext` text, `version` tinyint(1) NOT NULL DEFAULT 0,
  `bill_trade_no` varchar(150) DEFAULT NULL, `bill_mch_trade_no` varchar(150) DEFAULT NULL,
  `mobile` varchar(100) DEFAULT NULL,
  PRIMARY KEY (`trade_no`), KEY `uid` (`uid`), KEY `out_trade_no` (`out_trade_no`,`uid`), KEY `date` (`date`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8
"""

TYPE_TABLE = """
CREATE TABLE `{prefix}type` (
  `id` int(11) unsigned NOT NULL AUTO_INCREMENT, `name` varchar(30) NOT NULL,
  `device` int(1) unsigned NOT NULL DEFAULT 0, `showname` varchar(30) NOT NULL,
  `status` tinyint(1) NOT NULL DEFAULT 0, PRIMARY KEY (`id`), KEY `name` (`name`,`device`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8
"""
PAY_TYPES = ((1, "alipay", "支付宝"), (2, "wxpay", "微信支付"), (3, "qqpay", "QQ钱包"))


@dataclass
class RainbowDb:
    name: str
    prefix: str

    @property
    def url(self) -> str:
        return f"mysql://root@{MARIADB['host']}:{MARIADB['port']}/{self.name}"

    def connect(self) -> pymysql.connections.Connection:
        return pymysql.connect(**MARIADB, database=self.name, charset="utf8mb4", autocommit=True)

    def execute(self, statement: str, *args: Any) -> None:
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute(statement, args or None)

    def add_user(self, uid: int, key: str, **columns: Any) -> None:
        """A merchant as Rainbow's admin page creates one: enabled (status 1), balance zero."""
        row = {"uid": uid, "key": key, "money": "0.00", "status": 1, "addtime": "2025-01-01 00:00:00", **columns}
        names = ", ".join(f"`{name}`" for name in row)
        marks = ", ".join(["%s"] * len(row))
        self.execute(f"INSERT INTO `{self.prefix}user` ({names}) VALUES ({marks})", *row.values())

    def add_order(self, trade_no: str, uid: int, notify_url: str, addtime: str, **columns: Any) -> None:
        row = {
            "trade_no": trade_no,
            "out_trade_no": f"OUT{trade_no}",
            "uid": uid,
            "type": 1,
            "channel": 1,
            "name": "VIP",
            "money": "1.00",
            "notify_url": notify_url,
            "addtime": addtime,
            **columns,
        }
        names = ", ".join(f"`{name}`" for name in row)
        marks = ", ".join(["%s"] * len(row))
        self.execute(f"INSERT INTO `{self.prefix}order` ({names}) VALUES ({marks})", *row.values())


@contextmanager
def rainbow_database(prefix: str = "pay_", *, legacy: bool = False) -> Iterator[RainbowDb]:
    """A uniquely named MariaDB database holding Rainbow's merchant and order tables, dropped afterwards."""
    name = f"rainbow_test_{secrets.token_hex(4)}"
    with pymysql.connect(**MARIADB, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    database = RainbowDb(name, prefix)
    try:
        database.execute(USER_TABLE.format(prefix=prefix))
        database.execute(ORDER_TABLE.format(prefix=prefix))
        database.execute(TYPE_TABLE.format(prefix=prefix))
        for number, pay_type, shown in PAY_TYPES:
            database.execute(
                f"INSERT INTO `{prefix}type` (`id`, `name`, `showname`, `status`) VALUES (%s, %s, %s, 1)",
                number, pay_type, shown,
            )  # fmt: skip
        if legacy:
            for column in LEGACY_USER_COLUMNS:
                database.execute(f"ALTER TABLE `{prefix}user` DROP COLUMN `{column}`")
        yield database
    finally:
        with pymysql.connect(**MARIADB, autocommit=True) as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


def openepay_in_process(database_url: str, *args: str, **env: str) -> Result:
    """``openepay ARGS`` run in this process (its own event loop: call it from a thread), on the test's database."""
    from openepay.cli import app
    from tests.support.settings import TEST_SECRET

    environment = {
        "OPENEPAY_DATABASE_URL": database_url,
        "OPENEPAY_SECRET_KEY": TEST_SECRET,
        "OPENEPAY_SANDBOX": "1",
        "OPENEPAY_LOG_LEVEL": "WARNING",
        **env,
    }
    return CliRunner().invoke(app, list(args), env=environment, catch_exceptions=False)
