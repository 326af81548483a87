"""`callcoach report` end to end: analyze output in, HTML / CSV / JSON out."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest

from callcoach.cli import main
from tests.fakes.portal import FakePortal
from tests.helpers import StartApp, add_analysed_call
from tests.report.truth import truth_analyze_output


@pytest.fixture
def analyze_json(tmp_path: Path) -> Path:
    items = truth_analyze_output()
    items.append({"file": "/work/shared/calls/missing.mp3", "error": "не удалось декодировать аудио"})
    path = tmp_path / "analyze.json"
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    return path


def test_report_from_json(analyze_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, csv_path, json_path = tmp_path / "r" / "report.html", tmp_path / "r.csv", tmp_path / "r.json"
    rc = main(["report", "--from-json", str(analyze_json), "--out", str(out), "--csv", str(csv_path),
               "--json-out", str(json_path)])  # fmt: skip
    assert rc == 0
    assert "13 calls (12 analysed, 0 skipped, 1 failed), 10 objections" in capsys.readouterr().out
    html = out.read_text(encoding="utf-8")
    assert "dev01.mp3" in html and "Chart.js" in html
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["totals"]["failed_reasons"] == {"не удалось декодировать аудио": 1}
    assert {m["name"] for m in data["managers"]} == {"—"}
    rows = list(csv.reader(io.StringIO(csv_path.read_text(encoding="utf-8-sig"))))
    assert rows[0][0] == "id" and len(rows) == 14
    dev01 = next(r for r in rows if r[0] == "dev01.mp3")
    assert dev01[10] == "1" and dev01[12] == "price"
    # the recordings exist, so their mtime dates the calls
    assert next(c for c in data["calls"] if c["id"] == "dev01.mp3")["date"] is not None


def test_bad_json_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"file": "a.mp3", "segments": 5}]', encoding="utf-8")
    assert main(["report", "--from-json", str(bad), "--out", str(tmp_path / "x.html")]) == 1
    err = capsys.readouterr().err
    assert "item 0 (a.mp3): not a Findings object" in err
    assert not (tmp_path / "x.html").exists()
    assert (
        main(["report", "--from-json", str(tmp_path / "nope.json"), "--out", str(tmp_path / "x.html")]) == 1
    )
    assert "cannot read" in capsys.readouterr().err


def test_dates_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--from", "03.03.2025", "--out", str(tmp_path / "x.html")])
    assert "YYYY-MM-DD" in capsys.readouterr().err
    assert main(["report", "--from", "2025-03-05", "--to", "2025-03-01", "--from-json", "x"]) == 2


def test_database_mode_with_no_installed_portal_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLCOACH_DATA_DIR", str(tmp_path / "data"))
    assert (
        main(["report", "--from", "2025-03-01", "--to", "2025-03-05", "--out", str(tmp_path / "x.html")]) == 1
    )
    assert "--portal" in capsys.readouterr().err


async def test_database_mode_names_managers_from_the_portal(
    portal: FakePortal,
    start_light_app: StartApp,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    portal.add_user(7, "Иван Петров", [1])
    portal.add_user(8, "<b>Пётр</b> Сидоров", [1])
    app = await start_light_app(portal)
    assert (await portal.install(app.install_url))["status"] == 200
    for call_id, manager in (("C-7", 7), ("C-8", 8), ("C-77", 77)):  # 77: not on the portal (any more)
        await add_analysed_call(app.services.store, portal, call_id, manager, "Это дорого")
    monkeypatch.setenv("CALLCOACH_DATA_DIR", str(app.settings.data_dir))
    out, json_out = tmp_path / "report.html", tmp_path / "report.json"
    argv = ["report", "--out", str(out), "--json-out", str(json_out)]

    # the CLI runs its own event loop; the fake portal keeps answering on this one meanwhile
    assert await asyncio.to_thread(main, argv) == 0
    names = {m["key"]: m["name"] for m in json.loads(json_out.read_text(encoding="utf-8"))["managers"]}
    assert names == {"id7": "Иван Петров", "id8": "<b>Пётр</b> Сидоров", "id77": "#77"}
    html = out.read_text(encoding="utf-8")
    assert "Иван Петров" in html and "<b>Пётр</b>" not in html  # names are data, never markup

    await portal.close()  # the portal is out of reach: the report still comes, with ids
    assert await asyncio.to_thread(main, argv) == 0
    names = {m["key"]: m["name"] for m in json.loads(json_out.read_text(encoding="utf-8"))["managers"]}
    assert names == {"id7": "#7", "id8": "#8", "id77": "#77"}
    assert "names unavailable" in capsys.readouterr().err
