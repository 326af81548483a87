from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from callcoach.pipeline.models import Category, ProposedCategory
from callcoach.report.data import CallRecord, ReportInput
from tests.report.truth import first_set, truth_to_findings

MSK = timezone(timedelta(hours=3))
DAY0 = date(2025, 3, 3)
MANAGERS = {1: "Андрей Петров", 2: "Мария Иванова"}
HANDLED = {"dev02", "dev05", "dev08"}  # truth says nothing of handling: these are marked handled
XSS_TEXT = "<script>alert(1)</script> и </script><img src=x onerror=\"document.body.dataset.pwned='1'\">"


def _categories() -> list[Category]:
    try:
        from callcoach.pipeline.categories import standard_categories
    except ImportError:
        return []
    return standard_categories()


def sample_records() -> list[CallRecord]:
    """dev01..dev12 from truth: dev01-06 by manager 1, dev07-12 by manager 2, four days, mixed
    directions; plus one skipped and one failed call."""
    records: list[CallRecord] = []
    for i, path in enumerate(first_set()):
        truth = json.loads(path.read_text(encoding="utf-8"))
        findings = truth_to_findings(truth, str(path.with_suffix(".mp3")))
        if truth["id"] in HANDLED:
            for o in findings.objections:
                o.handled = True
        manager = 1 if i < 6 else 2
        records.append(
            CallRecord(
                call_id=truth["id"],
                job_id=str(100 + i),
                portal="member-a",
                file=findings.file,
                started_at=datetime(2025, 3, 3 + i % 4, 10 + i, 0, tzinfo=MSK),
                direction="incoming" if i % 3 else "outgoing",
                manager_id=manager,
                manager_name=MANAGERS[manager],
                status="analysed",
                duration=findings.duration,
                findings=findings,
            )
        )
    records.append(
        CallRecord(
            call_id="short01", job_id="200", portal="member-a",
            started_at=datetime(2025, 3, 4, 9, tzinfo=MSK),
            direction="incoming", manager_id=1, manager_name=MANAGERS[1], status="skipped",
            reason="короче 10 секунд", duration=4.0,
        )
    )  # fmt: skip
    records.append(
        CallRecord(
            call_id="broken01", job_id="201", portal="member-a",
            started_at=datetime(2025, 3, 5, 9, tzinfo=MSK),
            direction="outgoing", manager_id=2, manager_name=MANAGERS[2], status="failed",
            reason="запись не скачалась", duration=60.0,
        )
    )  # fmt: skip
    return records


@pytest.fixture
def sample_input() -> ReportInput:
    return ReportInput(
        records=sample_records(),
        categories=_categories(),
        proposals=[
            ProposedCategory(name="Юридические риски", code="legal_risk", examples=["юристы против"], size=2)
        ],
        period_from=DAY0,
        period_to=DAY0 + timedelta(days=3),
        title="Аналитика звонков: тест",
    )
