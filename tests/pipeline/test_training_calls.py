"""The whole training calls (reference_data/topic_calls.json) and their import: the objection model
learns from their labelled client turns with the manager's line before each, and the import keeps
what is already packaged when a new batch comes."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from callcoach.pipeline import reference
from callcoach.pipeline.objections import call_examples
from tests.pipeline.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))

import import_topic_calls


def test_labelled_client_turns_teach_the_objection_model_in_context() -> None:
    labelled = reference.TrainingCall(
        id="g1_01",
        topic="sales",
        sentiment="neutral",
        turns=(
            ("manager", "Добрый день. Годовое обслуживание стоит сто двадцать тысяч."),
            ("client", "Мы на такое не рассчитывали."),
            ("manager", "Можно разбить на два платежа."),
            ("client", "Хорошо, присылайте договор."),
        ),
        objections=("", "price", "", ""),
    )
    unlabelled = dataclasses.replace(labelled, id="f1_01", objections=None)
    examples = call_examples([labelled, unlabelled])
    # the objection comes with the end of the manager's line it answers; the other client turn is
    # ordinary talk; a call whose labels were lost teaches nothing about objections
    assert examples == {
        "price": (
            reference.Example(
                "Добрый день. Годовое обслуживание стоит сто двадцать тысяч.", labelled.turns[1][1]
            ),
        ),
        reference.NONE: (reference.Example("Можно разбить на два платежа.", "Хорошо, присылайте договор."),),
    }


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_a_new_batch_is_added_to_the_packaged_calls_with_its_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    _write(
        calls / "dev01.json",
        {"turns": [{"speaker": "client", "text": "у нас весь бюджет уже расписан до осени"}]},
    )
    old = [
        {
            "id": "f1_01",
            "topic": "sales",
            "sentiment": "neutral",
            "turns": [{"speaker": "client", "text": "Добрый день, слушаю вас."}],
        }
    ]
    packaged = _write(tmp_path / "packaged.json", old)
    turns = [
        {"speaker": "manager", "text": "Годовое обслуживание стоит сто двадцать тысяч."},
        {"speaker": "client", "text": "Ого. Мы на такое не рассчитывали.", "objection": "price"},
        {"speaker": "client", "text": "У нас весь бюджет уже расписан до осени, понимаете."},
        {"speaker": "manager", "text": "Понимаю, давайте разобьём на два платежа."},
    ]
    batch = {
        "calls": [
            {"id": "g1_01", "topic": "sales", "sentiment": "negative", "turns": turns},
            {
                "id": "g1_02",
                "topic": "sales",
                "sentiment": "neutral",
                "turns": [{**turns[1], "objection": "cost"}],
            },
            {"id": "f1_01", "topic": "order", "sentiment": "neutral", "turns": turns},
        ]
    }
    source = _write(tmp_path / "g1.json", batch)
    monkeypatch.setattr(import_topic_calls, "TARGET", tmp_path)

    assert import_topic_calls.main([str(packaged), str(source), "--calls", str(calls)]) == 0

    written = json.loads((tmp_path / "topic_calls.json").read_text(encoding="utf-8"))
    assert [c["id"] for c in written] == ["f1_01", "g1_01"]  # an unknown code and a repeated id are refused
    assert "objections_labelled" not in written[0]  # what was packaged keeps its own flag
    assert written[1]["objections_labelled"] is True
    # the turn that repeats an evaluation call's wording is dropped; the label stays on its turn
    assert [(t["speaker"], t.get("objection")) for t in written[1]["turns"]] == [
        ("manager", None),
        ("client", "price"),
        ("manager", None),
    ]
    report = capsys.readouterr().out
    assert "'turn overlaps an evaluation set': 1" in report
    assert "'call with an unknown label': 1" in report
