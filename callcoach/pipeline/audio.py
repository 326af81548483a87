"""Decoding recordings into 16 kHz float32 arrays, one per channel.

PyAV (ffmpeg) reads whatever container/codec it knows (mp3, wav, ogg, m4a, ...). Telephony
recordings are often 8 kHz; everything is resampled to the 16 kHz Whisper expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from callcoach.pipeline.errors import AudioError

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class DecodedAudio:
    """``channels`` has shape (n_channels, n_samples) at ``SAMPLE_RATE``; 1 or 2 channels."""

    channels: np.ndarray
    source_rate: int

    @property
    def duration(self) -> float:
        return self.channels.shape[1] / SAMPLE_RATE

    @property
    def is_stereo(self) -> bool:
        return self.channels.shape[0] == 2

    def mono(self) -> np.ndarray:
        if self.channels.shape[0] == 1:
            return self.channels[0]
        return np.asarray(self.channels.mean(axis=0), dtype=np.float32)


def _looks_like_text(path: Path) -> bool:
    """Every audio container starts with binary bytes (ID3, RIFF, OggS, ftyp, an MPEG sync word
    0xFF…), none of which are valid UTF-8 text without NULs."""
    with path.open("rb") as f:
        head = f.read(4096)
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # only a character cut at the end of the sample
    return True


def decode(path: Path, *, max_seconds: float) -> DecodedAudio:
    """Decode ``path``; raise ``AudioError`` with the reason when it is not usable audio.

    Recordings longer than ``max_seconds`` are refused before they are decoded (the container
    header says how long they are) and, should the header lie, as soon as decoding passes it:
    a multi-hour file must not tie up the analysis worker.
    """
    import av

    if not path.exists():
        raise AudioError(f"{path.name}: file not found")
    if path.stat().st_size == 0:
        raise AudioError(f"{path.name}: file is empty (0 bytes)")
    if _looks_like_text(path):
        # FFmpeg's lenient mp3 probe "decodes" a text file as seconds of noise; refuse it.
        raise AudioError(f"{path.name}: this is a text file, not audio")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioError(
            f"{path.name}: not a readable audio file ({exc.__class__.__name__}: {exc})"
        ) from None
    with container:
        if not container.streams.audio:
            raise AudioError(f"{path.name}: the file has no audio stream")
        stream = container.streams.audio[0]
        n_channels = 2 if (stream.channels or 1) == 2 else 1
        if container.duration is not None:
            header_seconds = container.duration / 1_000_000
            if header_seconds > max_seconds:
                raise AudioError(_too_long(path, header_seconds, max_seconds))
        resampler = av.AudioResampler(
            format="fltp", layout="stereo" if n_channels == 2 else "mono", rate=SAMPLE_RATE
        )
        chunks: list[np.ndarray] = []
        total = 0
        limit = int(max_seconds * SAMPLE_RATE)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    arr = out.to_ndarray()
                    chunks.append(arr)
                    total += arr.shape[1]
                if total > limit:
                    raise AudioError(_too_long(path, total / SAMPLE_RATE, max_seconds))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except av.error.FFmpegError as exc:
            # a truncated file decodes up to the damage; what was read is still worth analysing
            if not chunks:
                raise AudioError(f"{path.name}: audio cannot be decoded ({exc})") from None
        source_rate = int(stream.rate or SAMPLE_RATE)
    if not chunks:
        raise AudioError(f"{path.name}: the file contains no audio samples")
    channels = np.ascontiguousarray(np.concatenate(chunks, axis=1), dtype=np.float32)
    if channels.shape[1] < SAMPLE_RATE // 10:
        raise AudioError(f"{path.name}: the recording is too short ({channels.shape[1] / SAMPLE_RATE:.2f} s)")
    if not np.isfinite(channels).all():
        channels = np.nan_to_num(channels, copy=False)
    return DecodedAudio(channels=channels, source_rate=source_rate)


def _too_long(path: Path, seconds: float, max_seconds: float) -> str:
    return (
        f"{path.name}: the recording is {seconds / 60:.0f} min long, over the "
        f"{max_seconds / 60:.0f} min limit for one call"
    )
