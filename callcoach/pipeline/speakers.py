"""Who said what: stereo by channel energy, mono by voice clustering.

Stereo: the mixed track is transcribed once and every word goes to the side whose channel is
louder during it (``settings.stereo_manager_channel`` says which side is the manager).

Mono: one-second windows of the recognised speech get a voice print (pitch and spectral
shape); two clusters are formed and a Viterbi pass turns them into speaker turns. Word times
from the recogniser blur at a change of speaker, so turns come from the voice, not from pauses
or punctuation. When the two clusters are clearly apart, the one whose words sound like a
salesperson (greeting, company, offer) is the manager. When they are not, speakers stay
``unknown`` and ``speakers_known`` is False — never a silent guess.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from callcoach.pipeline.asr import AsrSegment
from callcoach.pipeline.audio import SAMPLE_RATE
from callcoach.pipeline.models import Segment, Speaker, Word

MIN_SEPARATION = 2.0  # Fisher ratio between the two voice clusters needed to trust them
ROLE_MARGIN = 0.1  # difference in salesperson-likeness (0..1) that names the manager by words


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


# --- mono: who speaks when, from the voice alone ------------------------------------------------
FRAME, HOP = 512, 160  # 32 ms frames every 10 ms at 16 kHz
WINDOW, STEP = 100, 25  # frames per voice window (1 s: phonemes average out) and its step (0.25 s)
PITCH_WEIGHT = 2.0  # pitch tells two voices apart best on a narrow telephone band
SWITCH_COST = 2.0  # x the mean window cost: a change of speaker has to be worth it


SNAP_REACH = 0.75  # s: half a voice window and a little more, how far the change can land off
SNAP_MARGIN = 0.1  # s: a pause must be this much longer than the one at the change to move it
# s: a pause after the end of a sentence counts this much longer. Whisper stretches a sentence's
# last word into the silence after it, so the pause where a turn ends reads shorter than it was,
# and a comma's pause inside the sentence could win (dev13-36 mono 0.707 -> 0.723 at 0.2 or 0.4)
SENTENCE_END = 0.2
BLOCK = 6000  # frames per block (60 s): a two-hour call must not need gigabytes of spectra


def _frame_features(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_frame_block`` over consecutive one-minute blocks (frames overlap the block edges)."""
    n = 1 + max(0, (len(audio) - FRAME) // HOP)
    if len(audio) < FRAME or n <= BLOCK:
        return _frame_block(audio)
    parts = [_frame_block(audio[a * HOP : (a + BLOCK - 1) * HOP + FRAME]) for a in range(0, n, BLOCK)]
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))  # type: ignore[return-value]


