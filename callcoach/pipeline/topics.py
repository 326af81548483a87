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
        "Хотим предложить вашей компании наш продукт.",
        "Стоимость пакета составит пятьдесят тысяч в месяц.",
        "Выставлю вам счёт, оплатите и начнём.",
        "Можем начать работать уже с понедельника, оформим сделку?",
        "Предлагаю попробовать наш сервис, первый месяц со скидкой.",
        "Оплата частями, поставка после подписания договора.",
        "Звоню вам с выгодным предложением по оборудованию.",
        "Когда сможем запустить пилот и заключить договор?",
    ),
    "support": (
        "Техническая поддержка: как настроить, как добавить пользователя.",
        "Подскажите, где в программе поменять пароль?",
        "Помогите разобраться с настройками.",
        "Откройте меню, выберите раздел и нажмите сохранить.",
        "Не получается войти в личный кабинет, что делать?",
        "Перезагрузите страницу и попробуйте ещё раз.",
    ),
    "consultation": (
        "Клиент задаёт вопросы о продукте, менеджер объясняет, как он решает задачи клиента.",
        "Работали ли вы раньше с компаниями вроде нашей? Какие есть примеры?",
        "Для чего нам это и какую пользу принесёт?",
        "Объясните, как устроено внедрение и что мы получим.",
        "Консультация по возможностям системы.",
        "Расскажу, какие задачи решает наш сервис и чем он поможет вашему бизнесу.",
        "Сколько времени ваши сотрудники тратят на это сейчас?",
    ),
    "complaint": (
        "Клиент жалуется на плохую работу продукта и требует исправить.",
        "У вас опять всё сломалось, мы очень недовольны.",
        "Извините за неудобства, передам проблему инженерам.",
        "Если не почините, мы расторгнем договор.",
        "Претензия по качеству, брак, поломка.",
        "Сколько можно, третий день ничего не работает!",
    ),
    "info_request": (
        "Клиент хочет узнать информацию: часы работы, адрес, наличие, реквизиты.",
        "Подскажите, до скольки вы работаете?",
        "Есть ли у вас это в наличии?",
        "Пришлите, пожалуйста, прайс-лист и реквизиты.",
        "Какой у вас адрес офиса?",
    ),
    "order": (
        "Ваша покупка собрана и скоро поедет к вам.",
        "Оформление и доставка заказа, время доставки.",
        "Привезите в субботу после обеда, пожалуйста.",
        "Водитель наберёт вас перед выездом.",
        "Когда вам удобно принять доставку?",
        "Заказ уже упакован, осталось согласовать время.",
    ),
    "partnership": (
        "Предлагаем стать партнёрами и дилерами, совместный проект.",
        "Партнёрская программа, агентское вознаграждение.",
        "Давайте вместе выйдем на рынок, разделим клиентов.",
        "Хотим стать вашим дистрибьютором в регионе.",
    ),
}

# Most calls a sales team records are sales calls: the manager pitching wins a near tie.
SALES_PRIOR = 0.5  # in standardised score units
MANAGER_WEIGHT = 0.5  # the manager's turns say what the call is for; the client's, how it went
# What the client objected to says something of what the call was: a client asking why he needs
# it or whether the vendor knows his trade is being consulted; a customer reporting faults is
# complaining. A nudge in standardised score units, not a rule: the words still decide.
OBJECTION_HINTS: dict[str, tuple[str, float]] = {
    "unclear_need": ("consultation", 0.6),
    "expertise_doubt": ("consultation", 0.6),
    "quality": ("complaint", 0.6),
}


def apply_hints(labels: list[str], scores: np.ndarray, objections: Sequence[str]) -> np.ndarray:
    out = scores.copy()
    for code in dict.fromkeys(objections):
        label, weight = OBJECTION_HINTS.get(code, ("", 0.0))
        if label in labels:
            out[labels.index(label)] += weight
    return out


class TopicModel(Protocol):
    name: str

    def classify(
        self,
        segments: Sequence[Segment],
        extra: Mapping[str, str | Sequence[str]] | None = None,
        objections: Sequence[str] = (),
    ) -> Topic: ...


