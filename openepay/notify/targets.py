"""Reading a merchant's URL once, the same way for the check at order creation and for the client.

The hole this closes: ``http://127。0。0。1/`` (ideographic full stops) passed a creation check
that read ``urlsplit().hostname`` (not an IP address, not a local name) while the HTTP client
IDNA-mapped the very same host to 127.0.0.1 and connected to loopback. Two URL readers always
disagree somewhere: IDNA mapping (U+3002, U+FF0E, U+FF61, fullwidth digits), the numeric IPv4
spellings every resolver accepts (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``),
percent-encoded hosts, zone ids, backslashes. So there is one reader, ``read_target``; the
creation checks judge what it returns and the client connects to nothing else.

Where a host has a meaning, it gets the meaning the WHATWG URL standard gives it (what browsers
and curl do): a host that ends in a number is an IPv4 address in any of its spellings, written
back as four decimals; an international name is UTS #46-mapped and sent as punycode. What no
merchant needs is refused instead of guessed at: a non-ASCII host that maps to an IP address,
percent-encoding or a zone id in the host, credentials, control characters anywhere.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

from openepay.notify.addresses import IPAddress, address_block_reason

DEFAULT_PORTS = {"http": 80, "https": 443}
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
MAX_NAME = 253
MAX_LABEL = 63

# CR, LF and TAB would be dropped by urlsplit (and by browsers), so the URL checked would not be
# the URL stored; the other controls have no place in a URL either.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ASCII_NAME = re.compile(r"[a-z0-9_.-]+")
_DOTTED_QUAD = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
_DIGITS = {10: re.compile(r"[0-9]+"), 16: re.compile(r"[0-9a-fA-F]+"), 8: re.compile(r"[0-7]+")}
# The WHATWG path and query percent-encode sets: what a browser escapes before sending a URL.
# Each is one character class (what may stay as it is, negated): controls, space, non-ASCII, and
# " # < > in both, ? ` { } in paths too.
_PATH_ESCAPES = re.compile(r"[^\x21\x24-\x3b\x3d\x40-\x5f\x61-\x7a\x7c\x7e]")
_QUERY_ESCAPES = re.compile(r"[^\x21\x24-\x3b\x3d\x3f-\x7e]")


class UnusableUrl(ValueError):
    """A URL nothing can be delivered to. ``unresolvable``: the host is a name no resolver could look up."""

    def __init__(self, reason: str, *, unresolvable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unresolvable = unresolvable


@dataclass(frozen=True)
class Target:
    """Where a request goes and what it says, as the client will send it."""

    scheme: str
    host: str  # ASCII: a lower-case name (punycode for international ones), or the address
    port: int
    address: IPAddress | None  # set when the host is an IP address
    authority: str  # the Host header: host, brackets around IPv6, the port unless it is the scheme's default
    request_target: str  # path and query, percent-encoded, no fragment

    @property
    def secure(self) -> bool:
        return self.scheme == "https"


def read_target(url: str) -> Target:
    """The one reading of ``url``; raises ``UnusableUrl`` with a reason a merchant can act on."""
    if _CONTROL.search(url):
        raise UnusableUrl("control characters (CR, LF, TAB...) are not allowed in a URL")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UnusableUrl("not a valid URL") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise UnusableUrl("only http and https URLs are allowed")
    if "@" in parts.netloc:
        raise UnusableUrl("credentials in the URL are not allowed")
    host_text, bracketed, port_text = _split_authority(parts.netloc)
    if not host_text and not bracketed:
        raise UnusableUrl("the URL has no host")
    port = _port(port_text, parts.scheme)
    host, address = _read_host(host_text, bracketed)
    shown_host = f"[{host}]" if isinstance(address, ipaddress.IPv6Address) else host
    authority = shown_host if port == DEFAULT_PORTS[parts.scheme] else f"{shown_host}:{port}"
    request_target = _escaped(_PATH_ESCAPES, parts.path or "/")
    if parts.query:
        request_target += "?" + _escaped(_QUERY_ESCAPES, parts.query)
    return Target(parts.scheme, host, port, address, authority, request_target)


def _is_local_name(host: str) -> bool:
    name = host.rstrip(".")  # "localhost." is the same name as "localhost"
    return name in LOCAL_NAMES or name.endswith(".localhost")


def target_block_reason(target: Target, *, allow_private: bool) -> str | None:
    """What can be refused before any lookup: a forbidden address, or a name that is local by definition."""
    if target.address is not None:
        return address_block_reason(target.address, allow_private=allow_private)
    if not allow_private and _is_local_name(target.host):
        return f"{target.host} is a local name"
    return None


def url_block_reason(url: str, *, allow_private: bool) -> str | None:
    """Why ``url`` can never be delivered to, judged without DNS; None when it may be.

    Every dialect's order creation refuses a ``notify_url`` with its own error when this gives a
    reason, and the client asks it again before every delivery.
    """
    try:
        target = read_target(url)
    except UnusableUrl as exc:
        return exc.reason
    return target_block_reason(target, allow_private=allow_private)


def _split_authority(netloc: str) -> tuple[str, bool, str]:
    """(host, whether it was in brackets, port text) of a netloc without credentials."""
    if netloc.startswith("["):
        host, closing, rest = netloc[1:].partition("]")
        if not closing or (rest and not rest.startswith(":")):
            raise UnusableUrl("not a valid URL")
        return host, True, rest[1:]
    host, _, port = netloc.partition(":")
    return host, False, port


def _port(text: str, scheme: str) -> int:
    if not text:
        return DEFAULT_PORTS[scheme]
    if not _DIGITS[10].fullmatch(text) or int(text) > 65535:
        raise UnusableUrl("not a valid URL")
    if int(text) == 0:
        raise UnusableUrl("port 0 is not allowed")
    return int(text)


@functools.lru_cache(maxsize=4096)
def _read_host(text: str, bracketed: bool) -> tuple[str, IPAddress | None]:
    """A pure function of the host as written, remembered: a merchant's host repeats on every notification
    (a refused host raises each time: exceptions are not remembered)."""
    return _host_reading(text, bracketed)


def _host_reading(text: str, bracketed: bool) -> tuple[str, IPAddress | None]:
    """``_read_host`` itself, undecorated: mutation testing (mutmut) leaves decorated functions alone."""
    if bracketed:
        if "%" in text:
            raise UnusableUrl("IPv6 zone ids are not allowed")
        try:
            address = ipaddress.IPv6Address(text)
        except ValueError:
            raise UnusableUrl(f"[{text}] is not a valid IPv6 address") from None
        return str(address), address
    if "%" in text:
        raise UnusableUrl("percent-encoded host names are not allowed")
    if not text.isascii():
        return _read_international(text), None
    name = text.lower()
    if _DOTTED_QUAD.fullmatch(name):
        try:  # the usual spelling, read the same by every parser; the rest take the long way below
            return name, ipaddress.IPv4Address(name)
        except ValueError:
            pass
    if _ends_in_number(name):
        address = _ipv4(name)
        if address is None:
            raise UnusableUrl(f"{text} is not a valid IPv4 address")
        return str(address), address
    _check_name(name, text)
    return name, None


def _read_international(text: str) -> str:
    """UTS #46 mapping, then punycode; a name that maps to an IP address is refused, not followed.

    The reasons do not repeat the host: they reach merchants of dialects that answer in ASCII.
    """
    try:
        mapped = idna.uts46_remap(text, std3_rules=False)
        if _ends_in_number(mapped):
            raise UnusableUrl("the host is an IP address written with non-ASCII characters")
        name = idna.encode(mapped).decode("ascii")
    except idna.IDNAError:
        raise UnusableUrl("the host is not a valid international domain name", unresolvable=True) from None
    _check_name(name, name)
    return name


def _check_name(name: str, shown: str) -> None:
    labels = name.removesuffix(".").split(".")
    if (
        not _ASCII_NAME.fullmatch(name)
        or len(name.removesuffix(".")) > MAX_NAME
        or any(not 0 < len(label) <= MAX_LABEL for label in labels)
    ):
        raise UnusableUrl(f"{shown} is not a valid host name", unresolvable=True)


def _labels(host: str) -> list[str]:
    """The dot-separated parts, without the empty one a trailing dot leaves."""
    labels = host.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()
    return labels


def _ends_in_number(host: str) -> bool:
    """WHATWG's test for "this host is an IPv4 address" (valid or not)."""
    last = _labels(host)[-1]
    return bool(_DIGITS[10].fullmatch(last)) or (last != "" and _ipv4_number(last) is not None)


def _ipv4_number(text: str) -> int | None:
    radix = 10
    if text[:2] == "0x":  # hosts are lower case by now
        text, radix = text[2:], 16
    elif len(text) > 1 and text.startswith("0"):
        text, radix = text[1:], 8
    if text == "":
        return 0
    return int(text, radix) if _DIGITS[radix].fullmatch(text) else None


def _ipv4(host: str) -> ipaddress.IPv4Address | None:
    """WHATWG's IPv4 parser: one to four parts, each decimal, octal (leading 0) or hex (0x)."""
    labels = _labels(host)
    if len(labels) > 4 or "" in labels:
        return None
    numbers = [_ipv4_number(label) for label in labels]
    if any(n is None for n in numbers):
        return None
    *leading, last = numbers  # type: ignore[misc]
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    return ipaddress.IPv4Address(last + sum(n << (8 * (3 - i)) for i, n in enumerate(leading)))


def _escaped(pattern: re.Pattern[str], text: str) -> str:
    return pattern.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8", "surrogatepass")), text)
