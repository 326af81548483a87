"""Call topic: offline by embedding prototypes of topic descriptions, or an XNLI zero-shot model.

Custom topics are accepted as extra ``{label: description or [phrases]}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from callcoach.pipeline.embeddings import Embedder
from callcoach.pipeline.models import Segment, Topic

TOPIC_PROTOTYPES: dict[str, tuple[str, ...]] = {
    "sales": (
        "Менеджер предлагает купить продукт и называет цену.",
        "Коммерческое предложение, стоимость, скидка, договор, счёт.",
        "Предлагаем начать сотрудничество и подписать договор.",
        "Мы хотим предложить вам нашу услугу.",
        "Условия оплаты и поставки по договору.",
        "Готовы подписать договор на поставку?",
    ),
    "support": (
        "Техническая поддержка: как настроить, как добавить пользователя.",
        "Подскажите, как это сделать в программе?",
        "Помогите разобраться с настройками.",
        "Служба поддержки, слушаю вас.",
    ),
    "consultation": (
        "Клиент задаёт вопросы о продукте, менеджер объясняет, как он решает задачи клиента.",
        "А у вас есть опыт в нашей отрасли? Покажите кейсы.",
        "Зачем это нам и какую задачу это решает?",
        "Расскажите, как проходит внедрение и что оно даст.",
        "Консультация по возможностям системы.",
    ),
    "complaint": (
        "Клиент жалуется на плохую работу продукта и требует исправить.",
        "Ваша программа не работает, мы недовольны.",
        "Приношу извинения, передам проблему специалистам.",
        "Если не исправите, мы откажемся.",
        "Претензия по качеству, брак, поломка.",
    ),
    "info_request": (
        "Клиент хочет узнать информацию: часы работы, адрес, наличие, реквизиты.",
        "Подскажите, до скольки вы работаете?",
        "Есть ли у вас это в наличии?",
        "Пришлите, пожалуйста, прайс-лист и реквизиты.",
    ),
    "order": (
        "Ваш заказ готов к отправке, доставка курьером.",
        "Оформление и доставка заказа, время доставки.",
        "Привезите, пожалуйста, завтра до обеда.",
        "Курьер позвонит за час до приезда.",
    ),
    "partnership": (
        "Предлагаем стать партнёрами и дилерами, совместный проект.",
        "Партнёрская программа, агентское вознаграждение.",
        "Давайте вместе выйдем на рынок, разделим клиентов.",
    ),
}


class TopicModel(Protocol):
    name: str

    def classify(self, segments: Sequence[Segment], extra: Mapping[str, str | Sequence[str]] | None = None) -> Topic:
        ...


def _topics(extra: Mapping[str, str | Sequence[str]] | None) -> dict[str, list[str]]:
    topics = {k: list(v) for k, v in TOPIC_PROTOTYPES.items()}
    for label, desc in (extra or {}).items():
        topics[label] = [desc] if isinstance(desc, str) else list(desc)
    return topics


class PrototypeTopics:
    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.name = f"prototypes/{embedder.name}"

    def classify(self, segments: Sequence[Segment], extra: Mapping[str, str | Sequence[str]] | None = None) -> Topic:
        texts = [s.text for s in segments if s.text.strip()]
        if not texts:
            return Topic(label="unknown", score=0.0)
        topics = _topics(extra)
        v = self.embedder.encode(texts)
        scores = []
        for phrases in topics.values():
            per_turn = (v @ self.embedder.encode(phrases).T).max(axis=1)
            top = np.sort(per_turn)[-3:]
            scores.append(float(top.mean()))
        arr = np.array(scores)
        probs = np.exp((arr - arr.max()) / 0.03)
        probs /= probs.sum()
        best = int(np.argmax(arr))
        return Topic(label=list(topics)[best], score=round(float(probs[best]), 3))


class ZeroShotTopics:
    """XNLI zero-shot: "Этот разговор про {description}." scored by entailment."""

    def __init__(self, model_ref: str) -> None:
        from callcoach.pipeline.hf import load_classifier

        self.name = f"hf:{model_ref}"
        self._model, self._tokenizer = load_classifier(model_ref)
        labels = {str(v).lower(): int(k) for k, v in self._model.config.id2label.items()}
        self._entail = next((i for name, i in labels.items() if name.startswith("entail")), 0)
        self._contra = next((i for name, i in labels.items() if name.startswith("contra")), len(labels) - 1)

    def classify(self, segments: Sequence[Segment], extra: Mapping[str, str | Sequence[str]] | None = None) -> Topic:
        import torch

        text = " ".join(s.text for s in segments)[:2000]
        if not text.strip():
            return Topic(label="unknown", score=0.0)
        topics = _topics(extra)
        hypotheses = [f"Этот разговор про: {phrases[0]}" for phrases in topics.values()]
        with torch.inference_mode():
            enc = self._tokenizer([text] * len(hypotheses), hypotheses, padding=True, truncation=True,
                                  max_length=512, return_tensors="pt")
            logits = self._model(**enc).logits
            pair = logits[:, [self._contra, self._entail]]
            entail = torch.softmax(pair, dim=-1)[:, 1]
        probs = torch.softmax(torch.log(entail + 1e-9), dim=0).numpy()
        best = int(np.argmax(probs))
        return Topic(label=list(topics)[best], score=round(float(probs[best]), 3))
