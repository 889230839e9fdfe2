"""`rebal wash-sales`: the documented CSV format in, Form 8949 lines / JSON out, clear errors."""

import csv
import io
import json
from pathlib import Path

from typer.testing import CliRunner

from rebal.cli.main import app

runner = CliRunner()
HISTORY = """date,account,household,account_type,symbol,side,quantity,price,lot_id
2025-01-06,joint,smith,taxable,VTI,buy,100,10.00,a
2025-03-10,joint,smith,taxable,VTI,sell,100,7.50,a
2025-03-20,ira,smith,ira,VTI,buy,40,8.00,
2025-03-21,spouse,smith,taxable,ITOT,buy,60,8.00,
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "history.csv"
    path.write_text(text)
    return path


def test_json_reports_household_wash_sales(tmp_path: Path) -> None:
    path = write(tmp_path, HISTORY)
    args = ["--transactions", str(path), "--format", "json", "--identical", "VTI,ITOT"]
    result = runner.invoke(app, ["wash-sales", *args])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["total_disallowed"] == 250.0
    assert doc["permanently_disallowed"] == 100.0  # the 40 shares bought in the IRA
    assert [(w["replacement_account"], w["disallowed"]) for w in doc["wash_sales"]] == [
        ("ira", 100.0),
        ("spouse", 150.0),
    ]
    spouse_lot = next(lot for lot in doc["open_lots"] if lot["account"] == "spouse")
    assert spouse_lot["basis"] == 630.0  # 480 + 150 disallowed
    assert doc["accounts"] == [
        {
            "household": "smith",
            "account": "joint",
            "realized_st": 0.0,
            "realized_lt": 0.0,
            "disallowed": 250.0,
            "permanently_disallowed": 100.0,
        }
    ]


def test_csv_is_form_8949_lines_with_exact_cents(tmp_path: Path) -> None:
    path = write(tmp_path, HISTORY)
    result = runner.invoke(app, ["wash-sales", "--transactions", str(path), "--format", "csv"])
    assert result.exit_code == 0, result.output
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert (row["adjustment_code"], row["adjustment"], row["gain"]) == ("W", "100.00", "-150.00")


def test_table_output_to_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, HISTORY)
    out = tmp_path / "report.txt"
    result = runner.invoke(app, ["wash-sales", "--transactions", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "Wash sales" in text and "lost for good" in text


def test_bad_rows_are_all_named_and_exit_non_zero(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "date,account,symbol,side,quantity,price\n"
        "2025-13-01,a,X,buy,10,5\n"
        "2025-01-01,a,X,hold,-1,abc\n",
    )
    result = runner.invoke(app, ["wash-sales", "--transactions", str(path)])
    assert result.exit_code == 1
    assert "history.csv line 2, column date: '2025-13-01' is not a date" in result.stderr
    assert "history.csv line 3, column side: 'hold' is not buy or sell" in result.stderr
    assert "line 3, column quantity: must be positive" in result.stderr
    assert result.stdout == ""


def test_selling_more_than_held_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "date,account,symbol,side,quantity,amount\n2025-01-02,a,X,sell,5,50\n")
    result = runner.invoke(app, ["wash-sales", "--transactions", str(path)])
    assert result.exit_code == 1
    assert "history.csv line 2: selling 5 X in a: cannot sell 5: only 0 held" in result.stderr


def test_missing_columns_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path, "date,account,symbol,quantity\n2025-01-02,a,X,5\n")
    result = runner.invoke(app, ["wash-sales", "--transactions", str(path)])
    assert result.exit_code == 1
    assert "missing column(s): side, price or amount" in result.stderr
    result = runner.invoke(app, ["wash-sales", "--transactions", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1
    assert "file not found" in result.stderr


def test_symbols_are_the_same_security_in_any_case(tmp_path: Path) -> None:
    """`vti` bought and `VTI` sold are one position: the sale relieves the lot, the buy-back
    within 30 days washes the loss."""
    history = HISTORY.replace(",VTI,buy,100", ",vti,buy,100").replace(
        ",VTI,buy,40", ", Vti ,buy,40"
    )
    path = write(tmp_path, history)
    result = runner.invoke(app, ["wash-sales", "--transactions", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [w["replacement_account"] for w in doc["wash_sales"]] == ["ira"]
    assert doc["total_disallowed"] == 100.0


def _wash_json(tmp_path: Path, history: str) -> dict:
    result = runner.invoke(
        app, ["wash-sales", "--transactions", str(write(tmp_path, history)), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout, parse_float=str)  # money as its exact text


def test_a_history_under_way_starts_from_opening_lots(tmp_path: Path) -> None:
    """An opening lot carries its holding period (`acquired` before its trade date) and its
    basis; shares flagged as an earlier wash sale's replacement do not replace again."""
    doc = _wash_json(
        tmp_path,
        "date,account,household,symbol,side,quantity,price,lot_id,acquired,replacement\n"
        "2025-01-06,joint,smith,VTI,buy,100,10.00,a,2023-06-01,\n"
        "2025-02-20,joint,smith,VTI,buy,30,8.00,r,,true\n"
        "2025-03-10,joint,smith,VTI,sell,100,7.50,a,,\n"
        "2025-03-21,spouse,smith,VTI,buy,60,8.00,s,,\n",
    )
    (sale,) = doc["disposals"]
    assert (sale["acquired"], sale["term"]) == ("2023-06-01", "long")  # carried, not 2025-01-06
    (wash,) = doc["wash_sales"]  # lot r, bought 18 days before the sale and held, is not used
    assert (wash["sale_lot"], wash["replacement_lot"], wash["quantity"]) == ("a", "s", "60")
    assert wash["disallowed"] == "150.00"
    assert "sale_line" not in wash and "replacement_line" not in wash
    lots = {lot["lot_id"]: lot for lot in doc["open_lots"]}
    assert lots["r"]["basis"] == "240.00" and lots["r"]["replacement"] is True
    assert (lots["s"]["basis"], lots["s"]["acquired"]) == ("630.00", "2023-06-12")


