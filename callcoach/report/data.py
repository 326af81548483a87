"""The report's input records and every aggregate the report shows, computed by one pure function.

The page's JavaScript recomputes the same aggregates from ``ReportData.calls`` when a person
filters; ``filter_input`` holds the same filter rules in Python so that tests can compare.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from callcoach import texts
from callcoach.pipeline.models import Category, Findings, ProposedCategory

NO_MANAGER = "—"
# segments are embedded for at most this many calls, so that a big period stays a sane page size
MAX_EMBEDDED_TRANSCRIPTS = 300
TOP_QUOTES = 3

# the words of every other text (callcoach.texts), capitalised for the report's heads and legends
TOPIC_NAMES = {code: name.capitalize() for code, name in texts.TOPIC_NAMES.items()}
SENTIMENT_NAMES = {code: name.capitalize() for code, name in texts.SENTIMENT_NAMES.items()}
DIRECTION_NAMES = {"incoming": "Входящий", "outgoing": "Исходящий"}
STATUS_NAMES = {"analysed": "Проанализирован", "skipped": "Пропущен", "failed": "Ошибка"}


class CallRecord(BaseModel):
    call_id: str
    job_id: str | None = None
    portal: str | None = None
    file: str = ""
    started_at: datetime | None = None
    direction: Literal["incoming", "outgoing"] | None = None
    manager_id: int | None = None
    manager_name: str | None = None
    status: Literal["analysed", "skipped", "failed"]
    reason: str | None = None
    duration: float = 0.0
    findings: Findings | None = None
    page_url: str | None = None


class ReportInput(BaseModel):
    records: list[CallRecord]
    proposals: list[ProposedCategory] = Field(default_factory=list)
    categories: list[Category] = Field(default_factory=list)
    period_from: date | None = None
    period_to: date | None = None
    title: str = "Аналитика звонков"


# --- output ----------------------------------------------------------------------------------


class Totals(BaseModel):
    calls: int = 0
    incoming: int = 0
    outgoing: int = 0
    analysed: int = 0
    skipped: int = 0
    failed: int = 0
    skipped_reasons: dict[str, int] = Field(default_factory=dict)
    failed_reasons: dict[str, int] = Field(default_factory=dict)
    total_duration: float = 0.0
    objections: int = 0
    handled: int = 0
    handled_share: float | None = None
    calls_with_objections: int = 0


class ManagerRow(BaseModel):
    key: str
    name: str
    calls: int = 0
    analysed: int = 0
    talk_ratio: float | None = None  # mean manager share of speech over analysed calls
    objections: int = 0
    handled: int = 0
    handled_share: float | None = None
    positive: int = 0
    neutral: int = 0
    negative: int = 0
    sentiment_index: float | None = None  # (positive - negative) / analysed, -1..1


class QuoteRow(BaseModel):
    call_id: str
    quote: str
    confidence: float
    handled: bool
    manager_reply: str = ""


class CategoryRow(BaseModel):
    code: str
    name: str
    count: int = 0
    calls: int = 0
    handled: int = 0
    handled_share: float | None = None
    recommendation: str = ""
    top_quotes: list[QuoteRow] = Field(default_factory=list)


class Trend(BaseModel):
    days: list[str] = Field(default_factory=list)  # ISO dates, every day of the span
    series: dict[str, list[int]] = Field(default_factory=dict)  # category code -> count per day


class CandidateRow(BaseModel):
    call_id: str
    quote: str
    nearest_category: str | None = None


class ObjectionRow(BaseModel):
    category: str
    name: str
    quote: str
    start: float
    confidence: float
    handled: bool
    recommendation: str = ""
    manager_reply: str = ""


class SegmentRow(BaseModel):
    speaker: str
    start: float
    end: float
    text: str


class CallRow(BaseModel):
    """One call as the page's script sees it (the embedded data blob and the exports)."""

    id: str
    job_id: str | None
    file: str
    started_at: str | None
    date: str | None
    direction: str | None
    manager_key: str
    manager: str
    status: str
    reason: str | None
    duration: float
    talk_ratio: float | None
    sentiment: str | None
    topic: str | None
    summary: str = ""
    page_url: str | None
    objections: list[ObjectionRow] = Field(default_factory=list)
    candidates: list[str] = Field(default_factory=list)
    segments: list[SegmentRow] | None = None  # None: not embedded (see MAX_EMBEDDED_TRANSCRIPTS)


