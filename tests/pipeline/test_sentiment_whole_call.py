"""The whole-call sentiment layer speaks only where the turns left a long call neutral, and only
when it is sure (sentiment.WHOLE_CALL_*): a stub model pins the turns and the whole-call reading."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from callcoach.pipeline.models import Segment
from callcoach.pipeline.sentiment import WHOLE_CALL_SURE, WHOLE_CALL_TURNS, analyse_sentiment


class _Stub:
    name = "stub"

    def __init__(self, turns: Sequence[float], whole: Sequence[float] | None) -> None:
        self.turns, self.whole = np.array(turns, dtype=np.float32), whole
        self.asked: list[list[str]] = []

    def turn_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return np.tile(self.turns, (len(texts), 1))

    def call_probabilities(self, texts: Sequence[str]) -> np.ndarray | None:
        self.asked.append(list(texts))
        return None if self.whole is None else np.array(self.whole)


def _call(turns: int) -> list[Segment]:
    return [
        Segment(
            speaker="manager" if i % 2 == 0 else "client", start=4.0 * i, end=4.0 * i + 3, text=f"реплика {i}"
        )
        for i in range(turns)
    ]


NEUTRAL = (0.1, 0.8, 0.1)
SURE_NEGATIVE = (WHOLE_CALL_SURE + 0.05, 0.1, 0.05)


def test_a_long_neutral_call_takes_the_whole_call_reading_when_it_is_sure() -> None:
    stub = _Stub(NEUTRAL, SURE_NEGATIVE)
    overall = analyse_sentiment(stub, _call(WHOLE_CALL_TURNS)).overall
    assert overall.label == "negative"
    # the client's turns only: the manager is polite by trade
    assert stub.asked == [[f"реплика {i}" for i in range(1, WHOLE_CALL_TURNS, 2)]]


@pytest.mark.parametrize(
    ("turns", "whole"),
    [
        (WHOLE_CALL_TURNS - 1, SURE_NEGATIVE),  # a short call's turns say it all
        (WHOLE_CALL_TURNS, (WHOLE_CALL_SURE - 0.05, 0.15, 0.1)),  # not sure enough
        (WHOLE_CALL_TURNS, None),  # no whole-call layer (a trained sentiment model)
    ],
)
def test_otherwise_the_turns_decide(turns: int, whole: Sequence[float] | None) -> None:
    assert analyse_sentiment(_Stub(NEUTRAL, whole), _call(turns)).overall.label == "neutral"


def test_a_call_the_turns_already_judged_is_not_overruled() -> None:
    stub = _Stub((0.05, 0.15, 0.8), SURE_NEGATIVE)
    assert analyse_sentiment(stub, _call(WHOLE_CALL_TURNS + 4)).overall.label == "positive"
    assert stub.asked == []
