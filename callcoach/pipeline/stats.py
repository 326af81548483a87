"""Conversation statistics from timed, speaker-labelled segments."""

from __future__ import annotations

from collections.abc import Sequence

from callcoach.pipeline.models import ConversationStats, Segment

INTERRUPTION_OVERLAP_S = 0.3  # the next speaker starts this long before the other has finished


def conversation_stats(segments: Sequence[Segment], duration: float) -> ConversationStats:
    manager = sum(max(0.0, s.end - s.start) for s in segments if s.speaker == "manager")
    client = sum(max(0.0, s.end - s.start) for s in segments if s.speaker == "client")
    speech = _union_length([(s.start, s.end) for s in segments])
    duration = max(duration, max((s.end for s in segments), default=0.0))
    longest, longest_speaker = 0.0, None
    run_start, run_end, run_speaker = 0.0, 0.0, None
    interruptions = 0
    previous: Segment | None = None
    for s in segments:
        if previous is not None and s.speaker != previous.speaker:
            if s.start < previous.end - INTERRUPTION_OVERLAP_S:
                interruptions += 1
        if run_speaker == s.speaker and s.start - run_end < 2.0:
            run_end = s.end
        else:
            run_start, run_end, run_speaker = s.start, s.end, s.speaker
        if run_end - run_start > longest:
            longest, longest_speaker = run_end - run_start, run_speaker
        previous = s
    questions = sum(s.text.count("?") for s in segments if s.speaker == "manager")
    talk = manager + client
    return ConversationStats(
        duration=round(duration, 2),
        manager_talk_s=round(manager, 2),
        client_talk_s=round(client, 2),
        talk_ratio=round(manager / talk, 3) if talk else 0.0,
        longest_monologue_s=round(longest, 2),
        longest_monologue_speaker=longest_speaker,
        interruptions=interruptions,
        silence_share=round(max(0.0, 1.0 - speech / duration), 3) if duration else 0.0,
        manager_questions=questions,
    )


def _union_length(spans: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total
