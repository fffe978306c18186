"""One reading of a merchant's URL, shared by the creation checks and the client.

Every spelling a resolver, an IDNA codec or a browser would turn into a private address must be
read as that address (and refused), or refused outright; a property test holds the reading
against glibc's ``inet_aton`` behind UTS #46 mapping, the path the old client took.
"""

from __future__ import annotations

import ipaddress
import socket

import idna
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from openepay.notify.addresses import address_block_reason
from openepay.notify.targets import UnusableUrl, read_target, url_block_reason

NON_ASCII_LOOPBACK = [
    "127。0。0。1",  # U+3002 ideographic full stop
    "127．0．0．1",  # U+FF0E fullwidth full stop
    "127｡0｡0｡1",  # U+FF61 halfwidth ideographic full stop
    "１２７.０.０.１",  # fullwidth digits
    "①②⑦.0.0.1",  # circled digits map to ASCII digits too
    "127。1",
    "0x7f。1",
    "２１３０７０６４３３",
]
NON_ASCII_ELSEWHERE = [
    "169。254。169。254",
    "10。0。0。1",
    "192．168．1．1",
    "８.８.８.８",
    "shop.例子.１２３",
    "⑴27.0.0.1",  # maps to "(1)27.0.0.1", as browsers map it (no STD3 rules): a number at the end, not a name
]


@pytest.mark.parametrize("host", NON_ASCII_LOOPBACK + NON_ASCII_ELSEWHERE)
@pytest.mark.parametrize("allow_private", [False, True])
def test_a_non_ascii_host_that_maps_to_an_ip_address_is_refused(host, allow_private):
    reason = "the host is an IP address written with non-ASCII characters"
    assert url_block_reason(f"http://{host}/latest/meta-data/", allow_private=allow_private) == reason
    assert url_block_reason(f"http://{host}:8080/x", allow_private=allow_private) == reason


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.000.000.001", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0x7f.0x0.0x0.0x1", "127.0.0.1"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("2852039166", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("10.1", "10.0.0.1"),
        ("0", "0.0.0.0"),
        ("134744072", "8.8.8.8"),
        ("0x8.0x8.0x8.0x8", "8.8.8.8"),
        ("0xff.0xff.0xff.0xff", "255.255.255.255"),
        ("255.1", "255.0.0.1"),
        ("0x7f.0x.0x.1", "127.0.0.1"),  # a bare 0x is 0
    ],
)
def test_every_spelling_of_an_ipv4_address_is_read_as_that_address(spelling, address):
    target = read_target(f"http://{spelling}:8080/notify")
    assert target.address == ipaddress.IPv4Address(address)
    assert (target.host, target.authority) == (address, f"{address}:8080")
    expected = address_block_reason(ipaddress.IPv4Address(address), allow_private=False)
    assert url_block_reason(f"http://{spelling}/notify", allow_private=False) == expected


