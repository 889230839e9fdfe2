"""`rebal calendar` as a user runs it: XNYS sessions with open, close, early close and the managed
run's time, as JSON (UTC instants with their offset) and as a table (New York time with its
zone); holidays absent; bad dates refused in one line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rebal.cli.main import app

runner = CliRunner()


def _json(*args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["calendar", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.stdout)["sessions"]
    return rows


def test_calendar_json_rows_around_thanksgiving() -> None:
    rows = _json("--from", "2026-11-25", "--to", "2026-11-30")
    assert [r["date"] for r in rows] == ["2026-11-25", "2026-11-27", "2026-11-30"]
    assert rows[0] == {
        "date": "2026-11-25",
        "open": "2026-11-25T14:30:00+00:00",
        "close": "2026-11-25T21:00:00+00:00",
        "early_close": False,
        "managed_run_at": "2026-11-25T19:30:00+00:00",
    }
    friday = rows[1]
    assert friday["early_close"] is True
    assert friday["close"] == "2026-11-27T18:00:00+00:00"  # 13:00 EST
    assert friday["managed_run_at"] == "2026-11-27T16:30:00+00:00"  # 11:30 EST


def test_calendar_table_shows_new_york_times_with_zone() -> None:
    result = runner.invoke(app, ["calendar", "--from", "2026-07-02", "--to", "2026-07-06"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert "America/New_York" in result.stdout
    assert len(lines) == 2  # the 3rd is Independence Day observed, the 4th and 5th a weekend
    assert "09:30 EDT" in lines[0] and "16:00 EDT" in lines[0] and "14:30 EDT" in lines[0]
    assert "2026-07-06" in lines[1]


def test_calendar_refuses_a_bad_date_in_one_line() -> None:
    result = runner.invoke(app, ["calendar", "--from", "2026-13-01"])
    assert result.exit_code == 1
    assert "--from '2026-13-01' is not a date (YYYY-MM-DD)" in result.output


def test_calendar_refuses_to_before_from() -> None:
    result = runner.invoke(app, ["calendar", "--from", "2026-12-10", "--to", "2026-12-01"])
    assert result.exit_code == 1
    assert "--to 2026-12-01 is before --from 2026-12-10" in result.output
