"""Recordings from the wild, through the whole flow (event → download → analysis → write-back):
empty, truncated, an HTML error page, three hours long, mono at 8 kHz, stereo with one silent
channel. Each call ends ``done`` or ``failed`` with a reason, and the worker goes on."""

from __future__ import annotations

import re
import wave
from pathlib import Path

import numpy as np
import pytest

from callcoach.pipeline.audio import decode
from tests.fakes.portal import FakePortal
from tests.helpers import RunningApp, StartApp, wait_for

pytestmark = pytest.mark.slow


def _wav(samples: np.ndarray, rate: int, path: Path) -> bytes:
    """16-bit PCM; ``samples`` is (channels, n) in -1..1."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(samples.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples.T, -1, 1) * 32767).astype("<i2").tobytes())
    return path.read_bytes()


def _three_hours(path: Path) -> bytes:
    """A real 3-hour WAV (8 kHz, 8-bit: 86 MB of near-silence), as a stuck line records it."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        minute = np.full(8000 * 60, 128, dtype=np.uint8).tobytes()
        for _ in range(180):
            w.writeframes(minute)
    return path.read_bytes()


async def _states(app: RunningApp, portal: FakePortal) -> dict[str, tuple[str, str | None]]:
    p = await app.services.store.portals.by_member(portal.member_id)
    assert p is not None
    return {j.call_id: (j.state, j.reason) for j in await app.services.store.jobs.list_jobs(p.id)}


async def test_recordings_from_the_wild_each_end_with_a_reason(
    portal: FakePortal, start_app: StartApp, calls_dir: Path, tmp_path: Path
) -> None:
    app = await start_app(portal, max_recording_mb=200)
    assert (await portal.install(app.install_url))["status"] == 200
    mono = (calls_dir / "dev02.mp3").read_bytes()  # the shared calls are mono 8 kHz telephony
    speech = decode(calls_dir / "dev01.mp3", max_seconds=600).channels[0]
    recordings: dict[str, bytes] = {
        "empty": b"",
        "truncated": mono[: len(mono) // 3],
        "html": b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
        b"<body><h1>502 Bad Gateway</h1></body></html>\n" * 20,
        "three-hours": _three_hours(tmp_path / "long.wav"),
        "mono-8k": mono,
        "stereo-one-silent": _wav(np.stack([speech, np.zeros_like(speech)]), 16000, tmp_path / "st.wav"),
    }
    for n, (name, data) in enumerate(recordings.items()):
        portal.add_deal(800 + n)
        portal.add_call(
            name, recording=data, user_id=1, duration=40, bindings=[(2, 800 + n)], crm_activity_id=8800 + n
        )
        await portal.send_event(app.events_url, "ONVOXIMPLANTCALLEND", portal.call_end_event_data(name))

    async def all_finished() -> bool:
        states = await _states(app, portal)
        return len(states) == len(recordings) and all(s in ("done", "failed") for s, _ in states.values())

    await wait_for(all_finished, timeout=900, interval=0.5)
    states = await _states(app, portal)
    for name, (state, reason) in states.items():
        assert state == "done" or reason, (name, state, reason)
    assert states["empty"][0] == "failed" and "empty" in (states["empty"][1] or "")
    # caught at the download (the portal sent a page) or, failing that, by the decoder
    assert states["html"][0] == "failed" and re.search(r"not audio|NOT_AUDIO", states["html"][1] or "")
    assert states["three-hours"][0] == "failed" and "limit" in (states["three-hours"][1] or "")
    assert states["mono-8k"][0] == "done", states["mono-8k"]
    assert states["stereo-one-silent"][0] == "done", states["stereo-one-silent"]
    # a call that ended done has its one comment; a failed one has none
    for n, name in enumerate(recordings):
        comments = [c for c in portal.comments if int(c["ENTITY_ID"]) == 800 + n]
        assert len(comments) == (1 if states[name][0] == "done" else 0), (name, comments)