def _frame_block(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per 10 ms frame: log energy, spectral shape (20 log bands up to 4 kHz, level removed) and
    log pitch (NaN where unvoiced)."""
    n = 1 + max(0, (len(audio) - FRAME) // HOP)
    if len(audio) < FRAME:
        empty = np.zeros((0,))
        return empty, np.zeros((0, 20)), empty
    idx = np.arange(n)[:, None] * HOP + np.arange(FRAME)[None, :]
    frames = audio[idx] * np.hanning(FRAME)
    spec = np.abs(np.fft.rfft(frames, n=2 * FRAME, axis=1)) ** 2  # zero-padded: autocorrelation below
    energy = np.log(spec.sum(axis=1) + 1e-10)
    edges = np.unique(np.geomspace(8, 2 * FRAME * 4000 // SAMPLE_RATE, 21).astype(int))
    bands = np.stack([spec[:, lo:hi].sum(axis=1) for lo, hi in itertools.pairwise(edges)], axis=1)
    shape = np.log(bands + 1e-10)
    shape -= shape.mean(axis=1, keepdims=True)
    pitch = _yin(audio[idx], energy)
    return energy, shape, pitch


def _yin(frames: np.ndarray, energy: np.ndarray, threshold: float = 0.2) -> np.ndarray:
    """Log pitch per frame by YIN (cumulative mean normalised difference), NaN where unvoiced.
    YIN rather than a raw autocorrelation peak: on band-limited telephone audio the fundamental
    is weak and a plain peak picker jumps between harmonics."""
    lo, hi = SAMPLE_RATE // 400, SAMPLE_RATE // 70
    x = frames - frames.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(x, n=2 * FRAME, axis=1)
    r = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, : hi + 1]
    # energies of the two halves compared at each lag, from cumulative sums of squares
    sq = np.cumsum(x**2, axis=1)
    total = sq[:, -1:]
    lags = np.arange(hi + 1)
    head = sq[:, FRAME - 1 - lags]  # sum of x[0 : FRAME - lag]
    tail = total - np.concatenate([np.zeros((len(x), 1)), sq[:, :hi]], axis=1)  # x[lag : FRAME]
    d = np.maximum(head + tail - 2 * r, 0.0)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * lags[1:] / np.maximum(np.cumsum(d[:, 1:], axis=1), 1e-12)
    band = cmnd[:, lo : hi + 1]
    below = band < threshold
    first = np.where(below.any(axis=1), below.argmax(axis=1), band.argmin(axis=1))
    # walk down to the bottom of the dip the threshold crossed into
    lag = first.copy()
    for _ in range(8):
        nxt = np.minimum(lag + 1, band.shape[1] - 1)
        better = band[np.arange(len(band)), nxt] < band[np.arange(len(band)), lag]
        lag = np.where(better, nxt, lag)
    best = band[np.arange(len(band)), lag]
    voiced = (best < 0.35) & (energy > np.percentile(energy, 20))
    return np.where(voiced, np.log(SAMPLE_RATE / (lag + lo)), np.nan)


def _speech_mask(n_frames: int, words: Sequence[Word]) -> np.ndarray:
    """Frames inside recognised words: what the recogniser heard as speech."""
    mask = np.zeros(n_frames, dtype=bool)
    for w in words:
        a = max(0, int(w.start * SAMPLE_RATE / HOP))
        b = min(n_frames, int(np.ceil(w.end * SAMPLE_RATE / HOP)) + 1)
        mask[a:b] = True
    return mask


@dataclass
class _Windows:
    centres: np.ndarray  # seconds
    features: np.ndarray  # standardised, pitch weighted


def _windows(audio: np.ndarray, words: Sequence[Word]) -> _Windows | None:
    energy, shape, pitch = _frame_features(audio)
    if len(energy) == 0:
        return None
    speech = _speech_mask(len(energy), words)
    loud = energy > np.percentile(energy[speech], 30) if speech.any() else speech
    use = speech & loud
    centres, rows = [], []
    for a in range(0, len(energy) - WINDOW + 1, STEP):
        sel = use[a : a + WINDOW]
        if sel.sum() < WINDOW // 4:
            continue
        p = pitch[a : a + WINDOW][sel]
        p = p[~np.isnan(p)]
        if len(p) < 5:
            continue
        rows.append(np.concatenate([[np.median(p)], shape[a : a + WINDOW][sel].mean(axis=0)]))
        centres.append((a + WINDOW / 2) * HOP / SAMPLE_RATE)
    if len(rows) < 4:
        return None
    x = np.stack(rows)
    z = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    z[:, 0] *= PITCH_WEIGHT
    return _Windows(np.array(centres), z)


def _two_clusters(z: np.ndarray) -> tuple[np.ndarray, float]:
    """2-means from a pitch split (deterministic); the cost of each window under each centre and
    a Fisher separation ratio of the two clusters."""
    labels = (z[:, 0] > np.median(z[:, 0])).astype(int)
    centres = np.stack([z[labels == k].mean(axis=0) for k in (0, 1)])
    for _ in range(30):
        cost = ((z[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        new = np.argmin(cost, axis=1)
        if len(set(new.tolist())) < 2:
            return cost, 0.0
        if (new == labels).all():
            break
        labels = new
        centres = np.stack([z[labels == k].mean(axis=0) for k in (0, 1)])
    cost = ((z[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    axis = centres[1] - centres[0]
    proj = z @ axis / (np.linalg.norm(axis) + 1e-9)
    m0, m1 = proj[labels == 0].mean(), proj[labels == 1].mean()
    v0, v1 = proj[labels == 0].var(), proj[labels == 1].var()
    return cost, float((m1 - m0) ** 2 / (v0 + v1 + 1e-6))


def _viterbi(cost: np.ndarray, switch: float) -> np.ndarray:
    """The cheapest label sequence when each change of speaker costs ``switch``."""
    n = len(cost)
    total = cost[0].copy()
    back = np.zeros((n, 2), dtype=int)
    for i in range(1, n):
        stay, move = total, total[::-1] + switch
        back[i] = np.where(stay <= move, [0, 1], [1, 0])
        total = np.minimum(stay, move) + cost[i]
    path = np.zeros(n, dtype=int)
    path[-1] = int(np.argmin(total))
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def _snap_to_pauses(words: Sequence[Word], clusters: list[int], reach: float = SNAP_REACH) -> list[int]:
    """Each change of voice moved to the longest pause between words within ``reach`` seconds
    (a pause after the end of a sentence counting ``SENTENCE_END`` longer, ``_pause``).

    A voice window is a second long, so where it straddles a change of speaker it hears both and
    the change lands up to half a window off: the last word of one side goes to the other
    ("...Sergey Petrovich, chief | engineer"), and the client's turn starts with the manager's
    last word. People take turns at a pause, and the recogniser's word times show the pauses."""
    out = list(clusters)
    changes = [i for i in range(1, len(out)) if out[i] != out[i - 1]]
    for i in changes:
        best, best_gap = i, _pause(words, i)
        # candidates inside the two runs that meet here: a pause beyond another change is not ours
        j = i - 1
        while j >= 1 and out[j] == out[j - 1] and words[i].start - words[j].start <= reach:
            best, best_gap = _longer(words, j, best, best_gap)
            j -= 1
        j = i + 1
        while j < len(out) and out[j] == out[j - 1] and words[j].start - words[i].start <= reach:
            best, best_gap = _longer(words, j, best, best_gap)
            j += 1
        if best < i:
            out[best:i] = [out[i]] * (i - best)
        elif best > i:
            out[i:best] = [out[i - 1]] * (best - i)
    return out


def _pause(words: Sequence[Word], j: int) -> float:
    """The pause before word ``j`` as a place for a change of speaker: people take turns at the
    end of a sentence more often than at a comma."""
    gap = words[j].start - words[j - 1].end
    return gap + SENTENCE_END * words[j - 1].text.rstrip().endswith((".", "?", "!", "…"))


def _longer(words: Sequence[Word], j: int, best: int, best_gap: float) -> tuple[int, float]:
    gap = _pause(words, j)
    return (j, gap) if gap > best_gap + SNAP_MARGIN else (best, best_gap)


def split_mono(
    asr: Sequence[AsrSegment], audio: np.ndarray, manager_score: Callable[[Sequence[str]], list[float]]
) -> SpeakerSplit:
    """``manager_score(texts) -> list[float]``: how salesperson-like each text is (role naming).

    One-second voice windows over the recognised speech are clustered in two by pitch and
    spectral shape; a Viterbi pass with a cost per change of speaker keeps turns whole; each word
    takes the voice of the windows it overlaps."""
    words = _all_words(asr)
    if not words:
        return SpeakerSplit([], speakers_known=False)
    unknown = SpeakerSplit(_group(words, ["unknown"] * len(words)), speakers_known=False)
    win = _windows(audio, words)
    if win is None:
        return unknown
    cost, separation = _two_clusters(win.features)
    if separation < MIN_SEPARATION:
        return unknown
    path = _viterbi(cost, SWITCH_COST * float(cost.mean()))
    word_cluster: list[int] = []
    for w in words:
        near = np.abs(win.centres - (w.start + w.end) / 2)
        inside = (win.centres >= w.start - 0.1) & (win.centres <= w.end + 0.1)
        if inside.any():
            word_cluster.append(round(float(path[inside].mean())))
        else:
            word_cluster.append(int(path[int(np.argmin(near))]))
    word_cluster = _snap_to_pauses(words, word_cluster)
    if len(set(word_cluster)) < 2:
        return unknown
    texts = [
        " ".join(w.text.strip() for w, c in zip(words, word_cluster, strict=True) if c == k) for k in (0, 1)
    ]
    scores = manager_score(texts)
    if abs(scores[0] - scores[1]) < ROLE_MARGIN:  # words don't tell: whoever opens the call is the manager
        manager_cluster = word_cluster[0]
    else:
        manager_cluster = 0 if scores[0] > scores[1] else 1
    labels: list[Speaker] = ["manager" if c == manager_cluster else "client" for c in word_cluster]
    return SpeakerSplit(_group(words, _smooth(labels)), speakers_known=True)
