"""The aggregates of build_report, checked against numbers counted by hand from the truth files."""

from __future__ import annotations

from datetime import date

from callcoach.report.data import ReportInput, build_report, filter_input


def test_totals_count_every_call_once(sample_input: ReportInput) -> None:
    t = build_report(sample_input).totals
    assert (t.calls, t.analysed, t.skipped, t.failed) == (14, 12, 1, 1)
    # outgoing: dev01, dev04, dev07, dev10 (i % 3 == 0) and broken01
    assert (t.incoming, t.outgoing) == (9, 5)
    assert t.skipped_reasons == {"короче 10 секунд": 1}
    assert t.failed_reasons == {"запись не скачалась": 1}
    # ten truth objections (dev12's is "novel", dev11 has none), three marked handled
    assert (t.objections, t.handled, t.calls_with_objections) == (10, 3, 10)
    assert t.handled_share == 0.3


def test_managers_table(sample_input: ReportInput) -> None:
    rows = {m.name: m for m in build_report(sample_input).managers}
    andrey, maria = rows["Андрей Петров"], rows["Мария Иванова"]
    assert (andrey.calls, andrey.analysed, andrey.objections, andrey.handled) == (7, 6, 6, 2)
    assert (maria.calls, maria.analysed, maria.objections, maria.handled) == (7, 6, 4, 1)
    assert maria.handled_share == 0.25
    # dev01-06 sentiments: negative, neutral x4, negative
    assert (andrey.positive, andrey.neutral, andrey.negative) == (0, 4, 2)
    assert andrey.sentiment_index == -2 / 6
    assert andrey.talk_ratio is not None and 0.3 < andrey.talk_ratio < 0.8


def test_topics_sentiment_categories_and_trend(sample_input: ReportInput) -> None:
    data = build_report(sample_input)
    assert data.topics == {"sales": 8, "consultation": 2, "complaint": 1, "order": 1}
    assert data.sentiment == {"positive": 1, "neutral": 7, "negative": 4}
    by_code = {c.code: c for c in data.categories}
    assert set(by_code) == {
        "price", "no_time", "has_alternative", "unclear_need", "cannot_decide",
        "terms_mismatch", "lack_of_trust", "competitors", "quality", "expertise_doubt",
    }  # fmt: skip
    price = by_code["price"]
    assert (price.count, price.calls, price.handled) == (1, 1, 0)
    assert price.top_quotes[0].quote.startswith("Это очень дорого")
    assert price.top_quotes[0].call_id == "dev01"
    assert by_code["no_time"].handled_share == 1.0
    assert data.trend.days == ["2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06"]
    # dev01 (i=0) day 0, dev05 (i=4) day 0, dev09 (i=8) day 0: price, cannot_decide, quality
    assert data.trend.series["price"] == [1, 0, 0, 0]
    assert sum(sum(s) for s in data.trend.series.values()) == 10
    assert [c.quote for c in data.candidates] and data.candidates[0].call_id == "dev12"
    assert data.proposals[0].code == "legal_risk"
    assert data.example_call_ids and len(data.example_call_ids) == 3


def test_calls_rows_carry_transcripts_and_links(sample_input: ReportInput) -> None:
    data = build_report(sample_input)
    rows = {r.id: r for r in data.calls}
    assert rows["dev01"].segments and rows["dev01"].segments[0].speaker == "manager"
    assert rows["short01"].segments is None and rows["short01"].status == "skipped"
    assert rows["dev01"].manager == "Андрей Петров" and rows["dev01"].date == "2025-03-03"
    # newest first
    dated = [r.started_at for r in data.calls if r.started_at]
    assert dated == sorted(dated, reverse=True)


def test_filters_in_python(sample_input: ReportInput) -> None:
    by_cat = build_report(filter_input(sample_input, category="price"))
    assert (by_cat.totals.calls, by_cat.totals.objections) == (1, 1)
    by_manager = build_report(filter_input(sample_input, manager="id2"))
    assert by_manager.totals.calls == 7 and {m.name for m in by_manager.managers} == {"Мария Иванова"}
    by_day = build_report(filter_input(sample_input, date_from=date(2025, 3, 4), date_to=date(2025, 3, 4)))
    assert {r.date for r in by_day.calls} == {"2025-03-04"}


def test_empty_input_renders_zeroes() -> None:
    data = build_report(ReportInput(records=[]))
    assert data.totals.calls == 0 and data.totals.handled_share is None
    assert data.managers == [] and data.trend.days == []
