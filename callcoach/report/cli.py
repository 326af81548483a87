"""``callcoach report``: the analytics report as one offline HTML file (plus CSV / JSON)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from pathlib import Path
from typing import Any

from callcoach.config import Settings
from callcoach.report.analyze_output import AnalyzeOutputError, load_analyze_output
from callcoach.report.data import ReportInput, build_report
from callcoach.report.export import report_csv, report_json
from callcoach.report.render import render_report_html


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {value!r}") from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("report", help="Write the analytics report (self-contained HTML).")
    p.add_argument("--from", dest="date_from", type=_date, help="First day, YYYY-MM-DD.")
    p.add_argument("--to", dest="date_to", type=_date, help="Last day, YYYY-MM-DD (inclusive).")
    p.add_argument("--portal", help="Portal domain (database mode; default: all portals).")
    p.add_argument("--from-json", type=Path, help="Output of `callcoach analyze` instead of the database.")
    p.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file to write.")
    p.add_argument("--csv", type=Path, help="Also write the calls table as CSV.")
    p.add_argument("--json-out", type=Path, help="Also write every aggregate as JSON.")
    p.add_argument("--title", default="Аналитика звонков")
    p.set_defaults(func=run)


def _load_from_db(settings: Settings, args: argparse.Namespace) -> ReportInput:
    from callcoach.report.source import load_report_input

    def warn(message: str) -> None:
        print(f"callcoach report: {message}", file=sys.stderr)

    result = asyncio.run(
        load_report_input(
            settings, date_from=args.date_from, date_to=args.date_to, portal=args.portal, warn=warn
        )
    )
    if args.title and result.title != args.title:
        result = result.model_copy(update={"title": args.title})
    return result


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.date_from and args.date_to and args.date_from > args.date_to:
        print("callcoach report: --from is after --to", file=sys.stderr)
        return 2
    try:
        if args.from_json:
            input = load_analyze_output(
                args.from_json, date_from=args.date_from, date_to=args.date_to, title=args.title
            )
        else:
            input = _load_from_db(settings, args)
    except (AnalyzeOutputError, RuntimeError) as exc:
        print(f"callcoach report: {exc}", file=sys.stderr)
        return 1
    data = build_report(input)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(render_report_html(data), encoding="utf-8")
        if args.csv:
            args.csv.write_text(report_csv(data), encoding="utf-8")
        if args.json_out:
            args.json_out.write_text(report_json(data), encoding="utf-8")
    except OSError as exc:
        print(f"callcoach report: cannot write: {exc}", file=sys.stderr)
        return 1
    t = data.totals
    print(
        f"{args.out}: {t.calls} calls ({t.analysed} analysed, {t.skipped} skipped, {t.failed} failed), "
        f"{t.objections} objections"
    )
    return 0
