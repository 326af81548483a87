"""Multinomial logistic regression in numpy: the small learnt layer over sentence embeddings.

A few hundred reference phrases are all the training data there is, so the model is tiny and is
fitted in well under a second when the process starts (and again when a portal's category set
changes). ``class_weights`` let a caller weigh classes equally whatever their number of phrases,
so a custom category with three examples is not drowned by a standard one with forty.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

M = TypeVar("M")


@dataclass(frozen=True)
class SoftmaxRegression:
    weights: np.ndarray  # (dim, classes)
    bias: np.ndarray  # (classes,)

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        n_classes: int,
        *,
        class_weights: np.ndarray | None = None,
        l2: float = 1e-3,
        steps: int = 800,
        rate: float = 1.0,
    ) -> SoftmaxRegression:
        """Full-batch gradient descent; deterministic (zero start, no shuffling)."""
        x = np.asarray(x, dtype=np.float64)
        per_class = (
            np.ones(n_classes) if class_weights is None else np.asarray(class_weights, dtype=np.float64)
        )
        sample_w = per_class[y]
        sample_w /= sample_w.sum()
        target = np.eye(n_classes)[y]
        w = np.zeros((x.shape[1], n_classes))
        b = np.zeros(n_classes)
        for _ in range(steps):
            p = _softmax(x @ w + b)
            g = (p - target) * sample_w[:, None]
            w -= rate * (x.T @ g + l2 * w)
            b -= rate * g.sum(axis=0)
        return cls(weights=w.astype(np.float32), bias=b.astype(np.float32))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(n, classes) probabilities."""
        return _softmax(np.asarray(x, dtype=np.float32) @ self.weights + self.bias)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


