"""Shared fixtures for the pipeline tests: one Analyzer (real models) per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from callcoach.config import Settings
from tests.helpers import data_dir_with_shared_models

REPO = Path(__file__).resolve().parents[2]


def shared_calls_dir() -> Path:
    env = os.environ.get("CALLCOACH_SHARED_DIR")
    return (Path(env) if env else REPO.parent / "shared") / "calls"


@pytest.fixture(scope="session")
def calls_dir() -> Path:
    path = shared_calls_dir()
    if not path.is_dir():
        pytest.skip(f"shared calls folder {path} is absent")
    return path


@pytest.fixture(scope="session")
def pipeline_data_dir(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    """Its own database and transcript cache, the session's joined Whisper and fitted models."""
    return data_dir_with_shared_models(tmp_path_factory.mktemp("pipeline-data"), models_dir)


@pytest.fixture(scope="session")
def pipeline_settings(pipeline_data_dir: Path) -> Settings:
    return Settings(data_dir=pipeline_data_dir, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def analyzer(pipeline_settings: Settings):  # type: ignore[no-untyped-def]
    from callcoach.pipeline.analyzer import Analyzer

    return Analyzer(pipeline_settings)


@pytest.fixture(scope="session")
def text_analyzer(analyzer):  # type: ignore[no-untyped-def]
    return analyzer.text


@pytest.fixture(scope="session")
def mono_findings(analyzer, calls_dir: Path):  # type: ignore[no-untyped-def]
    """The twelve mono dev calls analysed once per session (ASR is the expensive part)."""
    import json

    out = {}
    for truth_path in sorted(calls_dir.glob("dev*.json")):
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        out[truth["id"]] = (truth, analyzer.analyze_file(calls_dir / f"{truth['id']}.mp3"))
    return out
