"""Who said what: stereo by channel energy, mono by voice clustering.

Stereo: the mixed track is transcribed once and every word goes to the side whose channel is
louder during it (``settings.stereo_manager_channel`` says which side is the manager).

Mono: words are cut into utterances at pauses; each utterance gets a voice print (mean log
spectrum and pitch); two clusters are formed. When the two clusters are clearly apart, the
one whose words sound like a salesperson (greeting, company, offer) is the manager. When they
are not, speakers stay ``unknown`` and ``speakers_known`` is False — never a silent guess.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from callcoach.pipeline.asr import AsrSegment
from callcoach.pipeline.audio import SAMPLE_RATE
from callcoach.pipeline.models import Segment, Speaker, Word

_SENTENCE_END = re.compile(r"[.!?…]\s*$")
PAUSE_S = 0.35  # a pause this long may be a change of speaker
MIN_SEPARATION = 2.0  # Fisher ratio between the two voice clusters needed to trust them


@dataclass
class SpeakerSplit:
    segments: list[Segment]
    speakers_known: bool


def _all_words(asr: Sequence[AsrSegment]) -> list[Word]:
    words: list[Word] = []
    for seg in asr:
        if seg.words:
            words.extend(seg.words)
        elif seg.text:
            words.append(Word(start=seg.start, end=seg.end, text=" " + seg.text))
    return words


def _join(words: Sequence[Word]) -> str:
    return "".join(w.text for w in words).strip()


def _group(words: Sequence[Word], labels: Sequence[Speaker]) -> list[Segment]:
    segments: list[Segment] = []
    current: list[Word] = []
    speaker: Speaker | None = None
    for word, label in zip(words, labels, strict=True):
        if current and (label != speaker or word.start - current[-1].end > 2.0):
            segments.append(_segment(speaker or "unknown", current))
            current = []
        current.append(word)
        speaker = label
    if current:
        segments.append(_segment(speaker or "unknown", current))
    return [s for s in segments if s.text]


def _segment(speaker: Speaker, words: list[Word]) -> Segment:
    return Segment(speaker=speaker, start=words[0].start, end=words[-1].end, text=_join(words), words=words)


def split_stereo(asr: Sequence[AsrSegment], channels: np.ndarray, manager_channel: str) -> SpeakerSplit:
    words = _all_words(asr)
    manager_idx = 0 if manager_channel == "left" else 1
    labels: list[Speaker] = []
    for w in words:
        a = max(0, int(w.start * SAMPLE_RATE))
        b = max(a + 1, int(w.end * SAMPLE_RATE))
        energy = [float(np.mean(channels[c, a:b] ** 2)) if b <= channels.shape[1] else 0.0 for c in (0, 1)]
        labels.append("manager" if energy[manager_idx] >= energy[1 - manager_idx] else "client")
    labels = _smooth(labels)
    return SpeakerSplit(_group(words, labels), speakers_known=True)


def _smooth(labels: list[Speaker]) -> list[Speaker]:
    """A single word flipped between two runs of the other side is crosstalk, not a turn."""
    out = list(labels)
    for i in range(1, len(out) - 1):
        if out[i - 1] == out[i + 1] != out[i]:
            out[i] = out[i - 1]
    return out


def _utterances(words: Sequence[Word]) -> list[list[Word]]:
    out: list[list[Word]] = []
    for w in words:
        # Whisper's word times blur the gap at a change of speaker (often < 0.15 s), but it
        # punctuates each speaker's sentence: a sentence end is a possible turn too
        if out and w.start - out[-1][-1].end < PAUSE_S and not _SENTENCE_END.search(out[-1][-1].text):
            out[-1].append(w)
        else:
            out.append([w])
    return out


def _voice_print(audio: np.ndarray, start: float, end: float) -> np.ndarray | None:
    a, b = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
    clip = audio[a:b]
    frame, hop = 512, 256
    if len(clip) < frame * 4:
        return None
    idx = np.arange(0, len(clip) - frame, hop)
    frames = np.stack([clip[i : i + frame] for i in idx]) * np.hanning(frame)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    energy = power.sum(axis=1)
    voiced = energy > np.percentile(energy, 40)
    if voiced.sum() < 3:
        return None
    power = power[voiced]
    # 24 log-spaced bands up to 4 kHz (telephony band) -> mean log energy, level-normalised
    edges = np.unique(np.geomspace(2, 256, 25).astype(int))
    bands = np.stack([power[:, lo:hi].sum(axis=1) for lo, hi in itertools.pairwise(edges)], axis=1)
    logb = np.log(bands + 1e-10)
    logb = logb - logb.mean(axis=1, keepdims=True)
    # pitch: autocorrelation peak between 70 and 400 Hz
    pitches = []
    for f in frames[voiced][:: max(1, int(voiced.sum()) // 40)]:
        ac = np.correlate(f, f, mode="full")[frame - 1 :]
        lo, hi = SAMPLE_RATE // 400, SAMPLE_RATE // 70
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[0] > 0 and ac[lag] / ac[0] > 0.3:
            pitches.append(np.log(SAMPLE_RATE / lag))
    pitch = float(np.median(pitches)) if pitches else 0.0
    return np.concatenate([logb.mean(axis=0), [pitch * 4.0]])


def _two_clusters(x: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, float]:
    """2-means on standardised voice prints; returns labels and a Fisher separation ratio."""
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mu) / sd
    # start from the two most distant points: deterministic, no random restarts needed
    d = ((z[:, None, :] - z[None, :, :]) ** 2).sum(axis=2)
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    centres = np.stack([z[i], z[j]])
    labels = np.zeros(len(z), dtype=int)
    for _ in range(20):
        dist = ((z[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        labels = np.argmin(dist, axis=1)
        if len(set(labels.tolist())) < 2:
            return labels, 0.0
        centres = np.stack([np.average(z[labels == k], axis=0, weights=weights[labels == k]) for k in (0, 1)])
    # separation along the line joining the centres
    axis = centres[1] - centres[0]
    proj = z @ axis / (np.linalg.norm(axis) + 1e-9)
    m0, m1 = proj[labels == 0].mean(), proj[labels == 1].mean()
    v0, v1 = proj[labels == 0].var(), proj[labels == 1].var()
    return labels, float((m1 - m0) ** 2 / (v0 + v1 + 1e-6))


def split_mono(
    asr: Sequence[AsrSegment], audio: np.ndarray, manager_score: Callable[[Sequence[str]], list[float]]
) -> SpeakerSplit:
    """``manager_score(texts) -> list[float]``: how salesperson-like each text is (role naming)."""
    words = _all_words(asr)
    utterances = _utterances(words)
    if not utterances:
        return SpeakerSplit([], speakers_known=False)
    prints, kept = [], []
    for k, utt in enumerate(utterances):
        vp = _voice_print(audio, utt[0].start, utt[-1].end)
        if vp is not None:
            prints.append(vp)
            kept.append(k)
    unknown = SpeakerSplit(_group(words, ["unknown"] * len(words)), speakers_known=False)
    if len(prints) < 3:
        return unknown
    x = np.stack(prints)
    durations = np.array([utterances[k][-1].end - utterances[k][0].start for k in kept])
    labels, separation = _two_clusters(x, durations)
    if separation < MIN_SEPARATION or min((labels == 0).sum(), (labels == 1).sum()) < 1:
        return unknown
    cluster_of = dict(zip(kept, labels.tolist(), strict=True))
    # short utterances without a voice print take the label of their nearest neighbour in time
    full: list[int] = []
    last = labels[0]
    for k in range(len(utterances)):
        last = cluster_of.get(k, last)
        full.append(int(last))
    texts = [" ".join(_join(u) for u, c in zip(utterances, full, strict=True) if c == k) for k in (0, 1)]
    scores = manager_score(texts)
    first = full[0]
    if abs(scores[0] - scores[1]) < 0.02:  # no textual evidence: whoever opens the call is the manager
        manager_cluster = first
    else:
        manager_cluster = 0 if scores[0] > scores[1] else 1
    word_labels: list[Speaker] = []
    for utt, c in zip(utterances, full, strict=True):
        word_labels.extend(["manager" if c == manager_cluster else "client"] * len(utt))
    return SpeakerSplit(_group(words, word_labels), speakers_known=True)
