"""Call statistics for the bot: period words, aggregation over analysed jobs, the BB-code text."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from callcoach.storage import Job
from callcoach.texts import bb_escape, sentiment_name

PERIOD_WORDS = {
    "today": "today",
    "сегодня": "today",
    "день": "today",
    "week": "week",
    "неделя": "week",
    "неделю": "week",
    "month": "month",
    "месяц": "month",
}
PERIOD_RU = {"today": "сегодня", "week": "за 7 дней", "month": "за 30 дней"}


@dataclass(frozen=True)
class Period:
    code: str
    since: float
    until: float

    @property
    def label(self) -> str:
        return PERIOD_RU[self.code]


def period_of(code: str, now: datetime) -> Period:
    if code == "today":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        start = now - timedelta(days=7 if code == "week" else 30)
    return Period(code, start.timestamp(), now.timestamp() + 1)


@dataclass(frozen=True)
class StatsQuery:
    period: str = "week"
    manager: str = ""  # what followed '@' (a name, a last name or an id), '' = none
    unknown: tuple[str, ...] = ()


def parse_stats_args(params: str) -> StatsQuery:
    """``[today|week|month|сегодня|неделя|месяц] [@manager]`` in any order."""
    import re

    period = "week"
    manager = ""
    unknown: list[str] = []
    # A mention from the messenger arrives as [USER=5]Имя Фамилия[/USER].
    mention = re.search(r"\[user=(\d+)\][^\[]*\[/user\]", params, re.I)
    if mention:
        manager = mention.group(1)
        params = params.replace(mention.group(0), " ")
    words = params.split()
    i = 0
    while i < len(words):
        word = words[i]
        low = word.lower()
        if low in PERIOD_WORDS:
            period = PERIOD_WORDS[low]
        elif word.startswith("@"):
            # '@Иван Петров': take the next word too when it is not a period word
            manager = word[1:]
            if (
                i + 1 < len(words)
                and words[i + 1].lower() not in PERIOD_WORDS
                and not words[i + 1].startswith("@")
            ):
                manager += " " + words[i + 1]
                i += 1
        elif word.isdigit() and not manager:
            manager = word
        else:
            unknown.append(word)
        i += 1
    return StatsQuery(period, manager.strip(), tuple(unknown))


@dataclass
class CallStats:
    calls: int = 0
    objections: Counter[str] = field(default_factory=Counter)
    handled: int = 0
    total_objections: int = 0
    sentiment: Counter[str] = field(default_factory=Counter)
    names: dict[str, str] = field(default_factory=dict)  # category code -> name
    duration: float = 0.0

    @property
    def handled_share(self) -> float | None:
        return self.handled / self.total_objections if self.total_objections else None


def compute_stats(jobs: list[Job]) -> CallStats:
    stats = CallStats()
    for job in jobs:
        findings: dict[str, Any] = job.findings or {}
        if not findings:
            continue
        stats.calls += 1
        stats.duration += float(findings.get("duration") or 0.0)
        for obj in findings.get("objections") or []:
            code = str(obj.get("category") or "?")
            stats.objections[code] += 1
            stats.names.setdefault(code, str(obj.get("category_name") or code))
            stats.total_objections += 1
            stats.handled += 1 if obj.get("handled") else 0
        label = ((findings.get("sentiment") or {}).get("overall") or {}).get("label")
        if label:
            stats.sentiment[str(label)] += 1
    return stats


def render_stats(stats: CallStats, *, title: str) -> str:
    lines = [f"[b]{bb_escape(title)}[/b]"]
    if not stats.calls:
        lines.append("Проанализированных звонков нет.")
        return "\n".join(lines)
    lines.append(
        f"Звонков проанализировано: [b]{stats.calls}[/b] · {round(stats.duration / 60)} мин разговоров"
    )
    if stats.total_objections:
        share = round((stats.handled_share or 0.0) * 100)
        lines.append(f"Возражений: [b]{stats.total_objections}[/b], отработано: [b]{share}%[/b]")
        lines.append("[b]Возражения по категориям:[/b]")
        for code, count in stats.objections.most_common():
            lines.append(f"• {bb_escape(stats.names.get(code, code))}: {count}")
    else:
        lines.append("Возражений не найдено.")
    if stats.sentiment:
        tone = ", ".join(
            f"{sentiment_name(label)} {round(n * 100 / stats.calls)}%"
            for label, n in stats.sentiment.most_common()
        )
        lines.append(f"Тон разговоров: {tone}")
    return "\n".join(lines)


def per_manager(jobs: list[Job]) -> dict[int, list[Job]]:
    out: dict[int, list[Job]] = {}
    for job in jobs:
        if job.manager_id is not None:
            out.setdefault(job.manager_id, []).append(job)
    return out
