"""The report in headless Chromium: filters change the numbers shown, untrusted text stays text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callcoach.report.data import ReportInput, build_report, filter_input
from callcoach.report.render import render_report_html
from tests.report.browser import chromium
from tests.report.conftest import XSS_TEXT
from tests.report.test_render import with_xss

pytestmark = pytest.mark.browser


def kpis(driver: Any) -> dict[str, str]:
    names = ("calls", "incoming", "outgoing", "analysed", "skipped", "failed", "objections", "handled-share")
    return {n: driver.find_element("id", f"kpi-{n}").text for n in names}


def expected(data_input: ReportInput, **flt: Any) -> dict[str, str]:
    t = build_report(filter_input(data_input, **flt)).totals
    share = "—" if t.handled_share is None else f"{round(t.handled_share * 100)}%"
    return {
        "calls": str(t.calls), "incoming": str(t.incoming), "outgoing": str(t.outgoing),
        "analysed": str(t.analysed), "skipped": str(t.skipped), "failed": str(t.failed),
        "objections": str(t.objections), "handled-share": share,
    }  # fmt: skip


def choose(driver: Any, select_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", select_id)).select_by_value(value)


def test_filters_update_numbers_and_xss_stays_text(sample_input: ReportInput, tmp_path: Path) -> None:
    data_input = with_xss(sample_input)
    page = tmp_path / "report.html"
    page.write_text(render_report_html(build_report(data_input)), encoding="utf-8")
    with chromium() as driver:
        driver.get(page.as_uri())
        assert driver.execute_script("return document.body.getAttribute('data-ready')") == "1"
        assert kpis(driver) == expected(data_input)
        assert driver.find_element("id", "kpi-calls").text == "14"

        choose(driver, "f-manager", "id2")
        assert kpis(driver) == expected(data_input, manager="id2")
        assert driver.find_element("id", "kpi-calls").text == "7"
        rows = driver.find_elements("css selector", "#managers-body tr")
        assert [r.get_attribute("data-key") for r in rows] == ["id2"]
        assert rows[0].find_element("css selector", "[data-field=objections]").text == "4"
        assert driver.find_element("id", "shown-count").text == "7"

        choose(driver, "f-manager", "")
        choose(driver, "f-category", "price")
        assert kpis(driver) == expected(data_input, category="price")
        codes = [
            r.get_attribute("data-code") for r in driver.find_elements("css selector", "#categories-body tr")
        ]
        assert codes == ["price"]

        driver.find_element("id", "f-reset").click()
        driver.execute_script(
            "var d=document.getElementById('f-from'); d.value='2025-03-04';"
            "d.dispatchEvent(new Event('change'));"
        )
        from datetime import date

        assert kpis(driver) == expected(data_input, date_from=date(2025, 3, 4))
        driver.find_element("id", "f-reset").click()
        assert kpis(driver) == expected(data_input)

        # untrusted text: opened transcript and quotes show it as text, nothing ran, no <img> appeared
        driver.find_element("css selector", "#calls-body button[data-call='dev01']").click()
        transcript = driver.find_element("css selector", "#transcripts .transcript[data-call='dev01']")
        assert XSS_TEXT in transcript.text
        assert driver.execute_script("return document.querySelectorAll('img').length") == 0
        assert driver.execute_script("return document.body.dataset.pwned || null") is None
        assert "<b>Злой</b> менеджер" in driver.find_element("id", "calls-body").text
        assert driver.execute_script("return document.querySelectorAll('#calls-body b').length") == 0

        driver.execute_script("window.scrollTo(0, 0)")
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1440, min(int(height), 7000))
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 20_000
