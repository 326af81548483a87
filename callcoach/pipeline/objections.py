"""Finding client objections by meaning: a small learnt layer over sentence embeddings.

Every sentence of a turn (and the whole turn) is embedded with each encoder; a softmax
regression fitted on reference phrases (each category's examples, and ordinary client and
manager lines as "not an objection") gives, per sentence, the probability of each category and
of "none". A turn voices an objection when some sentence is unlikely to be ordinary talk; which
category it is comes from the evidence summed over the turn's sentences, so a short generic
"that doesn't suit us" does not outvote the sentence that says what does not suit.

A call turns on its first clear objection: later turns that only echo or follow it up ("check
and call me back, otherwise it won't work") are weaker and are not reported as objections of
their own unless they are as clear as an objection can be. The model also knows a class of
reference objections that lie outside every category (compliance reviews, procurement rules,
freezes): an objection it explains about as well as the best category becomes a new-category
candidate instead of being forced into the nearest one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from callcoach.pipeline.embeddings import Embedder, features
from callcoach.pipeline.linear import FittedModels, RecentModels, SoftmaxRegression
from callcoach.pipeline.models import Category, NewCategoryCandidate, Objection, Segment
from callcoach.pipeline.phrasebook import client_lines, extra_examples, manager_lines, other_objections
from callcoach.pipeline.textutil import sentences, words


@dataclass(frozen=True)
class ObjectionThresholds:
    """Set on the dev calls and one paraphrase set, checked on another (bench/accuracy.py)."""

    objection: float = 0.5  # P(ordinary talk) of the turn's most objection-like sentence below this
    second: float = 0.1  # a further objection in the same call must be this clear
    earlier_slack: float = 0.15  # an earlier turn nearly as clear as the clearest is the call's objection
    # an objection the "outside every category" references explain about as well as the best
    # category does is a new-category candidate, not a forced fit
    other_slack: float = 0.05
    unsure_extra: float = 0.1  # a turn not known to be the client's must be this much clearer


@dataclass
class _Model:
    categories: list[Category]
    regression: SoftmaxRegression

    @property
    def other(self) -> int:
        """The class of objections outside every known category."""
        return len(self.categories)

    @property
    def none(self) -> int:
        """The class of ordinary talk."""
        return len(self.categories) + 1


@dataclass
class _Turn:
    index: int
    segment: Segment
    units: list[str]
    probs: np.ndarray  # (units, categories + 1)
    p_none: float
    share: np.ndarray  # (categories + other,) evidence share per class, sums to 1


class ObjectionClassifier:
    """Scores client turns against objection categories; build once per process.

    The learnt layer is refitted when a portal's category set differs from the last ones seen
    (a handful are kept), which takes a fraction of a second.
    """

    CACHE = 8

    def __init__(
        self,
        embedders: Sequence[Embedder],
        thresholds: ObjectionThresholds | None = None,
        *,
        fitted: FittedModels | None = None,
    ) -> None:
        if not embedders:
            raise ValueError("at least one embedder is needed")
        self.embedders = list(embedders)
        self.thresholds = thresholds or ObjectionThresholds()
        self._fitted = fitted or FittedModels(None)
        self._ordinary = list(dict.fromkeys(client_lines() + manager_lines()))
        self._recent: RecentModels[_Model] = RecentModels(self.CACHE)

    @property
    def name(self) -> str:
        return "softmax/" + "+".join(e.name for e in self.embedders)

    def features(self, texts: Sequence[str]) -> np.ndarray:
        return features(self.embedders, texts)

    def _model(self, categories: Sequence[Category]) -> _Model:
        key = repr([(c.code, c.name, c.description, c.examples) for c in categories])
        return self._recent.get(key, lambda: self._fit(categories))

    def _fit(self, categories: Sequence[Category]) -> _Model:
        texts: list[str] = []
        labels: list[int] = []
        for j, c in enumerate(categories):
            phrases = list(dict.fromkeys([*c.examples, *extra_examples(c.code)])) or [c.name]
            if c.description:
                phrases.append(c.description)
            texts += phrases
            labels += [j] * len(phrases)
        other = [x for x in other_objections() if x not in texts]
        texts += other
        labels += [len(categories)] * len(other)
        texts += self._ordinary
        labels += [len(categories) + 1] * len(self._ordinary)
        y = np.array(labels)
        n = len(categories) + 2
        # every category (and "other") weighs as much as an average one, however many phrases it
        # has; the ordinary-talk class keeps its full weight (it is most of what a call is)
        counts = np.bincount(y, minlength=n).astype(np.float64)
        weights = np.append(counts[:-1].mean() / np.maximum(counts[:-1], 1.0), 1.0)
        regression = self._fitted.fit(
            "objections", texts, labels, n, self.features, encoders=self.name, class_weights=weights
        )
        return _Model(list(categories), regression)

    def _turn(self, model: _Model, index: int, segment: Segment) -> _Turn | None:
        units = _units(segment.text)
        if not units:
            return None
        probs = model.regression.predict(self.features(units))
        evidence = probs[:, : model.none].sum(axis=0)
        return _Turn(
            index=index,
            segment=segment,
            units=units,
            probs=probs,
            p_none=float(probs[:, model.none].min()),
            share=evidence / max(float(evidence.sum()), 1e-9),
        )

    def classify_text(self, text: str, categories: Sequence[Category]) -> list[tuple[Category, float]]:
        """All categories ranked by how well ``text`` matches them (probability-like 0..1)."""
        if not categories or not _units(text):
            return []
        model = self._model(categories)
        turn = self._turn(model, 0, Segment(speaker="client", start=0.0, end=0.0, text=text))
        assert turn is not None
        gate = 1.0 - turn.p_none
        ranked = sorted(
            zip(model.categories, turn.share[: model.other], strict=True), key=lambda p: -float(p[1])
        )
        return [(c, round(float(share) * gate, 3)) for c, share in ranked]

    def detect(
        self,
        segments: Sequence[Segment],
        categories: Sequence[Category],
        *,
        speakers_known: bool,
        roles_reliable: bool = True,
    ) -> tuple[list[Objection], list[NewCategoryCandidate]]:
        """``roles_reliable=False`` (mono: roles guessed from voices) also listens to the turns
        labelled manager; a turn not known to be the client's must read as an objection more
        clearly, and manager talk is "ordinary" to the model anyway."""
        t = self.thresholds
        if not categories:
            return [], []
        listen = {"client"} if speakers_known and roles_reliable else {"client", "unknown", "manager"}
        model = self._model(categories)
        turns: list[_Turn] = []
        for index, seg in enumerate(segments):
            if seg.speaker not in listen:
                continue
            turn = self._turn(model, index, seg)
            need = t.objection if seg.speaker == "client" else t.objection - t.unsure_extra
            if turn is not None and turn.p_none < need:
                turns.append(turn)
        if not turns:
            return [], []
        clearest = min(x.p_none for x in turns)
        lead = next(x for x in turns if x.p_none <= clearest + t.earlier_slack)
        chosen = [lead, *(x for x in turns if x is not lead and x.p_none < t.second)]
        objections: list[Objection] = []
        candidates: list[NewCategoryCandidate] = []
        for turn in sorted(chosen, key=lambda x: x.index):
            nearest = int(np.argmax(turn.share[: model.other]))
            share = float(turn.share[nearest])
            confidence = round(min(1.0, 1.0 - turn.p_none), 3)
            if float(turn.share[model.other]) + t.other_slack >= share:
                candidates.append(
                    NewCategoryCandidate(
                        quote=turn.segment.text,  # the whole turn: a fragment loses what it is about
                        start=turn.segment.start,
                        confidence=confidence,
                        nearest_category=model.categories[nearest].code,
                        nearest_score=round(share, 3),
                    )
                )
                continue
            category = model.categories[nearest]
            if any(o.category == category.code for o in objections):
                continue
            reply = _manager_reply(segments, turn.index)
            objections.append(
                Objection(
                    category=category.code,
                    category_name=category.name,
                    quote=turn.units[int(np.argmax(turn.probs[:, nearest]))],
                    start=turn.segment.start,
                    end=turn.segment.end,
                    confidence=round(confidence * min(1.0, 2.0 * share), 3),
                    recommendation=category.recommendation,
                    handled=_addressed(reply),
                    manager_reply=reply,
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
