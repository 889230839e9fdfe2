"""Investment policies: policies.csv read with every problem named by file, line and column,
written back to the same rows, stored by `rebal db import --policies` and exported again."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rebal.cli.main import app
from rebal.domain.ids import AccountId
from rebal.domain.policy import Frequency, InvestmentPolicy, Program, TriggerKind
from rebal.errors import InputError
from rebal.io.policies import policies_text, read_policies

GOOD = """account,program,trigger,frequency,day,band_abs,band_rel,cadence_days,cooldown_days
A1,client_directed,calendar,,,,,14,0
A2,managed,hybrid,on_day,2027-01-15,3,,,5

A3,,threshold,,,,20%,,
"""


def test_a_policies_file_reads_with_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "policies.csv"
    path.write_text(GOOD)
    assert read_policies(path, {"A1", "A2", "A3"}) == [
        InvestmentPolicy(account=AccountId("A1"), program=Program.CLIENT_DIRECTED, cadence_days=14),
        InvestmentPolicy(
            account=AccountId("A2"),
            trigger=TriggerKind.HYBRID,
            frequency=Frequency.ON_DAY,
            day=date(2027, 1, 15),
            band_abs=Decimal("0.03"),
            cooldown_days=5,
        ),
        InvestmentPolicy(
            account=AccountId("A3"), trigger=TriggerKind.THRESHOLD, band_rel=Decimal("0.20")
        ),
    ]


def test_written_policies_read_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "policies.csv"
    path.write_text(GOOD)
    policies = read_policies(path)
    again = tmp_path / "again.csv"
    again.write_text(policies_text(policies))
    assert read_policies(again) == policies
    assert policies_text(read_policies(again)) == again.read_text()


TIERED = """account,trigger,band_abs,band_rel,wide_band_abs,wide_band_rel
A1,tiered,,10,,30
A2,tiered,2,,5,
A3,tiered,,,,
"""


#: Bad wide bands, on the header of TIERED.
WIDE_CELLS = [
    (
        "A1,threshold,,20,,40",
        "line 2, column wide_band_rel: wide_band_rel '40' belongs to a tiered",
    ),
    ("A1,,,,3,", "line 2, column wide_band_abs: wide_band_abs '3' belongs to a tiered trigger"),
    (
        "A1,tiered,,20,,10",
        "line 2, column wide_band_rel: wide_band_rel '10' is narrower than band_rel",
    ),
    (
        "A1,tiered,4,,3,",
        "line 2, column wide_band_abs: wide_band_abs '3' is narrower than band_abs",
    ),
    ("A1,tiered,,,-1,", "line 2, column wide_band_abs: negative wide_band_abs"),
    ("A1,tiered,,,,wide", "line 2, column wide_band_rel: 'wide' is not a number"),
]


@pytest.mark.parametrize(
    ("header", "row", "problem"),
    [
        (GOOD.splitlines()[0], row, problem)
        for row, problem in [
            ("A1,weird,,,,,,,", "line 2, column program: 'weird' is not a valid program"),
            ("A1,,clock,,,,,,", "line 2, column trigger: 'clock' is not a valid trigger"),
            ("A1,,threshold,monthly,,,,,", "line 2, column frequency: frequency 'monthly' belongs"),
            ("A1,,,on_day,,,,,", "line 2, column day: missing day"),
            ("A1,,,,2027-01-01,,,,", "line 2, column day: day '2027-01-01' is given only with"),
            ("A1,,,on_day,2027-13-01,,,,", "line 2, column day: '2027-13-01' is not a valid date"),
            ("A1,,,,,-1,,,", "line 2, column band_abs: negative band_abs"),
            ("A1,,,,,,,0,", "line 2, column cadence_days: zero cadence_days"),
            ("A1,,,,,,,1.5,", "line 2, column cadence_days: '1.5' has more than 0 decimal places"),
            ("A1,,,,,,,,-2", "line 2, column cooldown_days: negative cooldown_days"),
            ("NOPE,,,,,,,,", "line 2, column account: unknown account 'NOPE'"),
            (",managed,,,,,,,", "line 2, column account: missing account id"),
        ]
    ]
    + [(TIERED.splitlines()[0], row, problem) for row, problem in WIDE_CELLS],
)
def test_every_bad_cell_is_named_by_file_line_and_column(
    tmp_path: Path, header: str, row: str, problem: str
) -> None:
    path = tmp_path / "policies.csv"
    path.write_text(header + "\n" + row + "\n")
    with pytest.raises(InputError) as raised:
        read_policies(path, {"A1"})
    assert f"policies.csv {problem}" in str(raised.value)


def test_all_problems_come_together_with_repeats_and_bad_headers(tmp_path: Path) -> None:
    path = tmp_path / "policies.csv"
    path.write_text("account,program,colour\nA1,weird,red\nA1,,blue\n")
    with pytest.raises(InputError) as raised:
        read_policies(path)
    assert "unknown column(s): colour" in str(raised.value)
    path.write_text("account,program\nA1,weird\nA1,\n")
    with pytest.raises(InputError) as raised:
        read_policies(path)
    assert [str(p) for p in raised.value.problems] == [
        "policies.csv line 2, column program: 'weird' is not a valid program (use managed, "
        "client_directed)",
        "policies.csv line 3, column account: duplicate account 'A1' (first on line 2)",
    ]


def test_db_import_policies_stores_them_and_export_writes_them_back(tmp_path: Path) -> None:
    book = {
        "models.csv": "model,symbol,weight\nbalanced,VTI,60\nbalanced,BND,40\n",
        "accounts.csv": "account,model,cash\nA1,balanced,10.00\nA2,balanced,10.00\n"
        "A3,balanced,10.00\n",
        "holdings.csv": "account,symbol,quantity\nA1,VTI,1\n",
        "prices.csv": "symbol,price\nVTI,250.00\nBND,72.50\n",
    }
    for name, text in book.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "policies.csv").write_text(GOOD)
    url = f"sqlite:///{tmp_path / 'rebal.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["db", "init", "--db", url]).exit_code == 0
    files = [f"--{n.removesuffix('.csv')}={tmp_path / n}" for n in book]
    done = runner.invoke(
        app, ["db", "import", *files, "--policies", str(tmp_path / "policies.csv"), "--db", url]
    )
    assert done.exit_code == 0, done.output
    assert "policies        3  3 created, changed or removed" in done.output
    again = runner.invoke(
        app, ["db", "import", "--policies", str(tmp_path / "policies.csv"), "--db", url]
    )
    assert again.exit_code == 0 and "0 created, changed or removed" in again.output
    out = tmp_path / "out"
    assert runner.invoke(app, ["db", "export", "-o", str(out), "--db", url]).exit_code == 0
    assert read_policies(out / "policies.csv") == read_policies(tmp_path / "policies.csv")
    (tmp_path / "bad.csv").write_text("account\nA9\n")
    bad = runner.invoke(app, ["db", "import", "--policies", str(tmp_path / "bad.csv"), "--db", url])
    assert bad.exit_code == 1 and "unknown account 'A9'" in bad.output
    after = tmp_path / "after"  # nothing was written
    assert runner.invoke(app, ["db", "export", "-o", str(after), "--db", url]).exit_code == 0
    assert (after / "policies.csv").read_text() == (out / "policies.csv").read_text()


def test_a_tiered_policy_reads_and_writes_its_wide_bands(tmp_path: Path) -> None:
    path = tmp_path / "policies.csv"
    path.write_text(TIERED)
    policies = read_policies(path)
    assert [(p.band_rel, p.wide_band_rel, p.band_abs, p.wide_band_abs) for p in policies] == [
        (Decimal("0.10"), Decimal("0.30"), None, None),
        (None, None, Decimal("0.02"), Decimal("0.05")),
        (None, None, None, None),
    ]
    again = tmp_path / "again.csv"
    again.write_text(policies_text(policies))
    assert read_policies(again) == policies
    assert again.read_text().splitlines()[0].endswith(",cooldown_days,wide_band_abs,wide_band_rel")


def test_a_policy_record_refuses_a_wide_band_it_cannot_have() -> None:
    with pytest.raises(ValueError, match="belongs to a tiered trigger"):
        InvestmentPolicy(account=AccountId("A1"), wide_band_rel=Decimal("0.4"))
    with pytest.raises(ValueError, match="no narrower than band_abs"):
        InvestmentPolicy(
            account=AccountId("A1"),
            trigger=TriggerKind.TIERED,
            band_abs=Decimal("0.05"),
            wide_band_abs=Decimal("0.04"),
        )
