"""Multinomial logistic regression in numpy: the small learnt layer over sentence embeddings.

A few hundred reference phrases are all the training data there is, so the model is tiny and is
fitted in well under a second when the process starts (and again when a portal's category set
changes). ``class_weights`` let a caller weigh classes equally whatever their number of phrases,
so a custom category with three examples is not drowned by a standard one with forty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
