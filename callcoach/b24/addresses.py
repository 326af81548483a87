"""Which network addresses the app connects to on a portal's behalf.

A portal's host is vouched for by the OAuth server at install, and every download and CoPilot
callback must be on that host (``download.py``, ``copilot/service.py``). What the host name
resolves to is still up to whoever runs its DNS, and a name can be pointed anywhere later (DNS
rebinding). So the check is made again where the connection is made, on the addresses the name
resolved to, at every connection:

- never a link-local address (the cloud metadata service, 169.254.169.254, lives there), a
  cloud's other metadata addresses, or an unspecified, multicast or reserved one;
- a private, loopback or carrier-grade-NAT address only where the operator allows it
  (``CALLCOACH_ALLOW_PRIVATE_PORTALS``: an on-premises Bitrix24 inside the company network).

Hosts the operator configured (the OAuth server, the LLM servers, an inbound webhook's portal)
are trusted as they are: a local OpenAI-compatible server on 127.0.0.1 is a normal set-up.

The check lives in the connector (``GuardedConnector._resolve_host``), the one place that sees
both the name and the addresses actually dialled, literal IP hosts included; aiohttp's own
comment there anticipates a "connector-level policy" of this kind.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import ResolveResult

# Metadata services outside the link-local range: AWS over IPv6, Alibaba Cloud.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200"))
SHARED_NAT = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598: inside a provider's network


class ForbiddenAddress(OSError):
    """A portal host resolved only to addresses the app must not connect to."""


@dataclass(frozen=True)
class AddressPolicy:
    allow_private: bool = False
    trusted_hosts: frozenset[str] = frozenset()

    @classmethod
    def for_urls(cls, allow_private: bool, trusted_urls: Iterable[str | None]) -> AddressPolicy:
        hosts = {(urlsplit(u).hostname or "").lower() for u in trusted_urls if u}
        return cls(allow_private, frozenset(hosts - {""}))

    def refusal(self, address: str) -> str | None:
        """Why ``address`` may not be dialled for a portal, or None."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
        except ValueError:
            return f"{address} is not an IP address"
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254
        if ip in METADATA_ADDRESSES or ip.is_link_local:
            return f"{ip} is a link-local or cloud metadata address"
        if ip.is_unspecified or ip.is_multicast:
            return f"{ip} is not a host address"
        if ip.is_private or ip.is_loopback or (ip.version == 4 and ip in SHARED_NAT):
            # before is_reserved: ::1 sits in a reserved IPv6 block
            if self.allow_private:
                return None
            return f"{ip} is a private address (CALLCOACH_ALLOW_PRIVATE_PORTALS allows one)"
        if ip.is_reserved:
            return f"{ip} is not a host address"
        return None


class GuardedConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` that dials only addresses ``policy`` allows (trusted hosts aside)."""

    def __init__(self, policy: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy = policy

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Any] | None = None
    ) -> list[ResolveResult]:
        resolved = await super()._resolve_host(host, port, traces)
        if host.lower().rstrip(".").strip("[]") in self.policy.trusted_hosts:
            return resolved
        allowed = [r for r in resolved if self.policy.refusal(r["host"]) is None]
        if not allowed:
            reasons = sorted({self.policy.refusal(r["host"]) or "" for r in resolved})
            raise ForbiddenAddress(f"{host}: {'; '.join(reasons) or 'no address'}")
        return allowed


def forbidden(exc: BaseException) -> ForbiddenAddress | None:
    """The refusal behind an aiohttp connection error, if that is what it was."""
    os_error = getattr(exc, "os_error", None)
    return os_error if isinstance(os_error, ForbiddenAddress) else None
