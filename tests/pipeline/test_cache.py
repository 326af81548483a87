"""The findings cache never serves findings made by other classifiers or other reference lines."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import callcoach.pipeline
from callcoach.pipeline.asr import AsrResult, AsrSegment
from callcoach.pipeline.cache import AsrCache, pipeline_fingerprint
from callcoach.pipeline.models import Word

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


def test_a_transcript_pack_seeds_a_fresh_cache_with_the_same_transcripts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench/_transcripts.py: what one machine transcribed, another reads back unchanged, and a
    transcript already in the cache is left as it is."""
    monkeypatch.syspath_prepend(str(PIPELINE.parents[1] / "bench"))
    from _transcripts import save, seed

    result = AsrResult(
        segments=[AsrSegment(0.0, 1.5, "Алло, добрый день.", [Word(start=0.0, end=0.4, text="Алло")])],
        language="ru",
        duration=1.5,
    )
    source = AsrCache(tmp_path / "a")
    source.put("k1", result)
    pack = tmp_path / "pack.json.gz"
    assert save(source, ["k1", "k1", "missing"], pack) == 1
    first = pack.read_bytes()
    save(source, ["k1"], pack)
    assert pack.read_bytes() == first  # the same transcripts, the same bytes: no churn in git

    fresh = AsrCache(tmp_path / "b")
    assert seed(fresh, [pack]) == 1
    assert fresh.get("k1") == result
    assert seed(fresh, [pack]) == 0
