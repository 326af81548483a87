"""Sentiment per speaker and overall.

Offline (default): a small learnt layer over sentence embeddings scores each turn negative /
neutral / positive, a cue lexicon tips undecided turns, and objections that are grievances in
themselves (price, terms, distrust, poor quality) count as displeasure. With
``settings.sentiment_model`` set, a Hugging Face text classifier (e.g.
sismetanin/rubert-ru-sentiment-rureviews) is loaded from a local path or the local HF cache —
never downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from typing import Any, Protocol

import numpy as np

from callcoach.pipeline.embeddings import Embedder, features
from callcoach.pipeline.linear import FittedModels, SoftmaxRegression
from callcoach.pipeline.models import Objection, Segment, Sentiment, SentimentLabel, SentimentScore
from callcoach.pipeline.phrasebook import sentiment_examples
from callcoach.pipeline.reference import topic_calls
from callcoach.pipeline.textutil import words

LABELS: tuple[SentimentLabel, ...] = ("negative", "neutral", "positive")

PROTOTYPES: dict[SentimentLabel, tuple[str, ...]] = {
    # clear displeasure: anger, refusal, complaint, threat to leave, distrust
    "negative": (
        "Это возмутительно, я очень недоволен.",
        "Нас это категорически не устраивает.",
        "Всё, мы от вас уходим.",
        "Я вам не верю, вы нас обманете.",
        "Опять ничего не работает, сколько можно!",
        "Нет, не нужно, и больше сюда не звоните.",
        "Если так будет продолжаться, найдём другого поставщика.",
        "Нет уж, такие деньги мы платить не будем, до свидания.",
        "Вы нас подвели, все сроки сорваны.",
        "Так дело не пойдёт.",
        "Мне это надоело, разбирайтесь быстрее.",
        "Какой-то обман, я в это не верю.",
        "Нет, спасибо, нам это не подходит, всего хорошего.",
        "Ужасный сервис, я разочарован.",
        "Не исправите — расторгнем договор.",
        "Отказываемся, нам это не по силам.",
    ),
    # ordinary business talk, including a calmly stated doubt or condition
    "neutral": (
        "Хорошо, пришлите информацию.",
        "Давайте созвонимся на следующей неделе.",
        "Мне нужно посоветоваться с руководителем.",
        "Какие у вас условия?",
        "Понятно, я подумаю.",
        "Да, слушаю вас.",
        "Мы уже работаем с другой фирмой.",
        "Расскажите подробнее.",
        "Сейчас неудобно, наберите позже.",
        "А какой у вас опыт в нашей сфере?",
        "Ладно, присылайте, почитаю.",
        "Да, можно во вторник.",
        "Не знаю, не считали.",
        "Хорошо, интересно.",
        "Когда будет готово, тогда и обсудим.",
        "Нам нужны документы для проверки.",
    ),
    # clear satisfaction, gratitude, delight
    "positive": (
        "Отлично, огромное спасибо!",
        "Замечательно, вы нас очень выручили.",
        "Всё просто супер, нас всё устраивает.",
        "Спасибо, очень довольны вашей работой.",
        "Здорово, это именно то, что нам нужно!",
        "Вы молодцы, всё сделали быстро.",
        "Супер, договорились, ждём с нетерпением.",
        "Как приятно иметь с вами дело, благодарю!",
        "Чудесно, спасибо за оперативность.",
        "Прекрасно, очень рад, что всё получилось.",
    ),
}

_NEGATIVE_CUES = re.compile(
    r"\b(плох\w*|ужас\w*|недовол\w*|возмут\w*|откаж\w*|отказ\w*|расторг\w*|не доверя\w*|обман\w*|"
    r"надоел\w*|безобраз\w*|невозможно|иначе|не потян\w*|сколько можно)\b"
)
_POSITIVE_CUES = re.compile(
    r"\b(отлично|прекрасно|замечательно|спасибо|благодар\w*|выручил\w*|здорово|супер|рад\w*|довольн\w*)\b"
)


class SentimentModel(Protocol):
    name: str

    def turn_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities in ``LABELS`` order."""
        ...

    def call_probabilities(self, texts: Sequence[str]) -> np.ndarray | None:
        """(3,) probabilities for the client's turns read as a whole, or None without a
        whole-call layer."""
        ...


# A long call's turns mostly read neutral one by one, and the mood of many clients is in how the
# whole call goes (a dozen dry, ever shorter answers; warmth spread thin over the call). A layer
# learnt from whole calls (reference.topic_calls: 288 calls written blind, each with the client's
# mood) reads the client's turns as a whole: their mean vector beside that of their second half.
# It only speaks where the turns left the call neutral, in a call of WHOLE_CALL_TURNS turns or more
# (a short call's few turns say it all), and only when sure. Chosen on the dev calls, the
# paraphrase sets and the training calls (each author's read by a layer fitted without them).
WHOLE_CALL_TURNS = 10
WHOLE_CALL_SURE = 0.8
WHOLE_CALL_L2 = 1e-3


