"""Report input from the JSON that ``callcoach analyze`` writes: a list of Findings objects, or
``{"file": ..., "error": "reason"}`` items for recordings that could not be analysed."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from callcoach.pipeline.models import Category, Findings
from callcoach.report.data import CallRecord, ReportInput


class AnalyzeOutputError(ValueError):
    """The file is not an analyze output; the message says where and why."""


def standard_categories_or_none() -> list[Category]:
    """The standard categories when that module exists (written in parallel); else none: codes show."""
    try:
        from callcoach.pipeline.categories import standard_categories
    except ImportError:
        return []
    return list(standard_categories())


def _started_at(file: str, base: Path) -> datetime | None:
    # the analyze output keeps no call time: the recording's mtime is the best guess there is
    for candidate in (Path(file), base / file, base / Path(file).name):
        try:
            return datetime.fromtimestamp(candidate.stat().st_mtime).astimezone()
        except OSError:
            continue
    return None


def records_from_items(items: list[Any], base: Path) -> list[CallRecord]:
    records: list[CallRecord] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise AnalyzeOutputError(f"item {index}: expected an object, got {type(item).__name__}")
        file = str(item.get("file") or f"item-{index}")
        started_at = _started_at(file, base)
        if "error" in item:
            reason = str(item.get("error") or "ошибка анализа")
            records.append(
                CallRecord(
                    call_id=Path(file).name, file=file, started_at=started_at, status="failed", reason=reason
                )
            )
            continue
        try:
            findings = Findings.model_validate(item)
        except ValidationError as exc:
            raise AnalyzeOutputError(f"item {index} ({file}): not a Findings object: {exc}") from None
        records.append(
            CallRecord(
                call_id=Path(file).name,
                file=file,
                started_at=started_at,
                status="analysed",
                duration=findings.duration,
                findings=findings,
            )
        )
    return records


def load_analyze_output(
    path: Path,
    *,
    categories: list[Category] | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    title: str = "Аналитика звонков",
) -> ReportInput:
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AnalyzeOutputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise AnalyzeOutputError(f"{path}: not JSON: {exc}") from None
    if isinstance(items, dict):  # one recording analysed on its own
        items = [items]
    if not isinstance(items, list):
        raise AnalyzeOutputError(f"{path}: expected a JSON list of Findings")
    records = records_from_items(items, path.parent)
    if date_from or date_to:
        records = [
            r
            for r in records
            if r.started_at
            and (not date_from or r.started_at.date() >= date_from)
            and (not date_to or r.started_at.date() <= date_to)
        ]
    return ReportInput(
        records=records,
        categories=standard_categories_or_none() if categories is None else categories,
        period_from=date_from,
        period_to=date_to,
        title=title,
    )