def _topics(extra: Mapping[str, str | Sequence[str]] | None) -> dict[str, list[str]]:
    topics = {k: list(v) for k, v in TOPIC_PROTOTYPES.items()}
    for label, desc in (extra or {}).items():
        topics[label] = [desc] if isinstance(desc, str) else list(desc)
    return topics


class PrototypeTopics:
    """Turns against topic prototypes with each encoder; a topic's score is the mean of its three
    best-matching turns over the whole call plus, separately, over the manager's turns."""

    def __init__(self, embedder: Embedder, *more: Embedder) -> None:
        self.embedders = [embedder, *more]
        self.name = "prototypes/" + "+".join(e.name for e in self.embedders)

    def _scores(
        self, e: Embedder, texts: list[str], manager: np.ndarray, topics: dict[str, list[str]]
    ) -> np.ndarray:
        v = e.encode(texts)
        out = []
        for phrases in topics.values():
            per_turn = (v @ e.encode(phrases).T).max(axis=1)
            score = float(np.sort(per_turn)[-3:].mean())
            if manager.any():
                score += MANAGER_WEIGHT * float(np.sort(per_turn[manager])[-2:].mean())
            out.append(score)
        arr = np.array(out)
        return (arr - arr.mean()) / (arr.std() + 1e-6)  # encoders differ in similarity spread

    def classify(
        self,
        segments: Sequence[Segment],
        extra: Mapping[str, str | Sequence[str]] | None = None,
        objections: Sequence[str] = (),
    ) -> Topic:
        turns = [s for s in segments if s.text.strip()]
        if not turns:
            return Topic(label="unknown", score=0.0)
        texts = [s.text for s in turns]
        manager = np.array([s.speaker == "manager" for s in turns])
        topics = _topics(extra)
        arr = np.mean([self._scores(e, texts, manager, topics) for e in self.embedders], axis=0)
        labels = list(topics)
        if "sales" in labels and manager.any():
            arr[labels.index("sales")] += SALES_PRIOR
        arr = apply_hints(labels, arr, objections)
        probs = np.exp((arr - arr.max()) / 0.3)
        probs /= probs.sum()
        best = int(np.argmax(arr))
        return Topic(label=labels[best], score=round(float(probs[best]), 3))


class ZeroShotTopics:
    """XNLI zero-shot: "Этот разговор про {description}." scored by entailment."""

    def __init__(self, model_ref: str) -> None:
        from callcoach.pipeline.hf import load_classifier

        self.name = f"hf:{model_ref}"
        self._model, self._tokenizer = load_classifier(model_ref)
        labels = {str(v).lower(): int(k) for k, v in self._model.config.id2label.items()}
        self._entail = next((i for name, i in labels.items() if name.startswith("entail")), 0)
        self._contra = next((i for name, i in labels.items() if name.startswith("contra")), len(labels) - 1)

    def classify(
        self,
        segments: Sequence[Segment],
        extra: Mapping[str, str | Sequence[str]] | None = None,
        objections: Sequence[str] = (),
    ) -> Topic:
        import torch

        text = " ".join(s.text for s in segments)[:2000]
        if not text.strip():
            return Topic(label="unknown", score=0.0)
        topics = _topics(extra)
        hypotheses = [f"Этот разговор про: {phrases[0]}" for phrases in topics.values()]
        with torch.inference_mode():
            enc = self._tokenizer(
                [text] * len(hypotheses),
                hypotheses,
                padding=True,
                truncation=True,
                max_length=512,
                return_tensors="pt",
            )
            logits = self._model(**enc).logits
            pair = logits[:, [self._contra, self._entail]]
            entail = torch.softmax(pair, dim=-1)[:, 1]
        probs = torch.softmax(torch.log(entail + 1e-9), dim=0).numpy()
        best = int(np.argmax(apply_hints(list(topics), np.log(probs + 1e-9), objections)))
        return Topic(label=list(topics)[best], score=round(float(probs[best]), 3))
