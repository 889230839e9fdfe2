"""`rebal run` with pre-trade compliance as a user types it: on by default, configured by
``--compliance-config FILE`` (TOML or JSON), a blocked run printed with its violations (one line
each on stderr, starting with the code), exit 1, and a ``run.blocked`` alert in the outbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import test_runs_cli
from typer.testing import CliRunner

from rebal.cli.main import app

#: The small book of the runs CLI tests, in a SQLite file (a fixture).
db = test_runs_cli.db


def _run(db: str, *more: str) -> Any:
    return CliRunner().invoke(
        app,
        [
            "run",
            "--model",
            "balanced",
            "--policy",
            "full",
            "--as-of",
            test_runs_cli._next_session_time(),
            "--max-price-age",
            "120",
            "--format",
            "json",
            *more,
            "--db",
            db,
        ],
    )


def _broker_orders(db: str) -> list[dict[str, Any]]:
    done = CliRunner().invoke(app, ["broker", "orders", "--format", "json", "--db", db])
    orders: list[dict[str, Any]] = json.loads(done.stdout)["orders"]
    return orders


def test_restricted_security_blocks_the_run_exit_1_one_line_per_violation(
    db: str, tmp_path: Path
) -> None:
    config = tmp_path / "compliance.toml"
    config.write_text('restricted = ["bnd"]\n')
    done = _run(db, "--compliance-config", str(config))
    assert done.exit_code == 1
    (run,) = json.loads(done.stdout)["runs"]
    assert run["state"] == "error"
    assert run["reason"] == (
        "blocked by compliance: RESTRICTED_SECURITY: BND is on the restricted list: no buy; "
        "RESTRICTED_SECURITY: BND is on the restricted list: no buy"
    )
    assert [(v["leg"], v["account"], v["code"]) for v in run["violations"]] == [
        ("sells", "A1", "RESTRICTED_SECURITY"),
        ("sells", "A2", "RESTRICTED_SECURITY"),
    ]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("RESTRICTED_SECURITY: ") for line in lines)
    assert "account A1, sells leg" in lines[0] and "account A2, sells leg" in lines[1]
    assert _broker_orders(db) == []  # nothing sent, not even the VTI sells
    assert {o["state"] for o in run["orders"]} == {"canceled"}


def test_blocked_run_raises_a_run_blocked_alert_with_its_violations(
    db: str, tmp_path: Path
) -> None:
    config = tmp_path / "compliance.json"
    config.write_text(json.dumps({"cannot_trade": ["A2"], "max_security_weight": "0.3"}))
    done = _run(db, "--compliance-config", str(config))
    assert done.exit_code == 1
    codes = [line.split(":")[0] for line in done.stderr.strip().splitlines()]
    assert sorted(codes) == ["ACCOUNT_CANNOT_TRADE", "POSITION_LIMIT", "POSITION_LIMIT"]
    listed = CliRunner().invoke(app, ["notifications", "--format", "json", "--db", db])
    alerts = [n for n in json.loads(listed.stdout)["notifications"] if n["topic"] == "run.blocked"]
    assert {a["channel"] for a in alerts} == {"webhook", "email"}
    assert sorted(v["code"] for v in alerts[0]["payload"]["violations"]) == sorted(codes)


def test_compliance_is_on_without_a_configuration_and_a_clean_run_passes(db: str) -> None:
    done = _run(db)
    assert done.exit_code == 0, done.output
    (run,) = json.loads(done.stdout)["runs"]
    assert run["state"] == "completed" and run["violations"] == []
    assert len(_broker_orders(db)) == 4


def test_the_quote_age_of_the_configuration_applies(db: str, tmp_path: Path) -> None:
    config = tmp_path / "compliance.toml"
    config.write_text("max_price_age_minutes = 0\n")  # no quote is fresh enough
    done = _run(db, "--compliance-config", str(config))
    assert done.exit_code == 1
    assert all(line.startswith("STALE_PRICE: ") for line in done.stderr.strip().splitlines())


def test_a_bad_configuration_is_refused_naming_the_key_and_nothing_is_stored(
    db: str, tmp_path: Path
) -> None:
    config = tmp_path / "compliance.toml"
    config.write_text('restricted = ["TSLA"]\nmax_security_weight = 2\nlimit = 1\n')
    done = _run(db, "--compliance-config", str(config))
    assert done.exit_code == 1
    message = " ".join(done.output.split())
    assert "compliance.toml: max_security_weight: Input should be less than or equal to 1" in (
        message
    )
    assert "limit: Extra inputs are not permitted" in message
    listed = CliRunner().invoke(app, ["runs", "--format", "json", "--db", db])
    assert json.loads(listed.stdout)["runs"] == []
    broken = tmp_path / "broken.toml"
    broken.write_text("restricted = [\n")
    done = _run(db, "--compliance-config", str(broken))
    assert done.exit_code == 1 and "broken.toml:" in done.output


def test_an_account_in_violation_is_held_back_the_others_trade_exit_0(
    db: str, tmp_path: Path
) -> None:
    config = tmp_path / "compliance.toml"
    config.write_text('cannot_trade = ["A2"]\n')
    done = _run(db, "--compliance-config", str(config))
    assert done.exit_code == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    assert run["state"] == "completed_adjusted"
    reason = "blocked by compliance: ACCOUNT_CANNOT_TRADE: account A2 is not allowed to trade"
    assert run["held"] == [{"account": "A2", "reason": reason}]
    assert run["reason"] == "account A2 held back by compliance (ACCOUNT_CANNOT_TRADE)"
    assert [(v["leg"], v["account"]) for v in run["violations"]] == [("sells", "A2")]
    assert done.stderr.strip().splitlines() == [
        "ACCOUNT_CANNOT_TRADE: account A2 is not allowed to trade (account A2, sells leg, "
        f"run {run['id']})"
    ]
    assert {o["account"] for o in _broker_orders(db)} == {"A1"}
    assert {o["reason"] for o in run["orders"] if o["account"] == "A2"} == {reason}
