"""Where a mono call's change of voice lands: at the pause people take turns at."""

from callcoach.pipeline.models import Word
from callcoach.pipeline.speakers import _snap_to_pauses


def _words(*spans: tuple[float, float]) -> list[Word]:
    return [Word(start=a, end=b, text=f" w{i}") for i, (a, b) in enumerate(spans)]


def test_a_change_a_word_late_moves_back_to_the_pause_before_it() -> None:
    # "... chief | engineer. Nice to meet you": the manager's last word was heard in the client's voice
    words = _words((0.0, 0.4), (0.45, 0.8), (1.6, 2.0), (2.05, 2.4), (2.45, 2.9))
    assert _snap_to_pauses(words, [0, 0, 0, 1, 1]) == [0, 0, 1, 1, 1]


def test_a_change_a_word_early_moves_on_to_the_pause_after_it() -> None:
    words = _words((0.0, 0.3), (0.35, 0.6), (1.0, 1.3), (1.35, 1.6))
    assert _snap_to_pauses(words, [0, 1, 1, 1]) == [0, 0, 1, 1]


def test_a_change_at_a_pause_or_beyond_reach_stays() -> None:
    at_pause = _words((0.0, 0.4), (1.2, 1.6), (1.65, 2.0))
    assert _snap_to_pauses(at_pause, [0, 1, 1]) == [0, 1, 1]
    far = _words((0.0, 0.4), (2.0, 2.4), (2.45, 2.8), (2.85, 3.2), (3.25, 3.6), (3.65, 4.0))
    assert _snap_to_pauses(far, [0, 0, 0, 0, 0, 1]) == [0, 0, 0, 0, 0, 1]


def test_a_pause_beyond_another_change_is_not_taken() -> None:
    # a one-word turn between two changes keeps its word
    words = _words((0.0, 0.4), (1.5, 1.9), (1.95, 2.3), (2.35, 2.7))
    assert _snap_to_pauses(words, [0, 0, 1, 0]) == [0, 1, 1, 0]


def test_the_end_of_a_sentence_beats_a_slightly_longer_comma_pause() -> None:
    # "... right now, | well, I can't afford it. | There is leasing": Whisper stretches "it." into
    # the silence after it, so the turn's real end reads shorter than the comma's pause before it
    words = [
        Word(start=0.0, end=0.4, text=" сейчас,"),
        Word(start=0.7, end=1.0, text=" ну"),
        Word(start=1.05, end=1.5, text=" потяну."),
        Word(start=1.75, end=2.0, text=" Есть"),
        Word(start=2.05, end=2.5, text=" лизинг"),
    ]
    # the voice changed a word early, on "потяну": the end of the sentence (0.25 s) is taken over
    # the comma's pause (0.3 s), and the whole sentence stays the client's
    assert _snap_to_pauses(words, [1, 1, 0, 0, 0]) == [1, 1, 1, 0, 0]
