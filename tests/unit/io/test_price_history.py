"""Price files: what loads, and the errors a user sees for what does not."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rebal.errors import InputError
from rebal.io.price_history import load_many, load_prices, load_shipped
from rebal.io.sheet import parse_float

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared" / "data"
SHILLER = SHARED / "datasets_s-and-p-500" / "shiller_ie_data.csv"
DERIVED = SHARED / "derived" / "us_stock_bond_bill_monthly_returns.csv"


def _write(tmp_path: Path, text: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_wide_and_long_files_load_to_the_same_history(tmp_path: Path) -> None:
    wide = _write(tmp_path, "date,AAA,BBB\n2020-01-02,10,20\n2020-01-03,11,19.5\n", "w.csv")
    long = _write(
        tmp_path,
        "date,symbol,price\n2020-01-02,AAA,10\n2020-01-03,AAA,11\n"
        "2020-01-02,BBB,20\n2020-01-03,BBB,19.5\n",
        "l.csv",
    )
    a, b = load_prices(wide), load_prices(long)
    assert a.symbols == b.symbols == ("AAA", "BBB")
    np.testing.assert_array_equal(a.prices, b.prices)
    np.testing.assert_array_equal(a.dates, b.dates)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("date,A,B\n2020-01-02,1,2\n2020-01-03,,2\n", "prices.csv line 3, column A: missing price"),
        ("date,A\n2020-01-02,1\n2020-01-02,2\n", "line 3, column date: duplicate date 2020-01-02"),
        ("date,A\n2020-01-02,1\n2020-01-03,0\n", "prices.csv line 3, column A: non-positive price"),
        ("date,A\n2020-01-02,1\n2020-01-03,-4\n", "non-positive price -4"),
        ("date,A\n2020-01-03,1\n2020-01-02,2\n", "line 3, column date: dates not sorted"),
        ("date,A\n2020-01-02,1\n2020-13-03,2\n", "line 3, column date: not a date"),
        ("date,A\n2020-01-02,1\n2020-01-03,abc\n", "line 3, column A: not a number"),
        ("date,A,A\n2020-01-02,1,1\n2020-01-03,1,1\n", "line 1, column A: duplicate column A"),
        ("price,A\n2020-01-02,1\n", "first column must be 'date'"),
        (
            "date,symbol,price\n2020-01-02,A,1\n2020-01-02,B,1\n2020-01-03,A,1\n",
            "prices.csv, column B: gap: no price on 1 date(s): 2020-01-03",
        ),
        (
            "date,symbol,price\n2020-01-02,A,1\n2020-01-02,A,2\n",
            "prices.csv line 3, column date: duplicate date 2020-01-02 (also line 2)",
        ),
    ],
    ids=[
        "gap",
        "duplicate",
        "zero",
        "negative",
        "unsorted",
        "bad-date",
        "bad-number",
        "duplicate-column",
        "no-date-column",
        "long-gap",
        "long-duplicate",
    ],
)
def test_bad_files_name_file_line_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(InputError) as caught:
        load_prices(_write(tmp_path, text))
    assert expected in str(caught.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = "date,A,B\n2020-01-02,1,2\n2020-01-03,1,\n2020-01-01,0,2\n"
    with pytest.raises(InputError) as caught:
        load_prices(_write(tmp_path, text))
    assert len(caught.value.problems) == 3


def test_shipped_series_covers_1871_to_2023() -> None:
    history = load_shipped()
    assert history.symbols == ("STOCKS", "BONDS")
    assert str(history.dates[0]) == "1871-01-01"
    assert str(history.dates[-1]) == "2023-09-01"
    assert len(history.dates) == 1833
    np.testing.assert_array_equal(history.prices[0], [1.0, 1.0])


@pytest.mark.skipif(not DERIVED.exists(), reason="reference data ../shared absent")
def test_shipped_returns_match_the_independently_derived_reference() -> None:
    history = load_shipped()
    reference = np.genfromtxt(DERIVED, delimiter=",", skip_header=1, usecols=(1, 2))
    ours = history.prices[1:] / history.prices[:-1] - 1
    np.testing.assert_allclose(ours, reference, atol=6e-9)


@pytest.mark.skipif(not SHILLER.exists(), reason="reference data ../shared absent")
def test_derivation_script_reproduces_the_shipped_file(tmp_path: Path) -> None:
    out = tmp_path / "series.csv"
    script = REPO / "scripts" / "derive_shiller_series.py"
    subprocess.run(
        [sys.executable, str(script), str(SHILLER), str(out)], check=True, capture_output=True
    )
    shipped = REPO / "src" / "rebal" / "data" / "history" / "shiller_us_stock_bond_monthly.csv"
    assert out.read_bytes() == shipped.read_bytes()


def test_a_returns_file_becomes_the_index_it_was_taken_from(tmp_path: Path) -> None:
    shipped = load_shipped()
    returns = shipped.prices[1:] / shipped.prices[:-1] - 1
    rows = zip(shipped.dates[1:], returns, strict=True)
    lines = ["date,stocks,bonds"] + [f"{d},{a:.17g},{b * 100:.17g}%" for d, (a, b) in rows]
    history = load_prices(_write(tmp_path, "\n".join(lines) + "\n"), returns=True)
    # The first row's return is the period before the start: levels begin at 1 on its date.
    np.testing.assert_allclose(history.prices, shipped.prices[1:] / shipped.prices[1], rtol=1e-10)
    assert history.dates[0] == shipped.dates[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("date,A\n2020-01-31,0.01\n2020-02-29,-1\n", "line 3, column A: return -1 loses"),
        ("date,A\n2020-01-31,0.01\n2020-02-29,-120%\n", "return -120% loses everything"),
        ("date,A\n2020-01-31,0.01\n2020-02-29,\n", "line 3, column A: missing return (gap)"),
        ("date,symbol,return\n2020-01-31,A,1%\n2020-01-31,A,2%\n", "duplicate date 2020-01-31"),
    ],
    ids=["minus-100", "below-minus-100-percent", "gap", "long-duplicate"],
)
def test_bad_returns_files_name_line_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(InputError) as caught:
        load_prices(_write(tmp_path, text), returns=True)
    assert expected in str(caught.value)


def test_a_percent_sign_is_not_a_price(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a number"):
        load_prices(_write(tmp_path, "date,A\n2020-01-02,1\n2020-01-03,5%\n"))


LATE_B = "date,A,B\n2020-01-02,10,\n2020-01-03,11,\n2020-01-06,12,20\n2020-01-07,12.5,21\n"


def test_a_symbol_listed_later_loads_and_the_run_starts_where_every_symbol_has_a_price(
    tmp_path: Path,
) -> None:
    history = load_prices(_write(tmp_path, LATE_B))
    assert np.isnan(history.prices[:2, 1]).all()
    assert history.first_prices() == [0, 2]
    common = history.between(None, None)
    assert str(common.dates[0]) == "2020-01-06"
    np.testing.assert_array_equal(common.prices, [[12, 20], [12.5, 21]])
    # Only the symbols a run holds count: A alone starts on the first date.
    assert str(history.select(["A"]).between(None, None).dates[0]) == "2020-01-02"


def test_a_start_before_a_symbol_s_first_price_names_the_symbol_and_its_first_date(
    tmp_path: Path,
) -> None:
    history = load_prices(_write(tmp_path, LATE_B))
    with pytest.raises(ValueError, match="no price on 2020-01-03 for B from 2020-01-06"):
        history.between(date(2020, 1, 3), None)
    assert len(history.between(date(2020, 1, 6), None).dates) == 2


def test_late_symbols_in_the_long_form_and_in_returns(tmp_path: Path) -> None:
    long = _write(
        tmp_path,
        "date,symbol,price\n2020-01-02,A,10\n2020-01-03,A,11\n2020-01-06,A,12\n"
        "2020-01-03,B,5\n2020-01-06,B,6\n",
        "long.csv",
    )
    history = load_prices(long)
    assert history.first_prices() == [0, 1]
    returns = _write(tmp_path, "date,A,B\n2020-01-31,1%,\n2020-02-29,2%,10%\n2020-03-31,0,5%\n")
    levels = load_prices(returns, returns=True).prices
    # Each symbol's index is 1 on its own first date (its first return is before its start).
    np.testing.assert_allclose(levels[:, 0], [1, 1.02, 1.02])
    np.testing.assert_allclose(levels[1:, 1], [1, 1.05])
    assert np.isnan(levels[0, 1])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("date,A,B\n2020-01-02,1,2\n2020-01-03,1,\n2020-01-06,1,2\n", "line 3, column B: missing"),
        ("date,A,B\n2020-01-02,1,\n2020-01-03,1,\n", "column B: no prices in the column"),
    ],
    ids=["gap-after-the-first-price", "empty-column"],
)
def test_a_gap_after_a_symbol_s_first_price_is_still_an_error(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(InputError, match=expected):
        load_prices(_write(tmp_path, text))


def test_several_files_merge_on_their_dates(tmp_path: Path) -> None:
    a = _write(tmp_path, "date,A\n2020-01-02,10\n2020-01-03,11\n2020-01-06,12\n", "a.csv")
    b = _write(tmp_path, "date,symbol,price\n2020-01-03,B,5\n2020-01-06,B,6\n", "b.csv")
    history = load_many([a, b])
    assert history.symbols == ("A", "B")
    assert history.source == "a.csv + b.csv"
    np.testing.assert_array_equal(history.prices[1:], [[11, 5], [12, 6]])
    assert str(history.between(None, None).dates[0]) == "2020-01-03"


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        ("date,A\n2020-01-02,1\n2020-01-03,1\n", "b.csv line 1, column A: A is also in a.csv"),
        (
            "date,B\n2020-01-02,1\n2020-01-06,1\n",
            "b.csv, column B: gap: no price on 1 date(s) other files have: 2020-01-03",
        ),
        ("date,B\n2020-01-02,1\n2020-01-02,1\n", "b.csv line 3, column date: duplicate date"),
    ],
    ids=["symbol-twice", "gap-against-another-file", "a-file-s-own-problem"],
)
def test_several_files_report_what_does_not_fit_together(
    tmp_path: Path, second: str, expected: str
) -> None:
    a = _write(tmp_path, "date,A\n2020-01-02,10\n2020-01-03,11\n2020-01-06,12\n", "a.csv")
    with pytest.raises(InputError) as caught:
        load_many([a, _write(tmp_path, second, "b.csv")])
    assert expected in str(caught.value)


def test_numbers_as_programs_write_floats_load(tmp_path: Path) -> None:
    # pandas writes a small return as 1.5e-05: the exponent is read, as Python reads it.
    text = "date,A,B\n2020-01-31,1e2,+.5\n2020-02-29,1.01E2,0.55\n"
    np.testing.assert_array_equal(
        load_prices(_write(tmp_path, text)).prices, [[100, 0.5], [101, 0.55]]
    )
    returns = "date,A\n2020-01-31,0\n2020-02-29,1.5e-05\n2020-03-31,2e-1%\n"
    levels = load_prices(_write(tmp_path, returns, "r.csv"), returns=True).prices[:, 0]
    np.testing.assert_allclose(levels, [1, 1.000015, 1.000015 * 1.002])


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("nan", "not a number: 'nan'"),
        ("inf", "not a number: 'inf'"),
        ("1_000", "not a number: '1_000'"),
        ("1,5", "not a number: '1,5'"),
        ("1e999", "not a finite number: '1e999'"),
    ],
)
def test_what_is_not_a_price_is_named(tmp_path: Path, cell: str, expected: str) -> None:
    text = f'date,A\n2020-01-02,1\n2020-01-03,"{cell}"\n'
    with pytest.raises(InputError) as caught:
        load_prices(_write(tmp_path, text))
    assert f"prices.csv line 3, column A: {expected}" in str(caught.value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_reads_back_as_written(value: float) -> None:
    # str and repr of a float (1e-05, 1.5e+300, -0.0) and the shortest round trip.
    assert parse_float(repr(value)) == value
    assert parse_float(f" {value:.17g} ") == value
