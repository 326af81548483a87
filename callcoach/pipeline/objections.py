"""Finding client objections by meaning: nearest-example scoring over sentence embeddings.

Every client sentence (and the whole turn) is compared with each category's example phrases;
a category's score is the mean of its two nearest examples. A sentence becomes an objection when
it is clearly closer to some category than to any "not an objection" example (``margin``) and the
embedders agree which category it is (``probability``). A sentence that is closer to the
objection examples than to ordinary talk, carries a refusal/condition cue, but on which no
category wins becomes a new-category candidate instead of being forced into the nearest one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from callcoach.pipeline.embeddings import Embedder
from callcoach.pipeline.models import Category, NewCategoryCandidate, Objection, Segment
from callcoach.pipeline.textutil import sentences, words

# What clients say that is NOT an objection: answers, agreement, scheduling, thanks, requests.
NEUTRAL_EXAMPLES = (
    "Да, слушаю вас.",
    "Алло, да, это я.",
    "Хорошо, присылайте, гляну.",
    "Давайте в четверг с утра.",
    "Спасибо, всё ясно.",
    "Отлично, договорились.",
    "Скиньте на почту, я покажу коллегам.",
    "Покажите, интересно взглянуть.",
    "Не могу сказать, мы такое не замеряли.",
    "Да, мне это интересно.",
    "Ну ладно, любопытно.",
    "Звучит неплохо, расскажите подробнее.",
    "Подскажите, как это работает?",
    "А когда сможете привезти?",
    "Сколько это будет стоить?",
    "Привезите к десяти утра, пожалуйста.",
    "Да, я заявку на сайте заполнял.",
    "Для нас главное, чтобы всё работало без перебоев.",
    "Нас интересует полный комплект.",
    "Удобно, говорите.",
    "Договор получили, всё в порядке.",
    "Спасибо, вы нам очень помогли.",
    "Записал, жду звонка.",
    "Нам нужно десять рабочих мест.",
    "Да, так и сделаем.",
    "Понятно, буду думать.",
    "Мы работаем в основном с оптовыми клиентами.",
    "Нашёл, получилось.",
    "Всего доброго, до свидания.",
    "Узнайте и наберите меня.",
    "Раз в месяц примерно.",
    "Ну давайте попробуем.",
    "Хорошо, жду информацию.",
)

# What managers typically say; used when speakers are unknown or guessed from one mixed channel,
# so that the manager's own price quote or offer is not read as the client's objection.
MANAGER_EXAMPLES = (
    "Добрый день, меня зовут Ирина, я представляю компанию Стройресурс.",
    "Здравствуйте, вас беспокоит менеджер отдела продаж, можете говорить?",
    "Я составил для вашей компании индивидуальный расчёт.",
    "Годовое обслуживание обойдётся в сто двадцать тысяч.",
    "Хотим предложить вам наш сервис для учёта заказов.",
    "Понимаю ваши сомнения, давайте посчитаем выгоду.",
    "Я согласую с руководителем и вернусь к вам с ответом.",
    "Могу отправить отзывы наших заказчиков.",
    "Когда вам будет удобно созвониться ещё раз?",
    "У нас своя сервисная служба и гарантия три года.",
    "Горячая линия, чем могу быть полезен?",
    "Запуск займёт у нас около десяти дней.",
    "Мы на рынке уже пятнадцать лет, у нас сотни клиентов.",
    "Давайте я вышлю коммерческое предложение на почту.",
    "Какие бумаги вам для этого понадобятся?",
    "Подключим вас за несколько дней.",
    "Передам вопрос нашим техническим специалистам.",
)

_CUES = re.compile(
    r"\b(не|нет|ни|без|никак|нельзя|пока|сначала|только|иначе|но|дорог\w*|сомнева\w*|нужн\w*|долж\w*)\b"
)


@dataclass(frozen=True)
class ObjectionThresholds:
    """Calibrated on the dev calls and the paraphrase set (bench/accuracy.py prints the result)."""

    margin: float = 0.12  # USE: best category minus nearest non-objection example
    probability: float = 0.5  # ensemble probability of the best category to name it
    novel_margin: float = 0.08  # an objection-like sentence that fits no category well enough
    manager_margin: float = 0.05  # unknown speaker: skip sentences closer to manager talk
    unsure_extra: float = 0.06  # extra margin for a turn whose speaker is not known to be the client


@dataclass
class _Prepared:
    categories: list[Category]
    vectors: list[list[np.ndarray]]  # per embedder, per category: example vectors


@dataclass
class UnitScores:
    """Scores of a batch of texts against prepared categories."""

    probability: np.ndarray  # (n, n_categories) ensemble softmax
    margin: np.ndarray  # (n, n_categories) USE similarity minus nearest non-objection
    manager_margin: np.ndarray  # (n,) nearest manager example minus nearest non-objection


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def _softmax(x: np.ndarray, temperature: float) -> np.ndarray:
    z = x / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


class ObjectionClassifier:
    """Scores text against categories with an ensemble of sentence embedders.

    ``embedders`` are ordered (primary, secondary): the primary (USE) separates objections from
    ordinary talk well (wide similarity range); both vote on which category it is.
    """

    # softmax temperatures matched to each encoder's similarity spread
    _TEMPERATURES: ClassVar[dict[str, float]] = {"use-m3": 0.05, "e5-small-q4": 0.01}

    def __init__(self, embedders: Sequence[Embedder], thresholds: ObjectionThresholds | None = None) -> None:
        if not embedders:
            raise ValueError("at least one embedder is needed")
        self.embedders = list(embedders)
        self.thresholds = thresholds or ObjectionThresholds()
        self._neutral = [e.encode(list(NEUTRAL_EXAMPLES)) for e in self.embedders]
        self._manager = [e.encode(list(MANAGER_EXAMPLES)) for e in self.embedders]

    @property
    def name(self) -> str:
        return "+".join(e.name for e in self.embedders)

    def _prepare(self, categories: Sequence[Category]) -> _Prepared:
        vectors: list[list[np.ndarray]] = []
        for e in self.embedders:
            per: list[np.ndarray] = []
            for c in categories:
                phrases = [*c.examples] or [c.name]
                if c.description:
                    phrases.append(c.description)
                per.append(e.encode(phrases))
            vectors.append(per)
        return _Prepared(list(categories), vectors)

    def score(self, texts: Sequence[str], prepared: _Prepared) -> UnitScores:
        n, k = len(texts), len(prepared.categories)
        probability = np.zeros((n, k), dtype=np.float32)
        margin = np.zeros((n, k), dtype=np.float32)
        manager = np.zeros(n, dtype=np.float32)
        for i, e in enumerate(self.embedders):
            v = e.encode(list(texts))
            sims = np.zeros((n, k), dtype=np.float32)
            for j, ex in enumerate(prepared.vectors[i]):
                s = v @ ex.T
                top = min(2, s.shape[1])
                sims[:, j] = np.sort(s, axis=1)[:, -top:].mean(axis=1)
            neutral = (v @ self._neutral[i].T).max(axis=1)
            probability += _softmax(sims, self._TEMPERATURES.get(e.name, 0.03)) / len(self.embedders)
            if i == 0:
                margin = sims - neutral[:, None]
                manager = (v @ self._manager[i].T).max(axis=1) - neutral
        return UnitScores(probability, margin, manager)

    def classify_text(self, text: str, categories: Sequence[Category]) -> list[tuple[Category, float]]:
        """All categories ranked by how well ``text`` matches them (probability-like 0..1)."""
        units = _units(text)
        if not units or not categories:
            return []
        prepared = self._prepare(categories)
        s = self.score(units, prepared)
        # the unit that most reads like an objection speaks for the text
        u = int(np.argmax(s.margin.max(axis=1)))
        gate = _sigmoid((float(s.margin[u].max()) - self.thresholds.margin) / 0.05)
        ranked = sorted(zip(prepared.categories, s.probability[u], strict=True), key=lambda p: -float(p[1]))
        return [(c, round(float(p) * gate, 3)) for c, p in ranked]

    def detect(
        self,
        segments: Sequence[Segment],
        categories: Sequence[Category],
        *,
        speakers_known: bool,
        roles_reliable: bool = True,
    ) -> tuple[list[Objection], list[NewCategoryCandidate]]:
        """``roles_reliable=False`` (mono: roles guessed from voices) also listens to the turns
        labelled manager, skipping sentences that sound like manager talk."""
        t = self.thresholds
        listen = {"client"} if speakers_known and roles_reliable else {"client", "unknown", "manager"}
        objections: list[Objection] = []
        candidates: list[NewCategoryCandidate] = []
        if not categories:
            return objections, candidates
        prepared = self._prepare(categories)
        by_code = {c.code: c for c in categories}
        for index, seg in enumerate(segments):
            if seg.speaker not in listen:
                continue
            units = _units(seg.text)
            if not units:
                continue
            s = self.score(units, prepared)
            found: dict[str, tuple[float, float, str]] = {}
            novel: tuple[float, str, str, float] | None = None
            for u, unit in enumerate(units):
                # unknown speaker: skip what sounds more like the manager than like any objection
                if seg.speaker != "client" and float(s.manager_margin[u]) > max(
                    t.manager_margin, float(s.margin[u].max())
                ):
                    continue
                best = int(np.argmax(s.probability[u]))
                p, m = float(s.probability[u, best]), float(s.margin[u, best])
                # a turn not known to be the client's must read as an objection more clearly
                need = t.margin if seg.speaker == "client" else t.margin + t.unsure_extra
                if m >= need and p >= t.probability:
                    code = prepared.categories[best].code
                    if code not in found or found[code][0] < m:
                        found[code] = (m, p, unit)
                elif m >= t.novel_margin and len(words(unit)) >= 4 and _CUES.search(" ".join(words(unit))):
                    if novel is None or novel[0] < m:
                        novel = (m, unit, prepared.categories[best].code, p)
            for code, (m, p, unit) in sorted(found.items(), key=lambda kv: -kv[1][0])[:2]:
                category = by_code[code]
                reply = _manager_reply(segments, index)
                objections.append(
                    Objection(
                        category=code,
                        category_name=category.name,
                        quote=unit,
                        start=seg.start,
                        end=seg.end,
                        confidence=round(min(1.0, p * _sigmoid((m - t.margin) / 0.05) * 2), 3),
                        recommendation=category.recommendation,
                        handled=_addressed(reply),
                        manager_reply=reply,
                    )
                )
            if not found and novel is not None:
                m, unit, near, p = novel
                candidates.append(
                    NewCategoryCandidate(
                        quote=seg.text,  # the whole turn: a fragment loses what the concern is about
                        start=seg.start,
                        confidence=round(_sigmoid((m - t.novel_margin) / 0.05), 3),
                        nearest_category=near,
                        nearest_score=round(p, 3),
                    )
                )
        return objections, candidates


def _units(text: str) -> list[str]:
    """The sentences of a turn, plus the whole turn when it has several (context helps)."""
    parts = sentences(text)
    if len(parts) > 1:
        parts.append(" ".join(parts))
    return parts


def _manager_reply(segments: Sequence[Segment], index: int) -> str:
    """What the manager said right after the objection (up to the client's next turn)."""
    reply: list[str] = []
    for seg in segments[index + 1 :]:
        if seg.speaker == "manager":
            reply.append(seg.text)
        elif reply or seg.speaker == "client":
            break
    return " ".join(reply)


_CLOSING = re.compile(
    r"^(хорошо|ладно|понятно|ясно|извините|простите)?[ ,.!]*(всего доброго|до свидания|"
    r"извините за беспокойство|спасибо)[ .!]*$"
)
_ENGAGING = re.compile(
    r"\?|\b(давайте|могу|можем|предлага\w*|предлож\w*|пришл\w*|отправ\w*|подготов\w*|уточн\w*|покаж\w*|"
    r"расскаж\w*|посчита\w*|понимаю|согласова\w*|перезвон\w*|гаранти\w*|скидк\w*|у нас|мы работаем)\b"
)


def _addressed(reply: str) -> bool:
    """Did the manager engage with the objection (a question, an offer, facts), not just hang up?"""
    text = " ".join(words(reply))
    if len(text.split()) < 3 or _CLOSING.match(text):
        return False
    return bool(_ENGAGING.search(reply.lower()))
