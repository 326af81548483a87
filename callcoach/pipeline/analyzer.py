"""``Analyzer``: the pipeline's front door — audio file in, ``Findings`` out.

One Analyzer per process owns the loaded models (Whisper, embedders, classifiers). Its methods
are synchronous and meant to run on one dedicated executor thread.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from callcoach.config import Settings
from callcoach.pipeline import audio as audio_mod
from callcoach.pipeline.asr import AsrResult, Transcriber
from callcoach.pipeline.batched_asr import CallBatcher
from callcoach.pipeline.cache import AsrCache, FindingsCache, file_hash, pipeline_fingerprint
from callcoach.pipeline.errors import PipelineError
from callcoach.pipeline.grouping import group_candidates
from callcoach.pipeline.models import FINDINGS_VERSION, Category, Findings, ProposedCategory
from callcoach.pipeline.speakers import SpeakerSplit, split_mono, split_stereo
from callcoach.pipeline.text_analysis import TextAnalyzer

log = logging.getLogger(__name__)


@dataclass
class StageTimes:
    """Seconds spent per stage for the last analysed file (bench/speed.py reads them)."""

    decode: float = 0.0
    asr: float = 0.0
    speakers: float = 0.0
    text: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


class Analyzer:
    def __init__(
        self, settings: Settings, *, use_cache: bool = True, max_audio_s: float | None = None
    ) -> None:
        self.settings = settings
        self.transcriber = Transcriber(settings)
        # with the batched pipeline (GPU), calls analysed at once share ASR passes
        self.asr = CallBatcher(self.transcriber)
        self._text: TextAnalyzer | None = None
        self._text_lock = threading.Lock()
        # One call at a time per model stage, not per call: with several analysis threads (the
        # scaled-out worker) one call decodes while another is in Whisper (the Transcriber's own
        # lock) and a third in the text models (this lock: their memo caches are not thread-safe).
        self._text_stage = threading.RLock()
        self.cache = FindingsCache(settings.data_dir / "cache") if use_cache else None
        self._fingerprint = pipeline_fingerprint() if use_cache else ""
        self.asr_cache = AsrCache(settings.data_dir / "cache" / "asr") if use_cache else None
        # a recording longer than this is refused with a clear reason (no call lasts hours)
        self.max_audio_s = max_audio_s or settings.max_audio_seconds
        self.last_times = StageTimes()

    # --- models ----------------------------------------------------------------------------
    @property
    def text(self) -> TextAnalyzer:
        with self._text_lock:
            if self._text is None:
                self._text = TextAnalyzer(self.settings)
            return self._text

    def load(self) -> None:
        self.transcriber.load()
        _ = self.text

    def state(self) -> dict[str, Any]:
        return {
            "whisper": {
                "model": self.settings.whisper_model,
                "loaded": self.transcriber.loaded,
                "device": self.transcriber.device or None,
                "compute_type": self.transcriber.compute_type or None,
            },
            "text_models": dict(self._text.versions) if self._text else None,
            "text_loaded": self._text is not None,
        }

    # --- analysis --------------------------------------------------------------------------
    def _config_key(self, categories: Sequence[Category] | None, topics: Any) -> dict[str, object]:
        s = self.settings
        return {
            "findings": FINDINGS_VERSION,
            "pipeline": self._fingerprint,  # the classifiers' code and reference data
            # set at run time by bench/accuracy.py's --threshold: findings made at another bar
            # must not be served from the cache
            "objection_thresholds": dataclasses.asdict(self.text.objections.thresholds),
            "whisper": s.whisper_model,
            "language": s.language,
            "stereo_manager": s.stereo_manager_channel,
            "sentiment": s.sentiment_model,
            "topic": s.topic_model,
            "categories": [c.model_dump() for c in categories] if categories is not None else None,
            "topics": topics,
        }

    def analyze_file(
        self,
        path: Path,
        *,
        categories: Sequence[Category] | None = None,
        topics: Mapping[str, str | Sequence[str]] | None = None,
        progress: Callable[[float, float], None] | None = None,
    ) -> Findings:
        """Analyse one recording; raises ``AudioError`` for unusable audio. ``progress(done_s,
        total_s)`` follows the speech recognition through the recording."""
        path = Path(path)
        key = None
        audio_hash = file_hash(path) if self.cache is not None and path.is_file() else None
        if self.cache is not None and audio_hash is not None:
            key = self.cache.key(audio_hash, self._config_key(categories, topics))
            cached = self.cache.get(key)
            if cached is not None:
                cached.file = str(path)
                return cached
        times = StageTimes()
        t0 = time.perf_counter()
        decoded = audio_mod.decode(path, max_seconds=self.max_audio_s)
        times.decode = time.perf_counter() - t0
        asr = self._transcribe(decoded, times, audio_hash=audio_hash, progress=progress)
        with self._text_stage:
            findings = self._finish(path, decoded, asr, times, categories=categories, topics=topics)
        if self.cache is not None and key is not None:
            self.cache.put(key, findings)
        self.last_times = times
        return findings

    def analyze_batch(
        self,
        paths: Sequence[Path],
        *,
        categories: Sequence[Category] | None = None,
        topics: Mapping[str, str | Sequence[str]] | None = None,
    ) -> list[Findings | PipelineError]:
        """Each file in turn (on a GPU the ASR batches each file's speech chunks); failures are
        returned in place, so one bad recording does not stop the others."""
        out: list[Findings | PipelineError] = []
        for path in paths:
            try:
                out.append(self.analyze_file(path, categories=categories, topics=topics))
            except PipelineError as exc:
                out.append(exc)
            except Exception as exc:  # a bug on one file must not lose the rest of the batch
                log.exception("analysis of %s failed", path)
                out.append(
                    PipelineError(f"{Path(path).name}: analysis failed ({exc.__class__.__name__}: {exc})")
                )
        return out

    def classify_text(
        self, text: str, categories: Sequence[Category] | None = None
    ) -> list[tuple[Category, float]]:
        with self._text_stage:
            return self.text.classify_text(text, categories)

    def propose_categories(
        self, quotes: Sequence[str], *, existing_codes: Sequence[str] = ()
    ) -> list[ProposedCategory]:
        """Group objections that fit no category into proposed new categories."""
        with self._text_stage:
            return group_candidates(quotes, self.text.embedders[0], existing_codes=existing_codes)

    # --- stages ----------------------------------------------------------------------------
    def transcript_key(self, path: Path) -> str | None:
        """The transcript cache's key for a recording (None without a cache): bench/accuracy.py
        keeps the transcripts of the evaluation recordings under it."""
        return self._asr_key(file_hash(path) if self.asr_cache is not None else None)

    def _asr_key(self, audio_hash: str | None) -> str | None:
        if self.asr_cache is None or audio_hash is None:
            return None
        s = self.settings
        return self.asr_cache.key(audio_hash, {"asr": 1, "whisper": s.whisper_model, "language": s.language})

    def _transcribe(
        self,
        decoded: audio_mod.DecodedAudio,
        times: StageTimes,
        *,
        audio_hash: str | None = None,
        progress: Callable[[float, float], None] | None = None,
    ) -> AsrResult:
        t0 = time.perf_counter()
        key = self._asr_key(audio_hash)
        cached = self.asr_cache.get(key) if self.asr_cache is not None and key else None
        if cached is not None:
            times.asr = time.perf_counter() - t0
            return cached
        mono = decoded.mono()
        if float(np.max(np.abs(mono), initial=0.0)) < 1e-4:  # digital silence: nothing to hear
            result = AsrResult(segments=[], language=self.settings.language, duration=decoded.duration)
        else:
            result = self.asr.transcribe(mono, progress=progress)
        if self.asr_cache is not None and key:
            self.asr_cache.put(key, result)
        times.asr = time.perf_counter() - t0
        return result

    def split_speakers(self, decoded: audio_mod.DecodedAudio, asr: AsrResult) -> SpeakerSplit:
        if decoded.is_stereo and _two_sided(decoded.channels):
            return split_stereo(asr.segments, decoded.channels, self.settings.stereo_manager_channel)
        return split_mono(asr.segments, decoded.mono(), self.text.manager_score)

    def _finish(
        self,
        path: Path,
        decoded: audio_mod.DecodedAudio,
        asr: AsrResult,
        times: StageTimes,
        *,
        categories: Sequence[Category] | None,
        topics: Mapping[str, str | Sequence[str]] | None,
    ) -> Findings:
        t0 = time.perf_counter()
        split = self.split_speakers(decoded, asr)
        times.speakers = time.perf_counter() - t0
        t0 = time.perf_counter()
        stereo = decoded.is_stereo and split.speakers_known and _two_sided(decoded.channels)
        findings = self.text.analyze_transcript(
            split.segments,
            categories,
            duration=decoded.duration,
            speakers_known=split.speakers_known,
            topics=topics,
            file=str(path),
            channels="stereo" if stereo else "mono",
            roles_reliable=stereo,
        )
        findings.language = asr.language or self.settings.language
        findings.models["asr"] = self.settings.whisper_model
        times.text = time.perf_counter() - t0
        return findings


def _two_sided(channels: np.ndarray) -> bool:
    """A 'stereo' file whose two channels are the same signal is really mono."""
    if channels.shape[0] != 2:
        return False
    diff = float(np.mean((channels[0] - channels[1]) ** 2))
    level = float(np.mean(channels**2)) + 1e-12
    return diff / level > 0.05