def client_vector(x: np.ndarray) -> np.ndarray:
    """The client's turn feature rows as one unit vector: the mean of the unit rows beside the
    mean of the second half's."""
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)
    half = unit[-max(1, round(len(unit) * ENDING_SHARE)) :]
    v = np.concatenate([unit.mean(axis=0), half.mean(axis=0)])
    return np.asarray(v / max(float(np.linalg.norm(v)), 1e-9))


class LearntSentiment:
    """A softmax regression over sentence vectors, fitted at start-up on the reference lines
    (``PROTOTYPES`` and the phrasebook's sentiment lines, a few hundred in all). Nearest-prototype
    scoring read "no, we never measured that" as hostile because of its negations; a learnt layer
    sees that calm "не"s are ordinary talk. Lexical cues only tip a turn the model left
    undecided."""

    L2 = 0.02  # strong: a few hundred lines, and a call's wording is not theirs

    def __init__(self, embedder: Embedder, *more: Embedder, fitted: FittedModels | None = None) -> None:
        self.embedders = [embedder, *more]
        self.name = "softmax/" + "+".join(e.name for e in self.embedders)
        texts: list[str] = []
        labels: list[int] = []
        for j, label in enumerate(LABELS):
            phrases = list(dict.fromkeys([*PROTOTYPES[label], *sentiment_examples(label)]))
            texts += phrases
            labels += [j] * len(phrases)
        y = np.array(labels)
        counts = np.bincount(y, minlength=len(LABELS)).astype(np.float64)
        self._model = (fitted or FittedModels(None)).fit(
            "sentiment",
            texts,
            labels,
            len(LABELS),
            partial(features, self.embedders),
            encoders=self.name,
            class_weights=counts.mean() / counts,
            l2=self.L2,
        )
        self._calls = self._fit_calls(fitted or FittedModels(None))

    def _fit_calls(self, fitted: FittedModels) -> SoftmaxRegression | None:
        """The whole-call layer, fitted on the training calls' client turns (each embedded once and
        kept on disk with the reference lines)."""
        said = [(c.sentiment, [t for s, t in c.turns if s == "client"]) for c in topic_calls()]
        said = [(mood, turns) for mood, turns in said if mood in LABELS and turns]
        if not said:
            return None
        return fitted.fit_groups(
            "sentiment-calls",
            [turns for _, turns in said],
            [LABELS.index(mood) for mood, _ in said],
            len(LABELS),
            partial(features, self.embedders),
            client_vector,
            # the line store the topic layer and the reference lines use: one vector per turn
            encoders="+".join(e.name for e in self.embedders),
            l2=WHOLE_CALL_L2,
        )

    def call_probabilities(self, texts: Sequence[str]) -> np.ndarray | None:
        if self._calls is None or not texts:
            return None
        return np.asarray(self._calls.predict(client_vector(features(self.embedders, texts))[None])[0])

    def turn_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 3), dtype=np.float32)
        out = self._model.predict(features(self.embedders, texts))
        for i, text in enumerate(texts):
            low = " ".join(words(text))
            neg = len(_NEGATIVE_CUES.findall(low))
            positives = _POSITIVE_CUES.findall(low)
            if neg:
                out[i, 0] += CUE_WEIGHT * neg
            # "спасибо, но ..." is politeness, not joy
            if positives and not re.search(r"\bно\b", low) and not neg:
                out[i, 2] += CUE_WEIGHT * len(positives)
        return np.asarray(out / out.sum(axis=1, keepdims=True), dtype=np.float32)


class TransformersSentiment:
    """A Hugging Face sequence classifier; labels are mapped by name (pos/neg/neu, any case)."""

    def __init__(self, model_ref: str, *, device: str = "cpu") -> None:
        from callcoach.pipeline.hf import load_classifier

        self.name = f"hf:{model_ref}"
        self._model, self._tokenizer = load_classifier(model_ref)
        self._order = _label_order(self._model.config.id2label)
        self._device = device

    def turn_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, 3), dtype=np.float32)
        with torch.inference_mode():
            enc = self._tokenizer(
                list(texts), padding=True, truncation=True, max_length=256, return_tensors="pt"
            )
            probs = torch.softmax(self._model(**enc).logits, dim=-1).numpy()
        out = np.zeros((len(texts), 3), dtype=np.float32)
        for src, dst in self._order.items():
            out[:, dst] += probs[:, src]
        return out

    def call_probabilities(self, texts: Sequence[str]) -> np.ndarray | None:
        return None  # a trained sentiment model reads the turns themselves well


def _label_order(id2label: dict[Any, str]) -> dict[int, int]:
    mapping: dict[int, int] = {}
    for idx, label in id2label.items():
        low = str(label).lower()
        if low.startswith("neg"):
            mapping[int(idx)] = 0
        elif low.startswith("pos"):
            mapping[int(idx)] = 2
        else:
            mapping[int(idx)] = 1
    return mapping