def test_without_the_flag_the_shares_replace(tmp_path: Path) -> None:
    doc = _wash_json(
        tmp_path,
        "date,account,symbol,side,quantity,price,lot_id\n"
        "2025-02-01,joint,VTI,buy,30,8.00,r\n"
        "2025-02-02,joint,VTI,buy,100,10.00,a\n"
        "2025-03-01,joint,VTI,sell,100,7.50,a\n",
    )
    assert [(w["sale_lot"], w["replacement_lot"]) for w in doc["wash_sales"]] == [("a", "r")]


def test_a_split_replacement_part_names_the_lot_it_came_from(tmp_path: Path) -> None:
    doc = _wash_json(
        tmp_path,
        "date,account,symbol,side,quantity,price,lot_id\n"
        "2025-01-06,joint,VTI,buy,10,10.00,a\n"
        "2025-03-10,joint,VTI,sell,10,7.00,a\n"
        "2025-03-20,joint,VTI,buy,25,7.10,b\n",
    )
    (wash,) = doc["wash_sales"]
    assert (wash["replacement_lot"], wash["disallowed"]) == ("b.w1", "30.00")
    lots = {lot["lot_id"]: lot for lot in doc["open_lots"]}
    assert lots["b.w1"]["split_from"] == "b" and lots["b.w1"]["quantity"] == "10"
    assert lots["b.w1"]["basis"] == "101.00"  # 71.00 + 30.00 disallowed
    assert lots["b"]["split_from"] is None and lots["b"]["quantity"] == "15"


def test_opening_lot_columns_are_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "date,account,symbol,side,quantity,price,acquired,replacement\n"
        "2025-01-06,a,X,buy,10,5,2025-02-01,\n"
        "2025-01-07,a,X,sell,1,5,2024-01-01,yes\n"
        "2025-01-08,a,X,buy,1,5,,maybe\n",
    )
    result = runner.invoke(app, ["wash-sales", "--transactions", str(path)])
    assert result.exit_code == 1
    stderr = " ".join(result.stderr.split())  # the console may wrap long lines
    assert "line 2, column acquired: 2025-02-01 is after the trade date 2025-01-06" in stderr
    assert "line 3, column acquired: is for a buy (an opening lot), not a sell" in stderr
    assert "line 3, column replacement: is for a buy" in stderr
    assert "line 4, column replacement: 'maybe' is not true or false" in stderr