@pytest.mark.parametrize(
    "spelling",
    [
        "256.0.0.1",
        "1.2.3.4.5",
        "127.0.0.1.0",  # five parts, the last one 0: not 127.0.0.1
        "127..1",  # an empty part is not a 0
        "08.0.0.1",
        "0x1g.0.0.1",
        "4294967296",
        "1.2.65536",
        "shop.example.123",
        "shop.example.09",  # a leading 0 makes it octal, where 9 is no digit
    ],
)
def test_a_host_that_ends_in_a_number_but_is_no_ipv4_address_is_refused(spelling):
    assert url_block_reason(f"http://{spelling}/n", allow_private=True) == f"{spelling} is not a valid IPv4 address"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://%31%32%37.0.0.1/n", "percent-encoded host names are not allowed"),
        ("http://shop%2eexample.com/n", "percent-encoded host names are not allowed"),
        ("http://[fe80::1%25eth0]:8080/n", "IPv6 zone ids are not allowed"),
        ("http://[fe80::1%eth0]/n", "IPv6 zone ids are not allowed"),
        ("http://[v1.x]/n", "[v1.x] is not a valid IPv6 address"),
        ("http://[127.0.0.1]/n", "not a valid URL"),
        ("http://[::1]x/n", "not a valid URL"),
        ("http://[::1]:80]/n", "not a valid URL"),
        ("http://8.8.8.8@127.0.0.1/n", "credentials in the URL are not allowed"),
        ("http://8.8.8.8:80@127.0.0.1/n", "credentials in the URL are not allowed"),
        ("http://shop.example.com\\@127.0.0.1/n", "credentials in the URL are not allowed"),
        ("http://:@8.8.8.8/n", "credentials in the URL are not allowed"),
        ("http://8.8.8.8\\.127.0.0.1/n", "8.8.8.8\\.127.0.0.1 is not a valid IPv4 address"),
        ("http://shop.example.com:８０/n", "not a valid URL"),
        ("http://shop.example.com:+80/n", "not a valid URL"),
        ("http://shop.example.com:80:80/n", "not a valid URL"),
        ("http://::1/n", "the URL has no host"),
        ("HTTP://[::1]/n", "::1 is not a public address"),
        ("http://[::ffff:7f00:1]/n", "127.0.0.1 is not a public address"),
        ("http://[::ffff:127.0.0.1]/n", "127.0.0.1 is not a public address"),
        ("http://[0:0:0:0:0:ffff:a9fe:a9fe]/n", "169.254.169.254 is a cloud metadata address"),
    ],
)
def test_hosts_no_merchant_needs_are_refused_rather_than_guessed(url, reason):
    assert url_block_reason(url, allow_private=False) == reason


@pytest.mark.parametrize("character", ["\r", "\n", "\t", "\x00", "\x0b", "\x1f", "\x7f"])
@pytest.mark.parametrize(
    "template",
    [
        "http://shop.example.com/notify{c}",
        "http://shop.exa{c}mple.com/n",
        "http://127.0.0.1{c}.shop.example.com/n",
        "{c}http://shop.example.com/n",
        "http://shop.example.com/n?a=1{c}Host: evil",
    ],
)
def test_control_characters_anywhere_in_the_url_are_refused(character, template):
    url = template.format(c=character)
    reason = "control characters (CR, LF, TAB...) are not allowed in a URL"
    assert url_block_reason(url, allow_private=True) == reason
    with pytest.raises(UnusableUrl):
        read_target(url)


@pytest.mark.parametrize(
    ("url", "host", "authority", "request_target"),
    [
        ("https://shop.example.com/notify?a=1#x", "shop.example.com", "shop.example.com", "/notify?a=1"),
        ("http://SHOP.Example.COM:80/n", "shop.example.com", "shop.example.com", "/n"),
        ("https://shop.example.com:443", "shop.example.com", "shop.example.com", "/"),
        ("http://shop.example.com:8080?x", "shop.example.com", "shop.example.com:8080", "/?x"),
        ("http://shop.example.com./n", "shop.example.com.", "shop.example.com.", "/n"),
        ("http://my_shop.example.com/n", "my_shop.example.com", "my_shop.example.com", "/n"),
        (
            "http://例子.中国/回调.php?名=值 1",
            "xn--fsqu00a.xn--fiqs8s",
            "xn--fsqu00a.xn--fiqs8s",
            "/%E5%9B%9E%E8%B0%83.php?%E5%90%8D=%E5%80%BC%201",
        ),
        ("http://ＳＨＯＰ.example.com/n", "shop.example.com", "shop.example.com", "/n"),
        ("http://faß.de/n", "xn--fa-hia.de", "xn--fa-hia.de", "/n"),
        ("http://[2001:DB8::1]:8443/n", "2001:db8::1", "[2001:db8::1]:8443", "/n"),
        ('http://8.8.8.8/a b/%41?q=%zz&r="<>`{}"', "8.8.8.8", "8.8.8.8", "/a%20b/%41?q=%zz&r=%22%3C%3E`{}%22"),
        ("http://8.8.8.8/{x}?`", "8.8.8.8", "8.8.8.8", "/%7Bx%7D?`"),
        ("http://8.8.8.8/\udcff?\ud800", "8.8.8.8", "8.8.8.8", "/%ED%B3%BF?%ED%A0%80"),  # lone surrogates
    ],
)
def test_what_the_client_will_send(url, host, authority, request_target):
    target = read_target(url)
    assert (target.host, target.authority, target.request_target) == (host, authority, request_target)