# Each cue word adds this to its class before renormalising: it tips a turn the model left
# undecided and cannot overturn a clear one.
CUE_WEIGHT = 0.1

# How a call ends says how it went: a client who objected along the way and ended agreeing to a
# trial is not an unhappy client, one who hangs up with a curt "не передумаем" is. The call's mood
# is read from the mean over the speaker's turns (each weighed by the square root of its length)
# and from the mean over the second half of them. Set on the dev calls (dev01–36) and the
# paraphrase sets (bench/accuracy.py).
ENDING_SHARE = 0.5  # the ending: this share of the speaker's last turns
NEGATIVE_ENDING = 0.5  # the ending reads this hostile on average ...
NEGATIVE_MEAN = 0.5  # ... or the whole call does
POSITIVE_ENDING = 0.3  # the ending is warm ...
POSITIVE_MEAN = 0.2  # ... and the call as a whole is not cold


def _aggregate(probs: np.ndarray, weights: np.ndarray) -> SentimentScore | None:
    if len(probs) == 0:
        return None
    mean = (probs * weights[:, None]).sum(axis=0) / max(float(weights.sum()), 1e-9)
    ending = probs[-max(1, round(len(probs) * ENDING_SHARE)) :].mean(axis=0)
    neg = max(float(ending[0]), float(mean[0]))
    if ending[0] >= NEGATIVE_ENDING or mean[0] >= NEGATIVE_MEAN:
        return SentimentScore(label="negative", score=round(min(1.0, neg), 3))
    if ending[2] >= POSITIVE_ENDING and mean[2] >= POSITIVE_MEAN and ending[2] > ending[0]:
        return SentimentScore(label="positive", score=round(float(min(1.0, ending[2])), 3))
    return SentimentScore(label="neutral", score=round(float(min(1.0, 1 - max(neg, ending[2]) / 2)), 3))


# Objections that are displeasure in themselves: too expensive, unacceptable terms, distrust of
# the vendor, a product that works badly. However politely said, the client is unhappy with
# something of ours, whereas "no time", "not my decision" or "we have a supplier" are
# circumstances. The turn that raised one reads at least this negative.
GRIEVANCES = frozenset({"price", "terms_mismatch", "lack_of_trust", "quality"})
GRIEVANCE_FLOOR = 0.85


def _weigh_objections(
    probs: np.ndarray, segments: Sequence[Segment], objections: Sequence[Objection]
) -> tuple[np.ndarray, set[int]]:
    """A turn that objects is not delight, however warmly put ("thanks, we are happy with our
    supplier" is a refusal): its positive share goes to neutral; a grievance sets a floor under
    its negative share. Also returns the objecting turns: they are the client's words even where
    a mono voice split labelled them otherwise."""
    out = probs.copy()
    turns: set[int] = set()
    for o in objections:
        i = next(
            (
                i
                for i, seg in enumerate(segments)
                if seg.start - 0.05 <= o.start <= seg.end + 0.05 and o.quote[:20] in seg.text
            ),
            None,
        )
        if i is None:
            continue
        turns.add(i)
        out[i, 1] += out[i, 2]
        out[i, 2] = 0.0
        if o.category in GRIEVANCES and out[i, 0] < GRIEVANCE_FLOOR:
            out[i, 1] = 1.0 - GRIEVANCE_FLOOR
            out[i, 0] = GRIEVANCE_FLOOR
    return out, turns


def analyse_sentiment(
    model: SentimentModel, segments: Sequence[Segment], objections: Sequence[Objection] = ()
) -> Sentiment:
    texts = [s.text for s in segments]
    if not texts:
        return Sentiment(overall=SentimentScore(label="neutral", score=1.0))
    probs, objecting = _weigh_objections(model.turn_probabilities(texts), segments, objections)
    weights = np.array([max(1, len(words(t))) ** 0.5 for t in texts], dtype=np.float32)
    speakers = np.array([s.speaker for s in segments])
    by: dict[str, SentimentScore | None] = {}
    for who in ("manager", "client"):
        mask = speakers == who
        by[who] = _aggregate(probs[mask], weights[mask]) if mask.any() else None
    # the client's mood is what the call is judged by; managers are polite by trade
    client_mask = speakers != "manager"
    client_mask[list(objecting)] = True
    overall = _aggregate(probs[client_mask], weights[client_mask]) if client_mask.any() else None
    if overall is None:
        overall = _aggregate(probs, weights)
    assert overall is not None
    if overall.label == "neutral" and len(texts) >= WHOLE_CALL_TURNS and client_mask.any():
        whole = model.call_probabilities([t for t, said in zip(texts, client_mask, strict=True) if said])
        if whole is not None:
            label = LABELS[int(np.argmax(whole))]
            if label != "neutral" and float(np.max(whole)) >= WHOLE_CALL_SURE:
                overall = SentimentScore(label=label, score=round(float(np.max(whole)), 3))
    return Sentiment(overall=overall, manager=by["manager"], client=by["client"])
