"""What ``openepay admin create`` and ``openepay merchant login`` share: a password that is long enough,
and a sign-in made on the gateway, each refusal one line."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from openepay.cli_runtime import fail, with_gateway
from openepay.config import Settings

if TYPE_CHECKING:
    from openepay.gateway import Gateway

T = TypeVar("T")


def strong_password(from_stdin: bool, otherwise: Callable[[], str]) -> str:
    """The first line of standard input (without its newline), or else what ``otherwise`` gives;
    a password too short to keep is the command's failure."""
    from openepay.admin.passwords import WeakPassword, check_strength

    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
    else:
        password = otherwise()
    try:
        check_strength(password)
    except WeakPassword as exc:
        raise fail(str(exc)) from None
    return password


def make_sign_in(create: Callable[[Gateway], Awaitable[T]]) -> T:
    """``create`` run on this gateway; a sign-in it cannot make (a taken or malformed name) is the command's failure."""
    from openepay.admin.users import UserError

    try:
        return with_gateway(Settings(), create)
    except UserError as exc:
        raise fail(str(exc)) from None
