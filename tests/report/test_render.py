"""The rendered HTML: self-contained, and untrusted transcript text stays text."""

from __future__ import annotations

import json
import re
from importlib import resources

from callcoach.pipeline.models import Segment
from callcoach.report.data import ReportInput, build_report
from callcoach.report.render import json_for_script, render_call_page, render_report_html
from tests.report.conftest import XSS_TEXT


def with_xss(input: ReportInput) -> ReportInput:
    record = next(r for r in input.records if r.call_id == "dev01")
    assert record.findings is not None
    record.findings.segments.append(Segment(speaker="client", start=39.7, end=40.4, text=XSS_TEXT))
    record.findings.objections[0].quote = XSS_TEXT
    record.manager_name = "<b>Злой</b> менеджер"
    return input


def test_report_is_self_contained(sample_input: ReportInput) -> None:
    html = render_report_html(build_report(sample_input))
    assert "Chart.js v4" in html and "Released under the MIT License" in html  # vendored, header kept
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=", html)
    assert "https://cdn" not in html
    assert 'lang="ru"' in html and "Менеджеры" in html


def test_xss_in_transcript_stays_text_in_source(sample_input: ReportInput) -> None:
    html = render_report_html(build_report(with_xss(sample_input)))
    assert "<script>alert(1)" not in html
    assert "</script><img" not in html
    assert "<img" not in html
    assert "<b>Злой</b>" not in html
    # the data blob still holds the text exactly
    blob = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert blob is not None
    data = json.loads(blob.group(1))
    dev01 = next(c for c in data["calls"] if c["id"] == "dev01")
    assert dev01["segments"][-1]["text"] == XSS_TEXT
    assert dev01["manager"] == "<b>Злой</b> менеджер"
    # the page script never writes data through innerHTML
    script = (resources.files("callcoach.report") / "static" / "report.js").read_text(encoding="utf-8")
    assert "innerHTML" not in script and "outerHTML" not in script and "insertAdjacentHTML" not in script


def test_call_page_escapes_and_highlights(sample_input: ReportInput) -> None:
    input = with_xss(sample_input)
    record = next(r for r in input.records if r.call_id == "dev01")
    html = render_call_page(record, input.categories)
    assert "<script>alert(1)" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<mark>" in html and 'class="seg client objection"' in html
    assert "Рекомендация" in html


def test_json_for_script_escapes_breakouts() -> None:
    value = {"t": "</script><!-- & \u2028\u2029 >"}
    text = str(json_for_script(value))
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == value
