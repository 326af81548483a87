"""A call's portal I/O in few requests (workflow/batched_io.py), against the fake portal: its
lookups in one batch with $result references, and the lookups or write-backs of calls that
arrive together in one batch (settings/how-to-call-rest-api/batch.md)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from callcoach.b24 import B24Client
from callcoach.workflow.batched_io import PortalBatcher, lookup_call
from tests.fakes.portal import FakePortal


@pytest.fixture
async def client(portal: FakePortal) -> B24Client:  # type: ignore[misc]
    async with aiohttp.ClientSession() as session:
        yield B24Client.for_portal(
            session, portal.credentials(), client_id=portal.client_id, client_secret=portal.client_secret
        )


async def test_a_calls_row_file_and_bindings_come_in_one_request(
    portal: FakePortal, client: B24Client
) -> None:
    portal.add_call(
        "c1", recording=b"ID3-audio", user_id=1, duration=30, crm_activity_id=501, bindings=[(2, 77)]
    )
    before = portal.http_count()
    # a call found by the sweep: the activity id comes from the row, through a reference
    found = await lookup_call(client, "c1", None)
    assert portal.http_count() - before == 1
    assert found.row["CALL_ID"] == "c1"
    assert found.file is not None and found.file["DOWNLOAD_URL"]
    assert found.bindings == [{"entityTypeId": 2, "entityId": 77}]


async def test_a_call_without_recording_yet_is_no_error(portal: FakePortal, client: B24Client) -> None:
    portal.add_call("c2", recording=b"x", user_id=1, duration=30, record_after_polls=5)
    found = await lookup_call(client, "c2", None)
    assert found.row["CALL_ID"] == "c2" and not found.row.get("RECORD_FILE_ID")
    assert found.file is None and found.file_error is None and found.bindings is None


async def test_lookups_of_calls_arriving_together_share_one_request(
    portal: FakePortal, client: B24Client
) -> None:
    for n in range(10):
        portal.add_call(
            f"t{n}", recording=b"x", user_id=1, duration=30, crm_activity_id=600 + n, bindings=[(2, 900 + n)]
        )
    batcher = PortalBatcher(linger_s=0.2, idempotent=True)
    before = portal.http_count()
    found = await asyncio.gather(
        *(lookup_call(client, f"t{n}", None, batcher=batcher, portal_key="p") for n in range(10))
    )
    assert portal.http_count() - before == 1  # 30 commands, one request
    # each call's references were renamed to its own keys: nobody got another's file or deal
    for n, lookup in enumerate(found):
        assert lookup.row["CALL_ID"] == f"t{n}"
        assert lookup.file is not None and lookup.file["ID"] == lookup.row["RECORD_FILE_ID"]
        assert lookup.bindings == [{"entityTypeId": 2, "entityId": 900 + n}]


async def test_write_backs_over_fifty_commands_split_into_full_batches(
    portal: FakePortal, client: B24Client
) -> None:
    for n in range(30):
        portal.add_deal(700 + n)
    batcher = PortalBatcher(linger_s=0.2)
    before = portal.http_count()

    async def write(n: int) -> object:
        fields = {"ENTITY_ID": 700 + n, "ENTITY_TYPE": "deal", "COMMENT": f"call {n}"}
        notify = ("im.notify.system.add", {"USER_ID": 1, "MESSAGE": f"tip {n}"})
        return await batcher.run(
            client, "p", {"comment": ("crm.timeline.comment.add", {"fields": fields}), "notify": notify}
        )

    results = await asyncio.gather(*(write(n) for n in range(30)))
    assert portal.http_count() - before == 2  # 60 commands: 50 (25 calls) + 10
    assert len(portal.comments) == 30 and all(not r.errors for r in results)  # type: ignore[attr-defined]
    assert sorted(c["COMMENT"] for c in portal.comments) == sorted(f"call {n}" for n in range(30))


async def test_operation_time_limit_on_a_nested_command_holds_that_method(portal: FakePortal) -> None:
    portal.add_deal(42)
    comment = (
        "crm.timeline.comment.add",
        {"fields": {"ENTITY_ID": 42, "ENTITY_TYPE": "deal", "COMMENT": "x"}},
    )
    portal.fail_next("crm.timeline.comment.add", "OPERATION_TIME_LIMIT", 429)
    async with aiohttp.ClientSession() as session:
        client = B24Client.for_portal(
            session,
            portal.credentials(),
            client_id=portal.client_id,
            client_secret=portal.client_secret,
            max_wait_s=1.0,
        )
        first = await client.batch({"c": comment, "row": ("profile", {})})
        assert first.errors["c"].code == "OPERATION_TIME_LIMIT" and "row" in first.results
        started = asyncio.get_running_loop().time()
        await client.call("profile")  # another method is not held
        assert asyncio.get_running_loop().time() - started < 0.5
        second = await client.batch({"c": comment})  # waits out the hold, then goes through
        assert asyncio.get_running_loop().time() - started >= 0.9
        assert not second.errors and len(portal.comments) == 1
