"""The text stage: segments -> Findings. Callable without audio (tests, paraphrase evaluation)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from callcoach.config import Settings
from callcoach.pipeline.categories import merge_categories
from callcoach.pipeline.embeddings import Embedder, UseEmbedder
from callcoach.pipeline.linear import FittedModels, SoftmaxRegression
from callcoach.pipeline.models import Category, Findings, Segment
from callcoach.pipeline.objections import ObjectionClassifier, _units
from callcoach.pipeline.phrasebook import client_lines, manager_lines
from callcoach.pipeline.sentiment import (
    LearntSentiment,
    SentimentModel,
    TransformersSentiment,
    analyse_sentiment,
)
from callcoach.pipeline.stats import conversation_stats
from callcoach.pipeline.summary import template_summary
from callcoach.pipeline.topics import LearntTopics, TopicModel, ZeroShotTopics
from callcoach.pipeline.tuned_e5 import TunedE5Embedder

log = logging.getLogger(__name__)

Summarizer = Callable[[Findings], "str | None"]


class TextAnalyzer:
    """Owns the text models (embedders, classifiers); build once per process."""

    def __init__(
        self, settings: Settings | None = None, *, embedders: Sequence[Embedder] | None = None
    ) -> None:
        settings = settings or Settings()
        self.embedders: list[Embedder] = list(embedders) if embedders else [UseEmbedder(), TunedE5Embedder()]
        # fitted models are kept under the data dir: a restart skips embedding the reference lines
        fitted = FittedModels(settings.data_dir / "models")
        self.objections = ObjectionClassifier(self.embedders, fitted=fitted)
        self.sentiment: SentimentModel = (
            TransformersSentiment(settings.sentiment_model)
            if settings.sentiment_model
            else LearntSentiment(*self.embedders, fitted=fitted)
        )
        self.topics: TopicModel = (
            ZeroShotTopics(settings.topic_model)
            if settings.topic_model
            else LearntTopics(*self.embedders, fitted=fitted)
        )
        self._role = self._fit_role_model(fitted)

    @property
    def versions(self) -> dict[str, str]:
        return {
            "objections": self.objections.name,
            "sentiment": self.sentiment.name,
            "topic": self.topics.name,
        }

    def _fit_role_model(self, fitted: FittedModels) -> SoftmaxRegression:
        """Manager-vs-client on the reference lines: client lines and every way of voicing an
        objection on one side, manager lines on the other."""
        client = [*client_lines(), *(e for c in merge_categories(None) for e in c.examples)]
        manager = list(manager_lines())
        labels = [0] * len(client) + [1] * len(manager)
        weights = np.array([1.0 / len(client), 1.0 / len(manager)])
        return fitted.fit(
            "roles",
            [*client, *manager],
            labels,
            2,
            self.objections.features,
            encoders=self.objections.name,
            class_weights=weights,
        )

    def manager_score(self, texts: Sequence[str]) -> list[float]:
        """How salesperson-like each text is, 0..1 (names the two voices of a mono call): the mean
        over its sentences of the role model."""
        out = []
        for text in texts:
            units = _units(text)
            if not units:
                out.append(0.5)
                continue
            out.append(float(self._role.predict(self.objections.features(units))[:, 1].mean()))
        return out

    def classify_text(
        self, text: str, categories: Sequence[Category] | None = None
    ) -> list[tuple[Category, float]]:
        return self.objections.classify_text(text, merge_categories(categories))

    def analyze_transcript(
        self,
        segments: Sequence[Segment],
        categories: Sequence[Category] | None = None,
        *,
        duration: float | None = None,
        speakers_known: bool | None = None,
        topics: Mapping[str, str | Sequence[str]] | None = None,
        summarize: Summarizer | None = None,
        file: str = "",
        channels: str = "mono",
        roles_reliable: bool = True,
    ) -> Findings:
        """``roles_reliable=False``: speaker labels were guessed (mono voice clustering), so an
        objection is also looked for in turns labelled manager."""
        segments = [s for s in segments if s.text.strip()]
        if speakers_known is None:
            speakers_known = any(s.speaker != "unknown" for s in segments)
        if duration is None:
            duration = max((s.end for s in segments), default=0.0)
        cats = merge_categories(categories)
        objections, candidates = self.objections.detect(
            segments, cats, speakers_known=speakers_known, roles_reliable=roles_reliable
        )
        findings = Findings(
            file=file,
            duration=round(duration, 2),
            channels="stereo" if channels == "stereo" else "mono",
            speakers_known=speakers_known,
            segments=list(segments),
            objections=objections,
            new_category_candidates=candidates,
            sentiment=analyse_sentiment(self.sentiment, segments, objections),
            topic=self.topics.classify(
                segments, topics, [o.category for o in objections] + ["novel"] * bool(candidates)
            ),
            stats=conversation_stats(segments, duration),
            models=dict(self.versions),
        )
        findings.summary = template_summary(findings)
        if summarize is not None:
            try:
                custom = summarize(findings)
            except Exception:  # an LLM outage must not lose the analysis; the template stays
                log.warning("summarize hook failed; keeping the template summary", exc_info=True)
                custom = None
            if custom and custom.strip():
                findings.summary = custom.strip()
        return findings
