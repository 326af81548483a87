"""A call's turns are embedded once, however many models read them, even on a long-running server."""

from __future__ import annotations

import numpy as np

from tests.helpers import CountingEncoder


def test_seen_texts_are_not_embedded_again_and_the_oldest_are_forgotten_first() -> None:
    enc = CountingEncoder()
    enc.LIMIT = 3
    first = enc.encode(["да", "нет", "да"])
    assert enc.embedded == ["да", "нет"] and first.shape == (3, 2)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0)
    enc.encode(["нет", "дорого"])  # "нет" known; "да" is now the least recently used
    enc.encode(["зачем"])  # past the limit: "да" is forgotten, the rest kept
    assert enc.embedded == ["да", "нет", "дорого", "зачем"]
    again = enc.encode(["нет", "дорого", "зачем", "да"])
    assert enc.embedded[4:] == ["да"]
    assert np.allclose(again[3], first[0])