@pytest.mark.parametrize(
    "host", ["ｌｏｃａｌｈｏｓｔ", "LOCALHOST.", "shop.ｌｏｃａｌｈｏｓｔ", "ip6-localhost", "localhost.localdomain"]
)
def test_every_spelling_of_a_local_name_is_a_local_name(host):
    reason = url_block_reason(f"http://{host}/n", allow_private=False)
    assert reason is not None and reason.endswith("is a local name")
    assert url_block_reason(f"http://{host}/n", allow_private=True) is None


@pytest.mark.parametrize(
    "host",
    [
        "a" * 63 + ".com",  # a label at its 63-character limit
        ".".join(["a" * 63] * 3 + ["b" * 61]),  # a name at its 253-character limit
        ".".join(["a" * 63] * 3 + ["b" * 61]) + ".",  # the same name with its final dot
    ],
)
def test_a_name_at_the_length_limits_is_read_as_written(host):
    target = read_target(f"http://{host}/n")
    assert (target.host, target.address) == (host, None)
    assert url_block_reason(f"http://{host}/n", allow_private=False) is None


def test_ports_run_from_1_to_65535():
    assert [read_target(f"http://shop.example.com:{port}/n").port for port in (1, 65535)] == [1, 65535]
    assert url_block_reason("http://shop.example.com:65536/n", allow_private=False) == "not a valid URL"
    assert url_block_reason("http://shop.example.com:0/n", allow_private=False) == "port 0 is not allowed"


LONG_LABEL = "a" * 64 + ".com"
LONG_NAME = "a." * 127 + "com"


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("shop..example.com", "shop..example.com is not a valid host name"),
        (LONG_LABEL, f"{LONG_LABEL} is not a valid host name"),
        (LONG_NAME, f"{LONG_NAME} is not a valid host name"),
        ("a!b.com", "a!b.com is not a valid host name"),
        (".", ". is not a valid host name"),
        ("例子_x!.中国", "the host is not a valid international domain name"),
        ("\u00ad", "the host is not a valid international domain name"),  # a soft hyphen maps to nothing
        ("例子.中国\u0000", "control characters (CR, LF, TAB...) are not allowed in a URL"),
    ],
)
def test_a_name_that_no_resolver_could_look_up_is_refused(host, reason):
    url = f"http://{host}/n"
    with pytest.raises(UnusableUrl) as refused:
        read_target(url)
    assert refused.value.reason == reason == url_block_reason(url, allow_private=True)
    assert refused.value.unresolvable is reason.endswith("name")


# --- against another reader -------------------------------------------------------------------

# What hosts are made of when someone tries to smuggle an address past a URL check.
HOST_PIECES = st.sampled_from(
    [
        "0",
        "1",
        "7",
        "8",
        "9",
        "00",
        "01",
        "0x",
        "0X",
        "f",
        "7f",
        "a9",
        "fe",
        "127",
        "169",
        "254",
        "10",
        "192",
        "168",
        "255",
        "256",
        "4294967295",
        ".",
        ".",
        ".",
        "。",
        "．",
        "｡",
        "１",
        "２",
        "７",
        "０",
        "ｘ",
        "①",
        "e",
        "-",
    ]
)


def _resolver_reading(host: str) -> ipaddress.IPv4Address | None:
    """What the old client did: UTS #46 / IDNA mapping, then glibc's numeric-host parser."""
    try:
        mapped = idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        mapped = host if host.isascii() else ""
    try:
        return ipaddress.IPv4Address(socket.inet_aton(mapped.rstrip(".")))
    except (OSError, ValueError):
        return None


@settings(max_examples=1500, deadline=None)
@given(st.lists(HOST_PIECES, min_size=1, max_size=9).map("".join))
@example("127。0。0。1")
@example("0x7f.1")
@example("2130706433.")
def test_no_host_a_resolver_reads_as_a_private_address_passes_the_check(host):
    address = _resolver_reading(host)
    if address is None or address.is_global:
        return
    url = f"http://{host}/notify"
    assert url_block_reason(url, allow_private=False) is not None
    try:
        target = read_target(url)
    except UnusableUrl:
        return
    assert target.address == address  # where a host is read at all, it is read as the resolver reads it
