"""Floors on the real bundled model over the shared dev calls: a regression fails CI.

Measured (bench/accuracy.py, mono): objection F1 1.00, topic 1.00, sentiment 1.00. The floors
are the bar the product promises (F1 0.9, topic and sentiment 0.8), so ASR jitter on one or two
calls passes and a real regression does not. The paraphrase sets (bench/corpus) say the same
things in other words: the text stage must clear the same bar on them, so a fix that only learns
the dev calls' wording fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callcoach.pipeline.models import Findings, Segment

OBJECTION_F1_FLOOR = 0.9
TOPIC_FLOOR = 0.8
SENTIMENT_FLOOR = 0.8
PARAPHRASES = sorted((Path(__file__).resolve().parents[2] / "bench" / "corpus").glob("paraphrases_*.json"))


def _labels(f: Findings) -> set[str]:
    labels = {o.category for o in f.objections}
    if f.new_category_candidates:
        labels.add("novel")
    return labels


def _assert_floors(results: list[tuple[dict, Findings]]) -> None:
    tp = fp = fn = topic = sentiment = 0
    for truth, f in results:
        t = {x["objection"] for x in truth["turns"] if x["objection"]}
        p = _labels(f)
        tp, fp, fn = tp + len(t & p), fp + len(p - t), fn + len(t - p)
        topic += f.topic.label == truth["topic"]
        sentiment += f.sentiment.overall.label == truth["sentiment"]
    n = len(results)
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert f1 >= OBJECTION_F1_FLOOR, (tp, fp, fn)
    assert topic / n >= TOPIC_FLOOR
    assert sentiment / n >= SENTIMENT_FLOOR


@pytest.mark.slow
def test_mono_calls_meet_the_floors(mono_findings) -> None:
    _assert_floors(list(mono_findings.values()))


@pytest.mark.slow
@pytest.mark.parametrize("path", PARAPHRASES, ids=lambda p: p.stem)
def test_paraphrased_calls_meet_the_floors_at_text_level(analyzer, path: Path) -> None:
    calls = json.loads(path.read_text(encoding="utf-8"))["calls"]
    results = []
    for call in calls:
        turns, segments, t = [], [], 0.0
        for speaker, text, *objection in call["turns"]:
            who = "manager" if speaker == "M" else "client"
            turns.append({"speaker": who, "text": text, "objection": objection[0] if objection else None})
            segments.append(Segment(speaker=who, start=t, end=t + len(text) / 14, text=text))
            t += len(text) / 14 + 0.5
        truth = {"topic": call["topic"], "sentiment": call["sentiment"], "turns": turns}
        results.append((truth, analyzer.text.analyze_transcript(segments)))
    assert len(results) >= 20
    _assert_floors(results)


@pytest.mark.slow
def test_novel_objection_is_not_forced_into_a_standard_category(mono_findings) -> None:
    _, f = mono_findings["dev12"]
    assert f.new_category_candidates
    assert not {o.category for o in f.objections} & {"cannot_decide", "terms_mismatch", "lack_of_trust"}


@pytest.mark.slow
def test_stereo_price_objection_is_the_clients_and_handled(analyzer, calls_dir: Path) -> None:
    f = analyzer.analyze_file(calls_dir / "dev01.stereo.mp3")
    assert f.channels == "stereo" and f.speakers_known
    price = [o for o in f.objections if o.category == "price"]
    assert price
    client_text = " ".join(s.text for s in f.segments if s.speaker == "client")
    assert price[0].quote in client_text
    assert price[0].handled is True
    assert f.segments[0].speaker == "manager"
    again = analyzer.analyze_file(calls_dir / "dev01.stereo.mp3")  # served from the cache
    assert again.objections == f.objections


@pytest.mark.slow
def test_mono_speakers_are_told_apart(mono_findings) -> None:
    known = [f for _, f in mono_findings.values() if f.speakers_known]
    assert len(known) >= 9
    for f in known:
        assert {s.speaker for s in f.segments} <= {"manager", "client"}
