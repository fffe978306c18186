"""Which addresses the gateway will connect to on a merchant's behalf.

A merchant-supplied URL is an SSRF vector: without care the gateway would fetch its own admin
ports, the cloud metadata service or the office network for whoever can create an order. Only
global unicast addresses are allowed by default; an operator switch opens the private networks a
self-hosted shop (or a test server) lives on, never the metadata services or the ranges no server
can live in. IPv4 wrapped in IPv6 (mapped, 6to4, Teredo, NAT64, compatible) is judged as the IPv4
address it reaches.
"""

from __future__ import annotations

import functools
import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata services answer on these even where private targets are allowed.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254", "169.254.170.2")
)
# What ``allow_private`` opens: the networks a self-hosted shop or a test server lives on.
# Everything else that is not global (reserved, broadcast, benchmarking, documentation) stays
# closed, because no merchant's server can legitimately live there.
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)
# Python counts these as global, yet no server can live there: IPv6's site-local range, withdrawn in
# 2004 (RFC 3879) and still routed inside old networks. IPv6's reserved space (``::/8`` past the
# IPv4-compatible addresses, the unassigned blocks) is refused through ``is_reserved``.
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")
# NAT64 gateways turn 64:ff9b::a.b.c.d into a.b.c.d, so such an address is as good as the IPv4 one.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip))
    return None


@functools.lru_cache(maxsize=4096)
def address_block_reason(ip: IPAddress, *, allow_private: bool) -> str | None:
    """Why we will not connect to ``ip``, or None when we will (a pure function, remembered: the same
    few addresses are judged on every notification)."""
    return _judged(ip, allow_private=allow_private)


def _judged(ip: IPAddress, *, allow_private: bool) -> str | None:
    """``address_block_reason`` itself, undecorated: mutation testing (mutmut) leaves decorated functions
    alone, and this is the function the SSRF checks rest on."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return _judged(embedded, allow_private=allow_private)
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    if ip.is_unspecified or ip.is_multicast:
        return f"{ip} is not a unicast address"
    if ip.is_global and not ip.is_reserved and ip not in _SITE_LOCAL:
        return None
    if allow_private and any(ip in network for network in _PRIVATE_NETWORKS):
        return None
    return f"{ip} is not a public address"
