"""Speech of several calls in one batched pass through faster-whisper's ``BatchedInferencePipeline``.

A GPU is fed best with full batches, and one short call has few 30-second chunks. So calls that
reach speech recognition together (the worker runs several analysis threads) are joined: each
call's voice-activity spans (merged up to 30 s, the model's window) become clips on one joined
timeline, the pipeline batches the clips of all of them, and each segment goes back to the call
its clip came from (a clip never spans two calls, so neither does a segment).

``CallBatcher`` is the meeting point: a thread that asks while the model is busy waits, and the
next pass takes every waiting call (up to ``max_calls``) at once.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from callcoach.pipeline.asr import AsrResult, AsrSegment, Transcriber

SAMPLE_RATE = 16000
WINDOW_S = 30.0


def _spans(speech: list[dict[str, int]], max_samples: int) -> list[tuple[int, int]]:
    """Voice-activity spans merged into windows of at most ``max_samples`` (pauses kept inside)."""
    out: list[tuple[int, int]] = []
    for seg in speech:
        start, end = int(seg["start"]), int(seg["end"])
        if out and end - out[-1][0] <= max_samples:
            out[-1] = (out[-1][0], end)
        else:
            while end - start > max_samples:  # one unbroken stretch longer than the window
                out.append((start, start + max_samples))
                start += max_samples
            out.append((start, end))
    return out


def join_calls(audios: list[np.ndarray]) -> tuple[np.ndarray, list[dict[str, float]], list[float]]:
    """The joined audio, its clips (seconds on the joined timeline) and each call's start offset."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(max_speech_duration_s=WINDOW_S, min_silence_duration_ms=160)
    clips: list[dict[str, float]] = []
    offsets: list[float] = []
    position = 0
    for audio in audios:
        offsets.append(position / SAMPLE_RATE)
        for start, end in _spans(get_speech_timestamps(audio, options), int(WINDOW_S * SAMPLE_RATE)):
            clips.append({"start": (position + start) / SAMPLE_RATE, "end": (position + end) / SAMPLE_RATE})
        position += len(audio)
    joined = np.concatenate(audios) if audios else np.zeros(0, dtype=np.float32)
    return joined, clips, offsets


def split_segments(segments: list[AsrSegment], offsets: list[float]) -> list[list[AsrSegment]]:
    """Segments of the joined timeline back to their calls, on each call's own clock."""
    parts: list[list[AsrSegment]] = [[] for _ in offsets]
    for seg in segments:
        n = max(0, bisect.bisect_right(offsets, seg.start + 1e-6) - 1)
        shift = offsets[n]
        seg.start, seg.end = seg.start - shift, seg.end - shift
        for word in seg.words:
            word.start, word.end = word.start - shift, word.end - shift
        parts[n].append(seg)
    return parts


@dataclass
class _Request:
    audio: np.ndarray
    result: AsrResult | None = None
    error: BaseException | None = None
    done: bool = False


class CallBatcher:
    """``transcribe(audio)`` from any thread; concurrent callers share batched passes."""

    def __init__(self, transcriber: Transcriber, *, max_calls: int = 8) -> None:
        self.transcriber = transcriber
        self.max_calls = max_calls
        self._cond = threading.Condition()
        self._waiting: list[_Request] = []
        self._busy = False
        self.passes = 0  # batched passes run (for the bench)

    def transcribe(
        self, audio: np.ndarray, *, progress: Callable[[float, float], None] | None = None
    ) -> AsrResult:
        if not self.transcriber.batched:
            return self.transcriber.transcribe(audio, progress=progress)
        request = _Request(audio)
        with self._cond:
            self._waiting.append(request)
        while True:
            with self._cond:
                while self._busy and not request.done:
                    self._cond.wait()
                if request.done:
                    break
                self._busy = True  # this thread runs the next pass, for everyone waiting
                batch = self._waiting[: self.max_calls]
                del self._waiting[: self.max_calls]
            self._run(batch)
        if request.error is not None:
            raise request.error
        assert request.result is not None
        if progress is not None:  # a joint pass reports once, when it is done
            progress(request.result.duration, request.result.duration)
        return request.result

    def _run(self, batch: list[_Request]) -> None:
        try:
            results: list[Any] = self.transcriber.transcribe_many([r.audio for r in batch])
            errors: list[BaseException | None] = [None] * len(batch)
        except BaseException as exc:  # every caller of this pass sees the failure
            results, errors = [None] * len(batch), [exc] * len(batch)
        with self._cond:
            for request, result, error in zip(batch, results, errors, strict=True):
                request.result, request.error, request.done = result, error, True
            self.passes += 1
            self._busy = False
            self._cond.notify_all()
