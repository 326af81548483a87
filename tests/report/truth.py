"""Findings built from the ground-truth ``.json`` files of /work/shared/calls, so that report tests
run without the speech model. A truth file: ``{id, topic, sentiment, duration_s, turns: [{speaker,
start, end, text, objection}]}``; ``objection: "novel"`` fits no category (a new-category candidate)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from callcoach.pipeline.models import (
    ConversationStats,
    Findings,
    NewCategoryCandidate,
    Objection,
    Segment,
    Sentiment,
    SentimentScore,
    Topic,
)

CALLS_DIR = Path("/work/shared/calls")


def _stats(turns: list[dict[str, Any]], duration: float) -> ConversationStats:
    manager = sum(t["end"] - t["start"] for t in turns if t["speaker"] == "manager")
    client = sum(t["end"] - t["start"] for t in turns if t["speaker"] == "client")
    longest = max(turns, key=lambda t: t["end"] - t["start"]) if turns else None
    return ConversationStats(
        duration=duration,
        manager_talk_s=round(manager, 2),
        client_talk_s=round(client, 2),
        talk_ratio=round(manager / (manager + client), 4) if manager + client else 0.0,
        longest_monologue_s=round(longest["end"] - longest["start"], 2) if longest else 0.0,
        longest_monologue_speaker=longest["speaker"] if longest else None,
        manager_questions=sum(t["text"].count("?") for t in turns if t["speaker"] == "manager"),
    )


def truth_to_findings(truth: dict[str, Any], file: str) -> Findings:
    turns = truth["turns"]
    objections: list[Objection] = []
    candidates: list[NewCategoryCandidate] = []
    for i, turn in enumerate(turns):
        code = turn.get("objection")
        if not code:
            continue
        if code == "novel":
            candidates.append(NewCategoryCandidate(quote=turn["text"], start=turn["start"], confidence=0.6))
            continue
        reply = next((t["text"] for t in turns[i + 1 :] if t["speaker"] == "manager"), "")
        # truth says nothing about handling: call it handled when the manager answered and had
        # the last word (a client who ends the call was not won over)
        objections.append(
            Objection(
                category=code,
                quote=turn["text"],
                start=turn["start"],
                end=turn["end"],
                confidence=0.9,
                handled=bool(reply) and turns[-1]["speaker"] == "manager",
                manager_reply=reply,
            )
        )
    label = truth["sentiment"]
    return Findings(
        file=file,
        duration=truth["duration_s"],
        channels="stereo",
        segments=[
            Segment(speaker=t["speaker"], start=t["start"], end=t["end"], text=t["text"]) for t in turns
        ],
        objections=objections,
        new_category_candidates=candidates,
        sentiment=Sentiment(overall=SentimentScore(label=label, score=0.8)),
        topic=Topic(label=truth["topic"], score=0.8),
        stats=_stats(turns, truth["duration_s"]),
        summary=f"Разговор на тему «{truth['topic']}».",
    )


def first_set(calls_dir: Path = CALLS_DIR) -> list[Path]:
    """The truth files of dev01..dev12, the set the report's expected figures are written for;
    the folder also holds the longer second set (dev13..), which these fixtures leave out."""
    return [p for p in sorted(calls_dir.glob("dev*.json")) if int(p.stem[3:]) <= 12]


def truth_analyze_output(calls_dir: Path = CALLS_DIR) -> list[dict[str, Any]]:
    """What ``callcoach analyze`` would print for dev01..dev12 (mono)."""
    out: list[dict[str, Any]] = []
    for truth_path in first_set(calls_dir):
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        audio = truth_path.with_suffix(".mp3")
        out.append(truth_to_findings(truth, str(audio)).model_dump(mode="json"))
    return out


if __name__ == "__main__":  # python -m tests.report.truth > analyze.json
    print(json.dumps(truth_analyze_output(), ensure_ascii=False, indent=1))
