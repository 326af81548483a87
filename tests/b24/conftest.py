from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fakes.portal import FakePortal


@pytest.fixture
async def portal() -> AsyncIterator[FakePortal]:
    async with FakePortal() as p:
        yield p


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s
