"""CSV and JSON exports of a report: the same columns the page's export buttons write."""

from __future__ import annotations

import csv
import io
from typing import Any

from callcoach.report.data import ReportData

CSV_HEADER = (
    "id", "дата", "менеджер", "направление", "статус", "причина", "длительность_с",
    "доля_речи_менеджера", "тональность", "тема", "возражений", "отработано", "категории",
)  # fmt: skip


def _cell(value: Any) -> Any:
    # a leading = + - @ makes spreadsheets run the cell as a formula: transcripts are untrusted
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def report_csv(data: ReportData) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in data.calls:
        cats: list[str] = []
        for o in r.objections:
            if o.category not in cats:
                cats.append(o.category)
        row = [
            r.id, r.started_at, r.manager, r.direction, r.status, r.reason, r.duration, r.talk_ratio,
            r.sentiment, r.topic, len(r.objections), sum(1 for o in r.objections if o.handled),
            " ".join(cats),
        ]  # fmt: skip
        writer.writerow([_cell(v) for v in row])
    return "\ufeff" + out.getvalue()  # BOM: Excel reads UTF-8 Cyrillic correctly


def report_json(data: ReportData) -> str:
    return data.model_dump_json(indent=2)
