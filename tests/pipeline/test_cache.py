"""The findings cache never serves findings made by other classifiers or other reference lines."""

from __future__ import annotations

import shutil
from pathlib import Path

import callcoach.pipeline
from callcoach.pipeline.cache import pipeline_fingerprint

PIPELINE = Path(callcoach.pipeline.__file__).resolve().parent


def test_a_changed_reference_line_changes_the_cache_key(tmp_path: Path) -> None:
    copy = tmp_path / "pipeline"
    shutil.copytree(PIPELINE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = pipeline_fingerprint(copy)
    assert before == pipeline_fingerprint(copy)  # stable while nothing changes

    price = copy / "reference_data" / "price.json"
    price.write_text(price.read_text(encoding="utf-8").replace("[", '[{"context": "", "text": "x"},', 1))
    assert pipeline_fingerprint(copy) != before


def test_a_changed_classifier_changes_the_cache_key(tmp_path: Path) -> None:
    copy = tmp_path / "pipeline"
    shutil.copytree(PIPELINE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = pipeline_fingerprint(copy)
    with open(copy / "objections.py", "a", encoding="utf-8") as f:
        f.write("\n# a changed threshold\n")
    assert pipeline_fingerprint(copy) != before
