"""Fitted text models are kept on disk so that a restart does not embed the reference lines again."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from callcoach.pipeline.linear import FittedModels


class CountingFeatures:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.array([[len(t), t.count("а"), 1.0] for t in texts], dtype=np.float32)


def test_a_restart_loads_the_model_and_a_change_refits(tmp_path: Path) -> None:
    texts, labels = ["да", "нет", "дорого как-то", "а зачем нам это"], [0, 0, 1, 1]
    featurize = CountingFeatures()
    first = FittedModels(tmp_path).fit("demo", texts, labels, 2, featurize, encoders="x")
    again = FittedModels(tmp_path).fit("demo", texts, labels, 2, featurize, encoders="x")
    assert featurize.calls == 1  # the second start read the file
    assert np.array_equal(first.weights, again.weights) and np.array_equal(first.bias, again.bias)

    FittedModels(tmp_path).fit("demo", [*texts, "очень дорого"], [*labels, 1], 2, featurize, encoders="x")
    FittedModels(tmp_path).fit("demo", texts, labels, 2, featurize, encoders="other encoder")
    assert featurize.calls == 3  # new lines, new encoders: fitted anew
    assert len(list(tmp_path.glob("demo-*.npz"))) == 3


def test_a_torn_file_is_refitted_and_no_folder_keeps_nothing(tmp_path: Path) -> None:
    texts, labels = ["да", "дорого"], [0, 1]
    featurize = CountingFeatures()
    FittedModels(tmp_path).fit("demo", texts, labels, 2, featurize, encoders="x")
    [saved] = tmp_path.glob("demo-*.npz")
    saved.write_bytes(b"not a model")
    model = FittedModels(tmp_path).fit("demo", texts, labels, 2, featurize, encoders="x")
    assert featurize.calls == 2 and model.predict(featurize(texts)).shape == (2, 2)

    FittedModels(None).fit("demo", texts, labels, 2, featurize, encoders="x")
    FittedModels(None).fit("demo", texts, labels, 2, featurize, encoders="x")
    assert featurize.calls == 5


def test_old_category_sets_are_pruned(tmp_path: Path) -> None:
    models = FittedModels(tmp_path)
    models.KEEP = 3
    for n in range(5):
        models.fit("demo", ["да", f"дорого {n}"], [0, 1], 2, CountingFeatures(), encoders="x")
    assert len(list(tmp_path.glob("demo-*.npz"))) == 3
