"""Hostile input, property-based (hypothesis): every public route and the parsers under them
answer malformed, oversized, deeply nested, wrongly typed, non-UTF-8 and forged bodies with a 4xx
and a reason — never a 5xx, never a dropped connection — and store nothing.

The app runs for real (its routes, verification, database) on a real port, in a thread of this
process with the fake portal beside it, so that thousands of requests take seconds; the speech
model is not needed by any of these routes.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcoach.app import create_app
from callcoach.b24.events import EventParseError, parse_event_body, parse_form, unflatten
from callcoach.context import SERVICES, Services
from tests.fakes.portal import FakePortal, php_form
from tests.helpers import NoSpeechAnalyzer, app_settings, free_port

T = TypeVar("T")
EXAMPLES = 300  # per property: thousands in all, a few seconds each
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
    derandomize=True,  # the same cases on every run: CI does not flake, a failure repeats
)


# --- the app in a thread ---------------------------------------------------------------------------
@dataclass
class Served:
    loop: asyncio.AbstractEventLoop
    port: int
    portal: FakePortal
    runner: web.AppRunner

    @property
    def services(self) -> Services:
        return self.runner.app[SERVICES]  # type: ignore[union-attr]

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def stored(self) -> tuple[int, int, int]:
        """(portals, events, jobs) rows in the database."""

        async def count() -> tuple[int, int, int]:
            store = self.services.store
            portals = await store.portals.installed()
            return len(portals), await store.events.count(), len(await store.jobs.list_jobs())

        return self.run(count())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="hostile-input-app", daemon=True)
    thread.start()
    data = tmp_path_factory.mktemp("hostile")

    async def start() -> Served:
        portal = await FakePortal().start()
        port = free_port()
        app = create_app(
            app_settings(portal, Path(data), port), analyzer=NoSpeechAnalyzer(), start_worker=False
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        answer = await portal.install(f"http://127.0.0.1:{port}/b24/install")
        assert answer["status"] == 200, answer
        return Served(loop, port, portal, runner)

    served = asyncio.run_coroutine_threadsafe(start(), loop).result(120)
    try:
        yield served
    finally:

        async def stop() -> None:
            await served.runner.cleanup()
            await served.portal.close()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


class Client:
    """One keep-alive connection, as a portal would hold; a dropped connection fails the test."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def send(
        self, method: str, path: str, body: bytes = b"", content_type: str | None = None
    ) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type} if content_type is not None else {}
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (http.client.HTTPException, ConnectionError) as exc:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            raise AssertionError(f"{method} {path}: the connection was dropped ({exc!r})") from None
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        return resp.status, data


@pytest.fixture(scope="module")
def client(served: Served) -> Client:
    return Client(served.port)


def assert_refused(status: int, body: bytes, what: str) -> None:
    assert 400 <= status < 500, f"{what}: HTTP {status} {body[:300]!r}"
    assert body.strip(), f"{what}: a refusal without a reason"


# --- strategies --------------------------------------------------------------------------------------
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
php_keys = st.from_regex(r"\A[a-zA-Z_\[\]0-9%]{1,30}\Z")
form_bodies = st.lists(st.tuples(php_keys, st.text(max_size=30)), max_size=8).map(
    lambda pairs: urlencode(pairs, safe="[]").encode()
)
non_utf8 = st.binary(min_size=1, max_size=300).map(lambda b: b"\xff\xfe" + b + b"\xc3")
deeply_nested = st.integers(min_value=17, max_value=3000).flatmap(
    lambda n: st.sampled_from(
        [
            ("[" * n + "]" * n).encode(),
            ('{"a":' * n + "1" + "}" * n).encode(),
            ("a" + "[b]" * n + "=1").encode(),
        ]
    )
)
bodies = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=500).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    form_bodies,
    non_utf8,
    deeply_nested,
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "",
        "multipart/form-data; boundary=xyz",
        "application/xml",
        "application/json; charset=latin-1",
        "application/x-www-form-urlencoded; charset=koi8-r",
    ]
)


# --- the parsers ---------------------------------------------------------------------------------
@FUZZ
@given(body=bodies, content_type=content_types)
def test_event_parser_returns_a_dict_or_a_reason(body: bytes, content_type: str) -> None:
    try:
        parsed = parse_event_body(content_type, body)
    except EventParseError as exc:
        assert exc.reason
    else:
        assert isinstance(parsed, dict)


@FUZZ
@given(pairs=st.lists(st.tuples(php_keys, st.text(max_size=10)), max_size=20))
def test_php_key_nesting_returns_a_dict_or_a_reason(pairs: list[tuple[str, str]]) -> None:
    try:
        assert isinstance(unflatten(pairs), dict)
    except EventParseError as exc:
        assert exc.reason


