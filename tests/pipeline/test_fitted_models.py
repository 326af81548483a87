"""Fitted text models are kept on disk so that a restart does not embed the reference lines again."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from callcoach.pipeline.linear import FittedModels
from tests.helpers import CountingEncoder


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


def test_line_vectors_are_kept_per_line_so_a_new_set_embeds_only_its_new_lines(tmp_path: Path) -> None:
    featurize = RecordingFeatures()
    lines = ["да", "нет", "дорого как-то"]
    first = FittedModels(tmp_path).lines(lines, featurize, encoders="x")
    # a restart, and a portal's category set with one line more, in another order
    again = FittedModels(tmp_path).lines(["нет", "очень дорого", "да"], featurize, encoders="x")
    assert featurize.seen == [lines, ["очень дорого"]]
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[2], first[0])
    assert again[1].tolist() == [12, 0, 4]  # "очень дорого": its own vector
    FittedModels(tmp_path).lines(lines, featurize, encoders="other encoder")
    assert featurize.seen[-1] == lines  # other encoders: other vectors


def test_a_torn_line_store_is_embedded_again_and_a_full_one_keeps_what_is_used(tmp_path: Path) -> None:
    featurize = RecordingFeatures()
    FittedModels(tmp_path).lines(["да", "нет"], featurize, encoders="x")
    [store] = tmp_path.glob("lines-*.npz")
    store.write_bytes(b"torn")
    out = FittedModels(tmp_path).lines(["да", "нет"], featurize, encoders="x")
    assert featurize.seen[-1] == ["да", "нет"] and out.shape == (2, 3)

    small = FittedModels(tmp_path)
    small.MAX_LINES = 3
    small.lines(["а", "б", "в"], featurize, encoders="x")  # 5 lines known: over the limit
    small.lines(["в"], featurize, encoders="x")
    assert featurize.seen[-1] == ["а", "б", "в"]  # "в" was kept with the set that used it
    small.lines(["да"], featurize, encoders="x")
    assert featurize.seen[-1] == ["да"]  # the lines of older sets were let go


class RecordingFeatures:
    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.append(list(texts))
        return np.array([[len(t), t.count("а"), t.count("о")] for t in texts], dtype=np.float32)


def test_after_a_restart_a_custom_category_embeds_only_its_own_lines(tmp_path: Path) -> None:
    from callcoach.pipeline.categories import merge_categories
    from callcoach.pipeline.models import Category
    from callcoach.pipeline.objections import ObjectionClassifier

    first = CountingEncoder()
    ObjectionClassifier([first], fitted=FittedModels(tmp_path)).classify_text(
        "дорого", merge_categories(None)
    )
    assert len(first.embedded) > 1000  # the reference lines, once

    custom = Category(
        code="security_review",
        name="Проверка безопасности",
        description="Сначала подрядчика проверяет служба безопасности.",
        examples=["Без заключения безопасников не подпишем", "Вас сперва проверит наша СБ"],
    )
    restarted = CountingEncoder()
    classifier = ObjectionClassifier([restarted], fitted=FittedModels(tmp_path))
    classifier.classify_text("дорого", merge_categories([custom]))
    assert sorted(restarted.embedded) == sorted([*custom.examples, custom.description, "дорого"])