class FittedModels:
    """Fitted regressions kept on disk, keyed by everything that determines them (the training
    lines and labels, the encoders, the fit settings). Fitting is cheap; embedding a thousand
    reference lines with two encoders is not (tens of seconds on a small CPU), so a restart
    loads what the last start fitted. ``folder=None`` keeps nothing."""

    KEEP = 32  # files per model name

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def fit(
        self,
        name: str,
        texts: Sequence[str],
        labels: Sequence[int],
        n_classes: int,
        featurize: Callable[[Sequence[str]], np.ndarray],
        *,
        encoders: str,
        class_weights: np.ndarray | None = None,
        l2: float = 1e-3,
        steps: int = 800,
        rate: float = 1.0,
    ) -> SoftmaxRegression:
        key = hashlib.sha256(
            json.dumps(
                [
                    list(texts),
                    list(map(int, labels)),
                    n_classes,
                    encoders,
                    None if class_weights is None else [round(float(w), 9) for w in class_weights],
                    l2,
                    *([] if (steps, rate) == (800, 1.0) else [steps, rate]),
                ],
                ensure_ascii=False,
            ).encode()
        ).hexdigest()[:20]
        path = self.folder / f"{name}-{key}.npz" if self.folder is not None else None
        if path is not None and path.is_file():
            try:
                with np.load(path) as saved:
                    return SoftmaxRegression(weights=saved["weights"], bias=saved["bias"])
            except (OSError, ValueError, KeyError):  # a torn or foreign file: fit again
                pass
        model = SoftmaxRegression.fit(
            featurize(texts),
            np.asarray(labels),
            n_classes,
            class_weights=class_weights,
            l2=l2,
            steps=steps,
            rate=rate,
        )
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as tmp:
                    np.savez(tmp, weights=model.weights, bias=model.bias)
                os.replace(tmp.name, path)  # atomic: a parallel start never reads half a file
                self._prune(name)
            except OSError:
                pass  # a read-only data dir costs the next start a refit, nothing more
        return model

    def fit_groups(
        self,
        name: str,
        groups: Sequence[Sequence[str]],
        labels: Sequence[int],
        n_classes: int,
        featurize: Callable[[Sequence[str]], np.ndarray],
        pool: Callable[[np.ndarray], np.ndarray],
        *,
        encoders: str,
        l2: float,
    ) -> SoftmaxRegression:
        """A regression over groups of lines (a call's turns), each group's line vectors pooled
        into one vector (``pool``). Every line is embedded once into the line store under
        ``encoders``, beside the reference lines; the classes weigh equally, since the groups'
        label mix is whoever wrote them, not what a portal sees."""
        keys = [json.dumps(list(g), ensure_ascii=False) for g in groups]
        members = dict(zip(keys, groups, strict=True))

        def vectors(batch: Sequence[str]) -> np.ndarray:
            x = self.lines([t for k in batch for t in members[k]], featurize, encoders=encoders)
            ends = np.cumsum([len(members[k]) for k in batch])
            return np.stack([pool(part) for part in np.split(x, ends[:-1])])

        counts = np.bincount(np.asarray(labels), minlength=n_classes).astype(np.float64)
        return self.fit(
            name,
            keys,
            labels,
            n_classes,
            vectors,
            encoders=encoders,
            class_weights=counts.mean() / np.maximum(counts, 1.0),
            l2=l2,
            steps=1500,
            rate=2.0,
        )

    # the line store's size limit: the reference lines, the manager lines they answer and the
    # topic lines and the training calls' turns (11,700, about 42 MB with two encoders) and many
    # portals' custom examples fit
    MAX_LINES = 20000

    def lines(
        self,
        texts: Sequence[str],
        featurize: Callable[[Sequence[str]], np.ndarray],
        *,
        encoders: str,
    ) -> np.ndarray:
        """``featurize(texts)``, each line's vector kept on disk once per encoder set: a new
        category set (a portal's custom category, its examples) embeds only its new lines. Before,
        the vectors were kept per set, and the first custom category after a restart embedded
        every reference line again: minutes on a two-core server, while the portal waited."""
        if not texts:
            return np.asarray(featurize(texts), dtype=np.float32)
        tag = hashlib.sha256(encoders.encode()).hexdigest()[:12]
        path = self.folder / f"lines-{tag}.npz" if self.folder is not None else None
        known: dict[bytes, np.ndarray] = {}  # by the line's digest: the texts would double the file
        if path is not None and path.is_file():
            try:
                with np.load(path, allow_pickle=False) as saved:
                    digests, vectors = saved["digests"], saved["vectors"]
                    if digests.shape == (len(vectors), 16):
                        known = {bytes(d): v for d, v in zip(digests, vectors, strict=True)}
            except (OSError, ValueError, KeyError):  # a torn or foreign file: embed again
                known = {}
        keys = [_digest(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in known}
        if missing:
            fresh = np.asarray(featurize(list(missing.values())), dtype=np.float32)
            known.update(zip(missing, fresh, strict=True))
        out = np.stack([known[k] for k in keys]).astype(np.float32, copy=False)
        if path is not None and missing:
            if len(known) > self.MAX_LINES:  # keep what this set uses; the rest is embedded anew
                known = {k: known[k] for k in keys}
            self._save_lines(path, known)
        return out

    def _save_lines(self, path: Path, lines: dict[bytes, np.ndarray]) -> None:
        assert self.folder is not None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as tmp:
                # digests as raw bytes: numpy's fixed-width bytes type drops trailing zero bytes
                digests = np.frombuffer(b"".join(lines), dtype=np.uint8).reshape(-1, 16)
                np.savez(tmp, digests=digests, vectors=np.stack(list(lines.values())))
            # atomic: a parallel process never reads half a file; when two add lines at once, the
            # last one's file wins and the other's lines are embedded again when next needed
            os.replace(tmp.name, path)
            for old in self.folder.glob("objection-lines-*.npy"):  # the earlier per-set files
                old.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only data dir: the lines are embedded again by the next process

    def _prune(self, name: str) -> None:
        """Every edit of a portal's categories is a new set: keep the newest few per model."""
        assert self.folder is not None
        files = sorted(self.folder.glob(f"{name}-*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[self.KEEP :]:
            old.unlink(missing_ok=True)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class RecentModels(Generic[M]):
    """The models of the last few label sets (a portal's categories, its topics), the least
    recently used dropped first; shared by the analysis threads. A model is built outside the
    lock: two threads missing the same set at once both build it, which costs a second fit and
    nothing else."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._models: OrderedDict[str, M] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, build: Callable[[], M]) -> M:
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        model = build()
        with self._lock:
            self._models[key] = model
            while len(self._models) > self.size:
                self._models.popitem(last=False)
        return model
