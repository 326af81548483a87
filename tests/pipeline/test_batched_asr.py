"""Several calls' speech in one batched pass (pipeline/batched_asr.py): the joined timeline's
clips stay inside their own call, segments go back to their call on its own clock, and threads
that ask at once share passes. Real recordings and the real voice-activity model; the speech
model itself runs in the slow test below (on a CPU, with the batched pipeline forced on)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callcoach.config import Settings
from callcoach.pipeline import audio
from callcoach.pipeline.asr import AsrResult, AsrSegment
from callcoach.pipeline.batched_asr import CallBatcher, join_calls, split_segments
from callcoach.pipeline.models import Word


def _mono(path: Path) -> np.ndarray:
    return audio.decode(path, max_seconds=600).mono()


def test_clips_of_joined_calls_never_cross_a_call(calls_dir: Path) -> None:
    audios = [_mono(calls_dir / "dev02.mp3"), _mono(calls_dir / "dev01.mp3"), np.zeros(16000 * 3, np.float32)]
    joined, clips, offsets = join_calls(audios)
    assert len(joined) == sum(len(a) for a in audios)
    ends = [*offsets[1:], len(joined) / 16000]
    assert clips
    for clip in clips:
        assert clip["end"] - clip["start"] <= 30.0 + 1e-6
        inside = [n for n, (lo, hi) in enumerate(zip(offsets, ends, strict=True)) if lo <= clip["start"] < hi]
        assert len(inside) == 1 and clip["end"] <= ends[inside[0]] + 1e-6
    # the silent third call has no clip at all
    assert not [c for c in clips if c["start"] >= offsets[2]]


def test_segments_go_back_to_their_call_on_its_own_clock() -> None:
    segs = [
        AsrSegment(1.0, 2.0, "a", [Word(start=1.0, end=2.0, text="a", probability=1.0)]),
        AsrSegment(21.5, 23.0, "b", [Word(start=21.5, end=23.0, text="b", probability=1.0)]),
    ]
    parts = split_segments(segs, [0.0, 20.0, 40.0])
    assert [s.text for s in parts[0]] == ["a"] and [s.text for s in parts[1]] == ["b"] and parts[2] == []
    assert parts[1][0].start == pytest.approx(1.5) and parts[1][0].words[0].end == pytest.approx(3.0)


class _SlowBatched:
    """A transcriber stand-in with the batched pipeline: records how calls were grouped."""

    batched = True

    def __init__(self) -> None:
        self.groups: list[int] = []
        self.gate = threading.Event()

    def transcribe_many(self, audios: list[Any]) -> list[AsrResult]:
        self.gate.wait(5)
        self.groups.append(len(audios))
        return [AsrResult(segments=[], language="ru", duration=len(a) / 16000) for a in audios]


def test_threads_asking_at_once_share_passes() -> None:
    fake = _SlowBatched()
    batcher = CallBatcher(fake, max_calls=8)  # type: ignore[arg-type]
    results: list[AsrResult] = []
    threads = [
        threading.Thread(target=lambda n=n: results.append(batcher.transcribe(np.zeros(16000 * (n + 1)))))
        for n in range(6)
    ]
    threads[0].start()
    while not batcher._busy:  # the first call holds the model...
        pass
    for t in threads[1:]:
        t.start()
    while len(batcher._waiting) < 5:  # ...while five more arrive
        pass
    fake.gate.set()
    for t in threads:
        t.join(10)
    assert sorted(r.duration for r in results) == [1, 2, 3, 4, 5, 6]
    assert fake.groups == [1, 5]


@pytest.mark.slow
def test_batched_pass_over_three_calls_hears_each_call(calls_dir: Path, models_dir: Path) -> None:
    from callcoach.pipeline.asr import Transcriber

    settings = Settings(data_dir=models_dir, whisper_batched="on", _env_file=None)  # type: ignore[call-arg]
    transcriber = Transcriber(settings)
    audios = [_mono(calls_dir / name) for name in ("dev02.mp3", "dev03.mp3", "dev04.mp3")]
    together = transcriber.transcribe_many(audios)
    for audio_, result in zip(audios, together, strict=True):
        alone = transcriber.transcribe(audio_)
        words_alone = set(" ".join(s.text for s in alone.segments).lower().split())
        words_together = set(" ".join(s.text for s in result.segments).lower().split())
        assert result.segments and all(0 <= s.start <= len(audio_) / 16000 + 0.5 for s in result.segments)
        # the same speech heard: most words agree (batched chunks may cut a phrase differently)
        assert len(words_alone & words_together) >= 0.7 * len(words_alone)