class ReportData(BaseModel):
    title: str
    period_from: date | None
    period_to: date | None
    generated_at: datetime
    totals: Totals
    managers: list[ManagerRow]
    topics: dict[str, int]
    sentiment: dict[str, int]
    categories: list[CategoryRow]
    trend: Trend
    proposals: list[ProposedCategory]
    candidates: list[CandidateRow]
    calls: list[CallRow]
    category_names: dict[str, str]
    recommendations: dict[str, str]
    topic_names: dict[str, str] = Field(default_factory=lambda: dict(TOPIC_NAMES))
    sentiment_names: dict[str, str] = Field(default_factory=lambda: dict(SENTIMENT_NAMES))
    example_call_ids: list[str] = Field(default_factory=list)


# --- computation -----------------------------------------------------------------------------


def manager_key(record: CallRecord) -> str:
    if record.manager_id is not None:
        return f"id{record.manager_id}"
    return f"name:{record.manager_name}" if record.manager_name else "none"


def manager_label(record: CallRecord) -> str:
    if record.manager_name:
        return record.manager_name
    return f"Сотрудник #{record.manager_id}" if record.manager_id is not None else NO_MANAGER


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def category_names(input: ReportInput) -> dict[str, str]:
    """Names by code: configured categories first, then names the analysis wrote, then the code."""
    names: dict[str, str] = {}
    for record in input.records:
        if record.findings:
            for obj in record.findings.objections:
                if obj.category_name and obj.category not in names:
                    names[obj.category] = obj.category_name
    names.update({c.code: c.name for c in input.categories})
    for record in input.records:
        if record.findings:
            for obj in record.findings.objections:
                names.setdefault(obj.category, obj.category)
    return names


def _call_row(record: CallRecord, names: dict[str, str], recs: dict[str, str], embed: bool) -> CallRow:
    f = record.findings if record.status == "analysed" else None
    # an "analysed" record without findings counts as failed, here as in build_report
    status = "failed" if record.status == "analysed" and f is None else record.status
    return CallRow(
        id=record.call_id,
        job_id=record.job_id,
        file=record.file,
        started_at=record.started_at.isoformat() if record.started_at else None,
        date=record.started_at.date().isoformat() if record.started_at else None,
        direction=record.direction,
        manager_key=manager_key(record),
        manager=manager_label(record),
        status=status,
        reason=record.reason,
        duration=round(record.duration or (f.duration if f else 0.0), 2),
        talk_ratio=round(f.stats.talk_ratio, 4) if f else None,
        sentiment=f.sentiment.overall.label if f else None,
        topic=f.topic.label if f else None,
        summary=f.summary if f else "",
        page_url=record.page_url,
        objections=[
            ObjectionRow(
                category=o.category,
                name=names.get(o.category, o.category),
                quote=o.quote,
                start=o.start,
                confidence=o.confidence,
                handled=o.handled,
                recommendation=o.recommendation or recs.get(o.category, ""),
                manager_reply=o.manager_reply,
            )
            for o in (f.objections if f else [])
        ],
        candidates=[c.quote for c in (f.new_category_candidates if f else [])],
        segments=[SegmentRow(speaker=s.speaker, start=s.start, end=s.end, text=s.text) for s in f.segments]
        if f and embed
        else None,
    )


