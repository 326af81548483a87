"""Typed records passed between the pipeline's stages and out of it.

``Findings`` is what one analysed recording yields; it is stored as JSON, so it carries a
schema version and only grows fields with defaults.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

FINDINGS_VERSION = 1

Speaker = Literal["manager", "client", "unknown"]
SentimentLabel = Literal["positive", "neutral", "negative"]
STANDARD_TOPICS = ("sales", "support", "consultation", "complaint", "info_request", "order", "partnership")


class Word(BaseModel):
    start: float
    end: float
    text: str
    probability: float = 1.0


class Segment(BaseModel):
    speaker: Speaker
    start: float
    end: float
    text: str
    words: list[Word] = Field(default_factory=list, exclude=True)


class Category(BaseModel):
    """An objection category: one of the ten standard ones or a custom one."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,48}$")
    name: str
    description: str = ""
    examples: list[str] = Field(default_factory=list)
    recommendation: str = ""
    standard: bool = False


class Objection(BaseModel):
    category: str  # a Category.code
    category_name: str = ""
    quote: str
    start: float
    end: float = 0.0
    confidence: float = Field(ge=0.0, le=1.0)
    recommendation: str = ""
    handled: bool = False
    manager_reply: str = ""


class NewCategoryCandidate(BaseModel):
    """A client objection that fits no known category; kept so that similar ones can be grouped."""

    quote: str
    start: float
    confidence: float = Field(ge=0.0, le=1.0)
    nearest_category: str | None = None
    nearest_score: float = 0.0


class SentimentScore(BaseModel):
    label: SentimentLabel
    score: float = Field(ge=0.0, le=1.0)


class Sentiment(BaseModel):
    overall: SentimentScore
    manager: SentimentScore | None = None
    client: SentimentScore | None = None


class Topic(BaseModel):
    label: str
    score: float = Field(ge=0.0, le=1.0)


class ConversationStats(BaseModel):
    duration: float = 0.0
    manager_talk_s: float = 0.0
    client_talk_s: float = 0.0
    talk_ratio: float = 0.0  # manager share of speech, 0..1
    longest_monologue_s: float = 0.0
    longest_monologue_speaker: Speaker | None = None
    interruptions: int = 0
    silence_share: float = 0.0
    manager_questions: int = 0


class Findings(BaseModel):
    version: int = FINDINGS_VERSION
    file: str = ""
    duration: float = 0.0
    language: str = "ru"
    channels: Literal["stereo", "mono"] = "mono"
    speakers_known: bool = True
    segments: list[Segment] = Field(default_factory=list)
    objections: list[Objection] = Field(default_factory=list)
    new_category_candidates: list[NewCategoryCandidate] = Field(default_factory=list)
    sentiment: Sentiment
    topic: Topic
    stats: ConversationStats = Field(default_factory=ConversationStats)
    summary: str = ""
    models: dict[str, str] = Field(default_factory=dict)  # stage -> model used, for the cache key

    @property
    def transcript(self) -> str:
        return "\n".join(f"{s.speaker}: {s.text}" for s in self.segments)


class ProposedCategory(BaseModel):
    """A group of similar unmatched objections offered to a person as a new category."""

    name: str
    code: str
    examples: list[str]
    size: int
