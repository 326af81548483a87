"""Sentiment per speaker and overall.

Offline (default): each turn is compared with positive / negative / neutral prototype phrases
(sentence embeddings) and a small cue lexicon nudges the result. With
``settings.sentiment_model`` set, a Hugging Face text classifier (e.g.
sismetanin/rubert-ru-sentiment-rureviews) is loaded from a local path or the local HF cache —
never downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from callcoach.pipeline.embeddings import Embedder
from callcoach.pipeline.models import Segment, Sentiment, SentimentLabel, SentimentScore
from callcoach.pipeline.textutil import words

LABELS: tuple[SentimentLabel, ...] = ("negative", "neutral", "positive")

PROTOTYPES: dict[SentimentLabel, tuple[str, ...]] = {
    "negative": (
        "Это возмутительно, я очень недоволен.",
        "Нас это совершенно не устраивает.",
        "Мы откажемся от ваших услуг.",
        "Я вам не доверяю.",
        "Всё постоянно ломается, работать невозможно.",
        "Нет, нам это не нужно, не звоните больше.",
        "Иначе мы уйдём к другому поставщику.",
        "Это слишком дорого, мы не будем платить.",
        "Вы нас подвели, сроки сорваны.",
        "Так дело не пойдёт.",
    ),
    "neutral": (
        "Хорошо, пришлите информацию.",
        "Давайте созвонимся на следующей неделе.",
        "Мне нужно посоветоваться.",
        "Какие у вас условия?",
        "Понятно, я подумаю.",
        "Да, слушаю вас.",
        "У нас уже есть поставщик.",
        "Расскажите подробнее.",
    ),
    "positive": (
        "Отлично, спасибо большое!",
        "Прекрасно, вы нас очень выручили.",
        "Замечательно, всё устраивает.",
        "Спасибо, очень довольны вашей работой.",
        "Здорово, нам это подходит.",
        "Вы молодцы, всё быстро сделали.",
        "Супер, договорились, ждём.",
    ),
}

_NEGATIVE_CUES = re.compile(
    r"\b(плох\w*|ужас\w*|недовол\w*|возмут\w*|откаж\w*|отказ\w*|зависа\w*|слома\w*|не доверя\w*|"
    r"обман\w*|исчезн\w*|пропад\w*|не подход\w*|не устраива\w*|не сможем|невозможно|иначе|"
    r"не готовы|не потян\w*|дорого)\b"
)
_POSITIVE_CUES = re.compile(
    r"\b(отлично|прекрасно|замечательно|спасибо|благодар\w*|выручил\w*|здорово|супер|рад\w*|довольн\w*)\b"
)


class SentimentModel(Protocol):
    name: str

    def turn_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities in ``LABELS`` order."""
        ...


class PrototypeSentiment:
    name = "prototypes"

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.name = f"prototypes/{embedder.name}"
        self._protos = [embedder.encode(list(PROTOTYPES[label])) for label in LABELS]

    def turn_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 3), dtype=np.float32)
        v = self.embedder.encode(list(texts))
        sims = np.stack([np.sort(v @ p.T, axis=1)[:, -2:].mean(axis=1) for p in self._protos], axis=1)
        for i, text in enumerate(texts):
            low = " ".join(words(text))
            sims[i, 0] += 0.08 * len(_NEGATIVE_CUES.findall(low))
            positives = _POSITIVE_CUES.findall(low)
            # "спасибо, но ..." is politeness, not joy
            if positives and not re.search(r"\bно\b", low):
                sims[i, 2] += 0.06 * len(positives)
        z = (sims - sims.max(axis=1, keepdims=True)) / 0.05
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float32)


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
            enc = self._tokenizer(list(texts), padding=True, truncation=True, max_length=256, return_tensors="pt")
            probs = torch.softmax(self._model(**enc).logits, dim=-1).numpy()
        out = np.zeros((len(texts), 3), dtype=np.float32)
        for src, dst in self._order.items():
            out[:, dst] += probs[:, src]
        return out


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


def _aggregate(probs: np.ndarray, weights: np.ndarray) -> SentimentScore | None:
    if len(probs) == 0:
        return None
    mean = (probs * weights[:, None]).sum(axis=0) / max(float(weights.sum()), 1e-9)
    # one clearly hostile or delighted turn colours the whole call
    peak_neg, peak_pos = float(probs[:, 0].max()), float(probs[:, 2].max())
    score = np.array([max(mean[0], 0.8 * peak_neg), mean[1], max(mean[2], 0.8 * peak_pos)])
    if score[0] >= 0.5 and score[0] >= score[2]:
        idx = 0
    elif score[2] >= 0.5 and score[2] > score[0]:
        idx = 2
    else:
        idx = 1
    return SentimentScore(label=LABELS[idx], score=round(float(min(1.0, score[idx] if idx != 1 else 1 - max(score[0], score[2]) / 2)), 3))


def analyse_sentiment(model: SentimentModel, segments: Sequence[Segment]) -> Sentiment:
    texts = [s.text for s in segments]
    if not texts:
        return Sentiment(overall=SentimentScore(label="neutral", score=1.0))
    probs = model.turn_probabilities(texts)
    weights = np.array([max(1, len(words(t))) ** 0.5 for t in texts], dtype=np.float32)
    speakers = np.array([s.speaker for s in segments])
    by: dict[str, SentimentScore | None] = {}
    for who in ("manager", "client"):
        mask = speakers == who
        by[who] = _aggregate(probs[mask], weights[mask]) if mask.any() else None
    # the client's mood is what the call is judged by; managers are polite by trade
    client_mask = speakers != "manager"
    overall = _aggregate(probs[client_mask], weights[client_mask]) if client_mask.any() else None
    if overall is None:
        overall = _aggregate(probs, weights)
    assert overall is not None
    return Sentiment(overall=overall, manager=by["manager"], client=by["client"])