def filter_input(
    input: ReportInput,
    *,
    manager: str | None = None,
    category: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> ReportInput:
    """The page's filters in Python. ``manager`` is a manager key (see ``manager_key``); a category
    keeps the calls that met it and, inside them, only its objections. Dates need a known date."""
    kept: list[CallRecord] = []
    for record in input.records:
        if manager and manager_key(record) != manager:
            continue
        day = record.started_at.date() if record.started_at else None
        if (date_from or date_to) and day is None:
            continue
        if date_from and day and day < date_from:
            continue
        if date_to and day and day > date_to:
            continue
        if category:
            f = record.findings
            if record.status != "analysed" or f is None:
                continue
            objections = [o for o in f.objections if o.category == category]
            if not objections:
                continue
            record = record.model_copy(update={"findings": f.model_copy(update={"objections": objections})})
        kept.append(record)
    return input.model_copy(update={"records": kept})


def _days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def build_report(input: ReportInput, *, now: datetime | None = None) -> ReportData:
    names = category_names(input)
    recs = {c.code: c.recommendation for c in input.categories if c.recommendation}
    # the same order as the embedded rows, so that ties break alike here and in the page's script
    records = _by_time(input.records)
    totals = Totals(calls=len(records))
    managers: dict[str, ManagerRow] = {}
    talk: dict[str, list[float]] = defaultdict(list)
    topics: Counter[str] = Counter()
    sentiment: Counter[str] = Counter()
    cat_rows: dict[str, CategoryRow] = {}
    cat_calls: dict[str, set[str]] = defaultdict(set)
    quotes: dict[str, list[QuoteRow]] = defaultdict(list)
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    candidates: list[CandidateRow] = []
    skipped: Counter[str] = Counter()
    failed: Counter[str] = Counter()

    for record in records:
        if record.direction == "incoming":
            totals.incoming += 1
        elif record.direction == "outgoing":
            totals.outgoing += 1
        key = manager_key(record)
        row = managers.setdefault(key, ManagerRow(key=key, name=manager_label(record)))
        row.calls += 1
        if record.status == "skipped":
            skipped[record.reason or "без причины"] += 1
            continue
        if record.status == "failed" or record.findings is None:
            failed[record.reason or "без причины"] += 1
            continue
        f = record.findings
        totals.analysed += 1
        totals.total_duration += record.duration or f.duration
        row.analysed += 1
        talk[key].append(f.stats.talk_ratio)
        label = f.sentiment.overall.label
        sentiment[label] += 1
        setattr(row, label, getattr(row, label) + 1)
        topics[f.topic.label] += 1
        if f.objections:
            totals.calls_with_objections += 1
        for obj in f.objections:
            totals.objections += 1
            row.objections += 1
            cat = cat_rows.setdefault(
                obj.category,
                CategoryRow(code=obj.category, name=names.get(obj.category, obj.category)),
            )
            cat.count += 1
            cat_calls[obj.category].add(record.call_id)
            if obj.handled:
                totals.handled += 1
                row.handled += 1
                cat.handled += 1
            if not cat.recommendation:
                cat.recommendation = recs.get(obj.category, "") or obj.recommendation
            quotes[obj.category].append(
                QuoteRow(
                    call_id=record.call_id,
                    quote=obj.quote,
                    confidence=obj.confidence,
                    handled=obj.handled,
                    manager_reply=obj.manager_reply,
                )
            )
            if record.started_at:
                per_day[record.started_at.date().isoformat()][obj.category] += 1
        for cand in f.new_category_candidates:
            candidates.append(
                CandidateRow(call_id=record.call_id, quote=cand.quote, nearest_category=cand.nearest_category)
            )

    totals.failed = sum(failed.values())
    totals.skipped = sum(skipped.values())
    totals.skipped_reasons = dict(skipped.most_common())
    totals.failed_reasons = dict(failed.most_common())
    totals.total_duration = round(totals.total_duration, 2)
    totals.handled_share = _share(totals.handled, totals.objections)

    for key, row in managers.items():
        if talk[key]:
            row.talk_ratio = sum(talk[key]) / len(talk[key])
        row.handled_share = _share(row.handled, row.objections)
        if row.analysed:
            row.sentiment_index = (row.positive - row.negative) / row.analysed

    for code, cat in cat_rows.items():
        cat.calls = len(cat_calls[code])
        cat.handled_share = _share(cat.handled, cat.count)
        # the strongest quotes, stable on ties (first met first)
        cat.top_quotes = sorted(quotes[code], key=lambda q: -q.confidence)[:TOP_QUOTES]
    categories = sorted(cat_rows.values(), key=lambda c: (-c.count, c.name))

    trend = Trend()
    dated = [r.started_at.date() for r in records if r.started_at]
    first = input.period_from or (min(dated) if dated else None)
    last = input.period_to or (max(dated) if dated else None)
    if first and last and first <= last and (last - first).days <= 366:
        trend.days = _days(first, last)
        trend.series = {c.code: [per_day[d][c.code] for d in trend.days] for c in categories}

    by_objections = sorted(
        (r for r in records if r.status == "analysed" and r.findings),
        key=lambda r: -len(r.findings.objections) if r.findings else 0,
    )
    embedded = {r.call_id for r in by_objections[:MAX_EMBEDDED_TRANSCRIPTS]}
    calls = [_call_row(r, names, recs, r.call_id in embedded) for r in _by_time(records)]
    examples = [r.call_id for r in by_objections if r.findings and r.findings.objections][:3]

    return ReportData(
        title=input.title,
        period_from=input.period_from,
        period_to=input.period_to,
        generated_at=now or datetime.now().astimezone(),
        totals=totals,
        managers=sorted(managers.values(), key=lambda m: (-m.calls, m.name)),
        topics=dict(topics.most_common()),
        sentiment={label: sentiment[label] for label in SENTIMENT_NAMES},
        categories=categories,
        trend=trend,
        proposals=input.proposals,
        candidates=candidates,
        calls=calls,
        category_names=names,
        recommendations=recs,
        example_call_ids=examples,
    )


def _by_time(records: Iterable[CallRecord]) -> list[CallRecord]:
    # newest first; undated calls keep their order at the end
    records = list(records)
    dated = sorted(
        (r for r in records if r.started_at),
        key=lambda r: r.started_at.timestamp() if r.started_at else 0.0,
        reverse=True,
    )
    return dated + [r for r in records if not r.started_at]
