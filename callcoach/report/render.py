"""HTML rendering of the report, the call page and error pages (jinja2, autoescaped).

The report is one self-contained file: CSS, the vendored Chart.js (MIT, header kept), the page
script and the data all go inline, so it opens offline and from inside a Bitrix24 iframe alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from callcoach.pipeline.models import Category, Findings, Objection, Segment
from callcoach.report.data import (
    DIRECTION_NAMES,
    SENTIMENT_NAMES,
    STATUS_NAMES,
    TOPIC_NAMES,
    CallRecord,
    ReportData,
    manager_label,
)
from callcoach.texts import SPEAKER_NAMES, clock

_SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def json_for_script(value: Any) -> Markup:
    """JSON safe to place inside <script>: no `</script>`, `<!--`, or JS line separators survive."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    for raw, escaped in _SCRIPT_ESCAPES.items():
        text = text.replace(raw, escaped)
    return Markup(text)


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("callcoach.report", "templates"),
        # every template is HTML and transcript text is untrusted: escape everything by default
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@lru_cache(maxsize=8)
def _static(name: str) -> str:
    # read-only package files, cached: a pure function of the installed package
    text = resources.files("callcoach.report").joinpath("static", name).read_text(encoding="utf-8")
    if name.endswith(".js") and "</script" in text.lower():
        raise ValueError(f"static/{name} contains '</script' and cannot be inlined")
    return text


def _fmt_dt(value: datetime | None) -> str:
    return value.strftime("%d.%m.%Y %H:%M") if value else "—"


def _duration(seconds: float) -> str:
    s = round(seconds or 0)
    minutes, sec = divmod(s, 60)
    return f"{minutes} мин {sec} с" if minutes else f"{sec} с"


def render_report_html(
    data: ReportData,
    *,
    live_json_url: str | None = None,
    user_name: str | None = None,
    session: tuple[str, str] | None = None,
) -> str:
    """The report page. ``live_json_url`` turns on the live dashboard's period form and JSON link;
    ``session`` (parameter name, token) rides along in the period form."""
    if data.period_from or data.period_to:
        period = (
            f"{data.period_from.strftime('%d.%m.%Y') if data.period_from else '…'} — "
            f"{data.period_to.strftime('%d.%m.%Y') if data.period_to else '…'}"
        )
    else:
        period = "все звонки"
    share = data.totals.handled_share
    template = _environment().get_template("report.html.j2")
    return template.render(
        title=data.title,
        data=data,
        period=period,
        user=user_name,
        live={"json_url": live_json_url, "session": session} if live_json_url else None,
        handled_share="—" if share is None else f"{round(share * 100)}%",
        generated=_fmt_dt(data.generated_at),
        css=Markup(_static("report.css")),
        chart_js=Markup(_static("chart.umd.min.js")),
        report_js=Markup(_static("report.js")),
        data_json=json_for_script(data.model_dump(mode="json")),
    )


def _objection_names(objections: Iterable[Objection], categories: Iterable[Category]) -> dict[str, str]:
    names = {o.category: o.category_name for o in objections if o.category_name}
    names.update({c.code: c.name for c in categories})
    return names


def _split_marked(text: str, quotes: list[str]) -> list[tuple[str, bool]]:
    """Text cut into (part, is_quote) pieces; the template escapes every piece."""
    for quote in quotes:
        at = text.find(quote) if quote else -1
        if at >= 0:
            parts = [(text[:at], False), (quote, True), (text[at + len(quote) :], False)]
            return [p for p in parts if p[0]]
    return [(text, bool(quotes))] if quotes else [(text, False)]


def _segment_hits(seg: Segment, objections: list[Objection]) -> list[Objection]:
    return [
        o
        for o in objections
        if seg.start - 0.05 <= o.start <= seg.end + 0.05 or (o.quote and o.quote in seg.text)
    ]


def render_call_page(
    record: CallRecord, categories: Iterable[Category] = (), *, back_url: str | None = None
) -> str:
    categories = list(categories)
    f: Findings | None = record.findings if record.status == "analysed" else None
    recs = {c.code: c.recommendation for c in categories if c.recommendation}
    objections = list(f.objections) if f else []
    names = _objection_names(objections, categories)
    segments = []
    for seg in f.segments if f else []:
        hits = _segment_hits(seg, objections)
        segments.append(
            {
                "speaker": seg.speaker,
                "clock": clock(seg.start),
                "parts": _split_marked(seg.text, [o.quote for o in hits]),
                "hits": [{"name": names.get(o.category, o.category)} for o in hits],
            }
        )
    return _page(
        "call.html.j2",
        title=f"Звонок {record.call_id}",
        record=record,
        f=f,
        manager=manager_label(record),
        direction=DIRECTION_NAMES.get(record.direction or "", "направление неизвестно"),
        started=_fmt_dt(record.started_at),
        duration=_duration(record.duration or (f.duration if f else 0.0)),
        status=STATUS_NAMES.get(record.status, record.status),
        topic=TOPIC_NAMES.get(f.topic.label, f.topic.label) if f else "",
        sentiment=SENTIMENT_NAMES.get(f.sentiment.overall.label, "") if f else "",
        handled=sum(1 for o in objections if o.handled),
        segments=segments,
        speakers=SPEAKER_NAMES,
        objections=[
            {
                "name": names.get(o.category, o.category),
                "clock": clock(o.start),
                "confidence": o.confidence,
                "quote": o.quote,
                "handled": o.handled,
                "manager_reply": o.manager_reply,
                "recommendation": o.recommendation or recs.get(o.category, ""),
            }
            for o in objections
        ],
        back_url=back_url,
    )


def _page(template: str, **values: Any) -> str:
    """A small page (call, error, install) in the report's frame: its styles and the time."""
    return (
        _environment()
        .get_template(template)
        .render(generated=_fmt_dt(datetime.now().astimezone()), css=Markup(_static("report.css")), **values)
    )


def render_error_page(status: int, heading: str, message: str) -> str:
    return _page(
        "error.html.j2", title=f"{status} — {heading}", status=status, heading=heading, message=message
    )


def render_install_page(domain: str, done: list[tuple[bool, str]], warnings: list[str]) -> str:
    """The install page of the app with an interface: what the server did, then
    ``BX24.installFinish()`` in the browser."""
    return _page(
        "install.html.j2",
        title=f"Установка callcoach · {domain}",
        domain=domain,
        done=done,
        warnings=warnings,
    )
