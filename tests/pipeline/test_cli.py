from __future__ import annotations

import json
from pathlib import Path

import pytest

from callcoach.cli import main


@pytest.mark.slow
def test_analyze_writes_one_object_per_recording_and_fails_bad_ones(
    calls_dir: Path, pipeline_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("CALLCOACH_DATA_DIR", str(pipeline_data_dir))
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "broken.mp3").write_text("not audio")
    out = tmp_path / "out.json"
    code = main(["analyze", str(calls_dir / "dev01.stereo.mp3"), str(folder), "--json", str(out)])
    assert code == 1  # one recording failed
    records = json.loads(out.read_text(encoding="utf-8"))
    assert len(records) == 2
    good, bad = records
    for key in (
        "file",
        "duration",
        "segments",
        "objections",
        "topic",
        "sentiment",
        "stats",
        "summary",
        "new_category_candidates",
    ):
        assert key in good
    assert "overall" in good["sentiment"]
    assert {"category", "quote", "start"} <= set(good["objections"][0])
    assert any(o["category"] == "price" for o in good["objections"])
    assert bad["file"].endswith("broken.mp3") and "error" in bad and bad["error"]
    assert "analyze" in capsys.readouterr().err  # progress bar on stderr