@FUZZ
@given(body=st.one_of(form_bodies, st.text(max_size=300).map(str.encode)))
def test_form_parser_reads_bodies_as_urllib_does(body: bytes) -> None:
    """The intake's form parser caches its keys' parts for speed; what it reads (or refuses) is
    what urllib's strict ``parse_qsl`` and the PHP nesting make of the same body."""
    try:
        expected: Any = unflatten(
            parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True, max_num_fields=10_000)
        )
    except (ValueError, EventParseError):
        expected = EventParseError
    try:
        got: Any = parse_form(body)
    except EventParseError:
        got = EventParseError
    assert got == expected


# --- the routes ------------------------------------------------------------------------------------
ROUTES_TAKING_BODIES = ["/b24/events", "/b24/install", "/b24/bot", "/ai/completions", "/"]


@FUZZ
@given(path=st.sampled_from(ROUTES_TAKING_BODIES), body=bodies, content_type=content_types)
def test_garbage_to_every_route_is_refused_and_stores_nothing(
    served: Served, client: Client, path: str, body: bytes, content_type: str
) -> None:
    before = served.stored()
    status, answer = client.send("POST", path, body, content_type)
    assert_refused(status, answer, f"POST {path} {body[:80]!r}")
    assert served.stored() == before


def _event(portal: FakePortal, event: str, data: Any, token: str, member_id: str) -> dict[str, Any]:
    return {
        "event": event,
        "data": data,
        "auth": {"application_token": token, "member_id": member_id, "domain": portal.domain},
    }


@FUZZ
@given(
    event=st.sampled_from(["ONVOXIMPLANTCALLEND", "ONAPPUNINSTALL", "ONIMBOTMESSAGEADD", "ONCRMDEALADD"]),
    token=st.text(max_size=40),
    real_member=st.booleans(),
    as_json=st.booleans(),
    path=st.sampled_from(["/b24/events", "/b24/bot"]),
)
def test_forged_events_are_refused_and_change_nothing(
    served: Served, client: Client, event: str, token: str, real_member: bool, as_json: bool, path: str
) -> None:
    portal = served.portal
    if token == portal.application_token:
        token += "x"
    member = portal.member_id if real_member else "forged-member"
    payload = _event(portal, event, {"CALL_ID": "forged-call"}, token, member)
    before = served.stored()
    if as_json:
        status, answer = client.send("POST", path, json.dumps(payload).encode(), "application/json")
    else:
        body = php_form(payload).encode()
        status, answer = client.send("POST", path, body, "application/x-www-form-urlencoded")
    assert status == 401, answer
    assert served.stored() == before
    assert portal.application_token not in answer.decode("utf-8", "replace")


@FUZZ
@given(
    call_id=st.one_of(
        json_values.filter(lambda v: isinstance(v, (list, dict)) and bool(v)),
        st.sampled_from(["", "   ", None]),
        st.text(min_size=129, max_size=400).filter(lambda t: len(t.strip()) > 128),
    )
)
def test_authentic_call_end_with_a_wrongly_typed_call_id_is_refused(
    served: Served, client: Client, call_id: Any
) -> None:
    portal = served.portal
    payload = _event(
        portal, "ONVOXIMPLANTCALLEND", {"CALL_ID": call_id}, portal.application_token, portal.member_id
    )
    before = served.stored()
    status, answer = client.send("POST", "/b24/events", json.dumps(payload).encode(), "application/json")
    assert_refused(status, answer, f"CALL_ID {call_id!r}")
    assert served.stored() == before


@FUZZ
@given(
    job_id=st.text(min_size=1, max_size=40),
    exp=st.one_of(st.none(), st.text(max_size=20)),
    sig=st.one_of(st.none(), st.text(max_size=70)),
)
def test_call_pages_refuse_forged_links(
    served: Served, client: Client, job_id: str, exp: Any, sig: Any
) -> None:
    query = urlencode({k: v for k, v in (("exp", exp), ("sig", sig)) if v is not None})
    path = "/calls/" + quote(job_id, safe="") + ("?" + query if query else "")
    status, answer = client.send("GET", path)
    assert_refused(status, answer, path)


@FUZZ
@given(secret=st.text(max_size=60), body=bodies, content_type=content_types)
def test_copilot_with_a_wrong_secret_is_refused(
    served: Served, client: Client, secret: str, body: bytes, content_type: str
) -> None:
    status, answer = client.send(
        "POST", "/ai/completions?" + urlencode({"secret": secret}), body, content_type
    )
    assert_refused(status, answer, "copilot")
    assert secret == "" or secret not in answer.decode("utf-8", "replace") or len(secret) < 4


def test_oversized_bodies_are_refused_with_a_reason(served: Served, client: Client) -> None:
    before = served.stored()
    for path in ROUTES_TAKING_BODIES:
        for size in (2 * 1024 * 1024 + 10, 5 * 1024 * 1024):
            body = b"a=" + b"x" * size
            for content_type in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=z"):
                status, answer = Client(served.port).send("POST", path, body, content_type)
                assert_refused(status, answer, f"{path} with {size} bytes of {content_type}")
    assert served.stored() == before
