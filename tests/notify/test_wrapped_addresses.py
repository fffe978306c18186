"""An IPv4 address wrapped in IPv6 is judged as the IPv4 address it reaches, and only then.

Teredo, the deprecated IPv4-compatible form (``::a.b.c.d``), 6to4 and NAT64 each carry an IPv4
address a packet ends up at; the reason names that address, so a merchant sees why. IPv6 space
that is no address at all (reserved, site-local) is refused like the IPv4 ranges no server lives in.
"""

from __future__ import annotations

import ipaddress

import pytest

from openepay.notify.addresses import address_block_reason
from openepay.notify.targets import url_block_reason

METADATA = "169.254.169.254 is a cloud metadata address"


@pytest.mark.parametrize(
    ("address", "reason", "reason_when_private_allowed"),
    [
        # Teredo: server 65.54.227.120 (public), client 127.0.0.1 / 169.254.169.254 (obfuscated, as sent)
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1 is not a public address", None),
        ("2001:0:4136:e378:8000:ffff:5601:5601", METADATA, METADATA),
        # IPv4-compatible ::a.b.c.d: judged as a.b.c.d (the IPv6 address itself would pass as global)
        ("::7f00:1", "127.0.0.1 is not a public address", None),
        ("::a9fe:a9fe", METADATA, METADATA),
        ("::2", "0.0.0.2 is not a public address", "0.0.0.2 is not a public address"),
        ("::808:808", None, None),
        # 6to4 and NAT64
        ("2002:a9fe:a9fe::1", METADATA, METADATA),
        ("2002:808:808::1", None, None),
        ("64:ff9b::a9fe:a9fe", METADATA, METADATA),
        ("64:ff9b::808:808", None, None),
    ],
)
def test_an_ipv4_address_wrapped_in_ipv6_is_judged_as_the_address_it_reaches(
    address, reason, reason_when_private_allowed
):
    ip = ipaddress.IPv6Address(address)
    assert address_block_reason(ip, allow_private=False) == reason
    assert address_block_reason(ip, allow_private=True) == reason_when_private_allowed
    assert url_block_reason(f"http://[{address}]:8080/notify", allow_private=False) == reason


def test_a_teredo_address_is_judged_by_its_client_not_its_server():
    # Server 10.0.0.1 (private), client 8.8.8.8 (public): the packet ends up at the client.
    ip = ipaddress.IPv6Address("2001:0:a00:1:8000:ffff:f7f7:f7f7")
    assert address_block_reason(ip, allow_private=False) is None


@pytest.mark.parametrize(
    "address",
    [
        "::1:7f00:1",  # just past the IPv4-compatible ::/96: no IPv4 address, reserved space
        "::1:0:2",
        "::ffff:0:7f00:1",  # the withdrawn IPv4-translated form
        "4000::1",  # unassigned
        "fec0::1",  # site-local, withdrawn in 2004 and still routed inside old networks
    ],
)
@pytest.mark.parametrize("allow_private", [False, True])
def test_ipv6_space_where_no_server_lives_is_refused_as_itself(address, allow_private):
    ip = ipaddress.IPv6Address(address)
    assert address_block_reason(ip, allow_private=allow_private) == f"{address} is not a public address"
