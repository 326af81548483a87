"""Which addresses the app dials for a portal (b24/addresses.py): the policy itself, and the
guarded connector against the fake portal over real HTTP on 127.0.0.1 (a private address)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from callcoach.b24 import B24Client, B24TransportError, ForbiddenDownload
from callcoach.b24.addresses import AddressPolicy, GuardedConnector, forbidden
from tests.fakes.portal import FakePortal


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",  # AWS, GCP, Azure metadata: link-local
        "::ffff:169.254.169.254",  # the same, IPv4-mapped
        "fd00:ec2::254",  # AWS metadata over IPv6
        "100.100.100.200",  # Alibaba Cloud metadata
        "fe80::1%eth0",
        "0.0.0.0",
        "224.0.0.1",
    ],
)
def test_metadata_link_local_and_non_host_addresses_are_never_dialled(address: str) -> None:
    assert AddressPolicy(allow_private=True).refusal(address) is not None


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.0.10", "127.0.0.1", "::1", "100.64.0.7", "fc00::5"])
def test_private_addresses_only_where_the_operator_allows_them(address: str) -> None:
    refusal = AddressPolicy(allow_private=False).refusal(address)
    assert refusal is not None and "CALLCOACH_ALLOW_PRIVATE_PORTALS" in refusal
    assert AddressPolicy(allow_private=True).refusal(address) is None


@pytest.mark.parametrize("address", ["87.250.250.242", "2a02:6b8::2:242"])
def test_public_addresses_are_dialled(address: str) -> None:
    assert AddressPolicy(allow_private=False).refusal(address) is None


def test_configured_hosts_are_trusted_by_name() -> None:
    policy = AddressPolicy.for_urls(
        False, ["http://127.0.0.1:8000/v1", "https://oauth.bitrix.info/oauth/token/"]
    )
    assert policy.trusted_hosts == {"127.0.0.1", "oauth.bitrix.info"}


async def _get(policy: AddressPolicy, url: str) -> int:
    async with aiohttp.ClientSession(connector=GuardedConnector(policy)) as http, http.get(url) as resp:
        return resp.status


async def test_the_connector_refuses_a_private_portal_by_ip_and_by_name(portal: FakePortal) -> None:
    refused = AddressPolicy(allow_private=False)
    for url in (portal.url + "/", portal.url.replace("127.0.0.1", "localhost") + "/"):
        with pytest.raises(aiohttp.ClientConnectorError) as info:
            await _get(refused, url)
        reason = forbidden(info.value)
        assert reason is not None and "private address" in str(reason)
    assert await _get(AddressPolicy(allow_private=True), portal.url + "/") < 500
    # the operator's own configured hosts (an OAuth server, a local LLM) are dialled as they are
    assert await _get(AddressPolicy(trusted_hosts=frozenset({"127.0.0.1"})), portal.url + "/") < 500


async def test_a_portal_on_a_refused_address_gets_no_request_and_a_clear_reason(
    portal: FakePortal, tmp_path: Path
) -> None:
    portal.add_call("rec", recording=b"ID3" + bytes(5000), user_id=1, duration=60)
    async with aiohttp.ClientSession(connector=GuardedConnector(AddressPolicy())) as http:
        client = B24Client.for_webhook(http, portal.webhook_url)
        with pytest.raises(B24TransportError, match="private address"):
            await client.call("voximplant.statistic.get", {"FILTER": {"CALL_ID": "rec"}})
        with pytest.raises(ForbiddenDownload, match="private address"):  # a permanent failure
            await client.download(
                portal.url + "/disk/1", tmp_path / "x.mp3", max_bytes=10**6, allowed_hosts=[portal.domain]
            )
    assert portal.requests == [] and portal.downloads == []
    assert list(tmp_path.iterdir()) == []
