"""Reading the four book CSV files: tolerance of real-world files and the error messages."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rebal.io.csvfiles import read_tables
from rebal.io.tables import InputError, Tables

VALID = {
    "models": "model,symbol,weight\ngrowth,VTI,60\ngrowth,BND,40\n",
    "accounts": "account,model,cash\nA1,growth,100.00\n",
    "holdings": "account,symbol,quantity\nA1,VTI,10\n",
    "prices": "symbol,price\nVTI,250\nBND,70\n",
}


def write_book(tmp_path: Path, **texts: str | bytes) -> list[Path]:
    """Write the four files (valid defaults, overridden by `texts`) and return their paths."""
    paths = []
    for table, default in VALID.items():
        path = tmp_path / f"{table}.csv"
        content = texts.get(table, default)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
        paths.append(path)
    return paths


def read(tmp_path: Path, **texts: str | bytes) -> Tables:
    return read_tables(*write_book(tmp_path, **texts))


def problems(tmp_path: Path, **texts: str | bytes) -> list[str]:
    """The lines of the InputError raised for the book."""
    with pytest.raises(InputError) as caught:
        read(tmp_path, **texts)
    return str(caught.value).splitlines()


def test_valid_book_reads(tmp_path: Path) -> None:
    tables = read(tmp_path)
    assert list(tables.models["symbol"]) == ["VTI", "BND"]
    assert list(tables.accounts["cash_cents"]) == [10000]
    assert list(tables.holdings["quantity_micro"]) == [10_000_000]
    assert list(tables.prices["price"]) == [250.0, 70.0]


def test_bom_whitespace_crlf_and_blank_lines_are_tolerated(tmp_path: Path) -> None:
    models = "\ufeff model , weight ,symbol\r\n growth , 60 % , vti \r\n\r\ngrowth,40,bnd\r\n\r\n"
    tables = read(tmp_path, models=models)
    assert list(tables.models["model"]) == ["growth", "growth"]
    assert list(tables.models["symbol"]) == ["VTI", "BND"]
    assert list(tables.models["weight"]) == [0.6, 0.4]


def test_line_numbers_count_blank_lines_and_quoted_line_breaks(tmp_path: Path) -> None:
    accounts = 'account,model,cash,household\n\nA1,growth,1,"two\nlines"\nA2,growth,x,\n'
    assert problems(tmp_path, accounts=accounts) == [
        "accounts.csv line 5, column cash: 'x' is not a number"
    ]


def test_holdings_keep_their_source_line(tmp_path: Path) -> None:
    holdings = "account,symbol,quantity\n\nA1,VTI,1\nA1,VTI,2\n"
    assert list(read(tmp_path, holdings=holdings).holdings["line"]) == [3, 4]


#: A holdings file with a leading blank line, padded header, CRLF and LF endings, blank and
#: comma-only lines, and (at lines 5, 7, 8) a short row, a bad number and a long row.
ODD_HOLDINGS = [
    "\n",
    " account , symbol,quantity,cost_basis\r\n",
    "A1,vti,1.5,10\r\n",
    ",,,\n",
    "A1,VTI,2\n",
    "   \n",
    "A1,BND,x,\n",
    "A1,VTI,1,2,3\n",
    "A1,BND,3,\n",
    "\n",
]


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "quoted"])
def test_files_with_and_without_quotes_read_the_same(tmp_path: Path, quoted: bool) -> None:
    def text(lines: list[str]) -> str:
        joined = "".join(lines)
        return joined.replace("BND", '"BND"') if quoted else joined

    assert problems(tmp_path, holdings=text(ODD_HOLDINGS)) == [
        "holdings.csv line 5: row has 3 fields but the header has 4",
        "holdings.csv line 7, column quantity: 'x' is not a number",
        "holdings.csv line 8: row has 5 fields but the header has 4",
    ]
    fixed = ODD_HOLDINGS.copy()
    fixed[4], fixed[6], fixed[7] = "A1,VTI,2,\n", "A1,BND,4,\n", "A1,VTI,1,\n"
    holdings = read(tmp_path, holdings=text(fixed)).holdings
    assert holdings["line"].tolist() == [3, 5, 7, 8, 9]
    assert holdings["symbol"].tolist() == ["VTI", "VTI", "BND", "VTI", "BND"]
    assert holdings["quantity_micro"].tolist() == [
        1_500_000,
        2_000_000,
        4_000_000,
        1_000_000,
        3_000_000,
    ]
    assert holdings["cost_basis_cents"].tolist() == [1000, pd.NA, pd.NA, pd.NA, pd.NA]


@pytest.mark.parametrize(
    ("table", "text", "expected"),
    [
        pytest.param(
            "models",
            "model,symbol\ngrowth,VTI\n",
            "models.csv: missing required column(s): weight",
            id="missing-column",
        ),
        pytest.param(
            "prices",
            "symbol,price,currency\nVTI,250,USD\nBND,70,USD\n",
            "prices.csv: unknown column(s): currency; allowed: symbol, price",
            id="extra-column",
        ),
        pytest.param(
            "accounts",
            "account,model,cash,cash\nA1,growth,1,1\n",
            "accounts.csv: repeated column(s): cash",
            id="repeated-column",
        ),
        pytest.param(
            "accounts",
            "account,model,cash\nA1,growth,abc\n",
            "accounts.csv line 2, column cash: 'abc' is not a number",
            id="not-a-number",
        ),
        pytest.param(
            "accounts",
            'account,model,cash\nA1,growth,"1,000.00"\n',
            "accounts.csv line 2, column cash: '1,000.00' is not a number "
            "(use plain decimal notation like 1234.56)",
            id="thousands-separator",
        ),
        pytest.param(
            "accounts",
            "account,model,cash\nA1,growth,\n",
            "accounts.csv line 2, column cash: missing value (a number is required)",
            id="empty-required-number",
        ),
        pytest.param(
            "accounts",
            "account,model,cash\nA1,growth,10.005\n",
            "accounts.csv line 2, column cash: '10.005' has more than 2 decimal places "
            "(an amount below a cent: money is kept to whole cents; round it to 2 decimals)",
            id="cash-three-decimals",
        ),
        pytest.param(
            "holdings",
            "account,symbol,quantity,cost_basis\nA1,VTI,1,0.004\n",
            "holdings.csv line 2, column cost_basis: '0.004' has more than 2 decimal places "
            "(an amount below a cent: money is kept to whole cents; round it to 2 decimals)",
            id="cost-basis-below-a-cent",
        ),
        pytest.param(
            "models",
            "model,symbol,weight\ngrowth,VTI,0.6\ngrowth,BND,0.4\n",
            "models.csv line 2, column weight: weights of model 'growth' sum to 1%, not 100% "
            "(weights are percent: did you mean 60 for 0.6?)",
            id="weights-as-fractions",
        ),
        pytest.param(
            "models",
            "model,symbol,weight\ngrowth,VTI,0%\ngrowth,BND,0.25%\ngrowth,X,0.75\n",
            "models.csv line 2, column weight: weights of model 'growth' sum to 1%, not 100% "
            "(weights are percent: did you mean 25 for 0.25?)",
            id="weights-as-fractions-first-nonzero",
        ),
        pytest.param(
            "prices",
            "symbol;price\nVTI;250\nBND;70\n",
            "prices.csv: missing required column(s): symbol, price (the header is one column, "
            "'symbol;price': the file looks ';'-separated; rebal reads comma-separated files)",
            id="semicolon-separated",
        ),
        pytest.param(
            "accounts",
            "account,model,cash\nA1,growth,1\nA1,growth,2\n",
            "accounts.csv line 3, column account: duplicate account 'A1' (first on line 2)",
            id="duplicate-account",
        ),
        pytest.param(
            "accounts",
            "account,model,cash\nA1,value,1\n",
            "accounts.csv line 2, column model: unknown model 'value' (not in models.csv)",
            id="unknown-model",
        ),
        pytest.param(
            "accounts",
            "account,model,cash,can_trade\nA1,growth,1,maybe\n",
            "accounts.csv line 2, column can_trade: 'maybe' is not a boolean "
            "(use true/false, yes/no or 1/0)",
            id="bad-boolean",
        ),
        pytest.param(
            "accounts",
            "account,model,cash,type\nA1,growth,1,401k\n",
            "accounts.csv line 2, column type: '401k' is not a valid account type "
            "(use taxable, ira, roth)",
            id="bad-type",
        ),
        pytest.param(
            "holdings",
            "account,symbol,quantity\nA1,VTI,-3\n",
            "holdings.csv line 2, column quantity: negative quantity '-3' (quantity must be > 0)",
            id="negative-quantity",
        ),
        pytest.param(
            "holdings",
            "account,symbol,quantity\nA1,VTI,0.000\n",
            "holdings.csv line 2, column quantity: zero quantity '0.000' (quantity must be > 0)",
            id="zero-quantity",
        ),
        pytest.param(
            "holdings",
            "account,symbol,quantity\nA1,VTI,1.0000000001\n",
            "holdings.csv line 2, column quantity: '1.0000000001' has more than 9 decimal places",
            id="quantity-ten-decimals",
        ),
        pytest.param(
            "holdings",
            "account,symbol,quantity\nA9,VTI,1\n",
            "holdings.csv line 2, column account: unknown account 'A9' (not in accounts.csv)",
            id="unknown-account",
        ),
        pytest.param(
            "holdings",
            "account,symbol,quantity\nA1,cash,1\n",
            "holdings.csv line 2, column symbol: CASH cannot be held as a position; "
            "put cash in the accounts table",
            id="cash-holding",
        ),
        pytest.param(
            "holdings",
            "account,symbol,quantity,acquired\nA1,VTI,1,2024-02-30\n",
            "holdings.csv line 2, column acquired: '2024-02-30' is not a valid date "
            "(use YYYY-MM-DD)",
            id="bad-date",
        ),
        pytest.param(
            "holdings",
            "account,symbol,quantity,acquired\nA1,VTI,1,03/01/2024\n",
            "holdings.csv line 2, column acquired: '03/01/2024' is not a valid date "
            "(use YYYY-MM-DD)",
            id="non-iso-date",
        ),
        pytest.param(
            "holdings",
            "account,symbol,quantity,cost_basis\nA1,VTI,1,-5\n",
            "holdings.csv line 2, column cost_basis: negative cost basis '-5' "
            "(cost basis must be >= 0)",
            id="negative-cost-basis",
        ),
        pytest.param(
            "holdings",
            "account,symbol,quantity,cost_basis\nA1,VTI,1,5\nA1,vti,1.0,5.00\n",
            "holdings.csv line 3: duplicate of line 2 (all columns equal)",
            id="duplicate-holding",
        ),
        pytest.param(
            "holdings",
            "account,symbol,quantity\nA1,VTI\n",
            "holdings.csv line 2: row has 2 fields but the header has 3",
            id="short-row",
        ),
        pytest.param(
            "prices",
            "symbol,price\nVTI,0\nBND,70\n",
            "prices.csv line 2, column price: zero price '0' (price must be > 0)",
            id="zero-price",
        ),
        pytest.param(
            "prices",
            "symbol,price\nVTI,-250\nBND,70\n",
            "prices.csv line 2, column price: negative price '-250' (price must be > 0)",
            id="negative-price",
        ),
        pytest.param(
            "prices",
            "symbol,price\nVTI,inf\nBND,70\n",
            "prices.csv line 2, column price: 'inf' is not a number",
            id="infinite-price",
        ),
        pytest.param(
            "prices",
            "symbol,price\nVTI,NaN\nBND,70\n",
            "prices.csv line 2, column price: 'NaN' is not a number",
            id="nan-price",
        ),
        pytest.param(
            "prices",
            "symbol,price\nVTI,250\nBND,70\nvti,251\n",
            "prices.csv line 4, column symbol: duplicate symbol 'VTI' (first on line 2)",
            id="duplicate-price",
        ),
        pytest.param(
            "models",
            "model,symbol,weight\ngrowth,VTI,60\ngrowth,BND,39.5\n",
            "models.csv line 2, column weight: weights of model 'growth' sum to 99.5%, not 100%",
            id="weights-not-100",
        ),
        pytest.param(
            "models",
            "model,symbol,weight\ngrowth,VTI,60\ngrowth,BND,40\ngrowth,vti,0\n",
            "models.csv line 4, column symbol: duplicate symbol 'VTI' in model 'growth' "
            "(first on line 2)",
            id="duplicate-model-symbol",
        ),
        pytest.param(
            "models",
            "model,symbol,weight\ngrowth,VTI,60\ngrowth,BND,-40\n",
            "models.csv line 3, column weight: negative weight '-40' (weight must be >= 0)",
            id="negative-weight",
        ),
        pytest.param(
            "models",
            "model,symbol,weight,band_abs,rail_abs\ngrowth,VTI,60,5,6\ngrowth,BND,40,,\n",
            "models.csv line 2, column rail_abs: rail '6' is wider than its band_abs '5'",
            id="rail-wider-than-band",
        ),
        pytest.param(
            "prices",
            "",
            "prices.csv: file is empty (no header line): {dir}/prices.csv",
            id="empty-file",
        ),
        pytest.param(
            "prices",
            b"symbol,price\nVTI,\xff\n",
            "prices.csv line 2: not UTF-8 text: {dir}/prices.csv",
            id="not-utf8",
        ),
    ],
)
def test_bad_input_is_reported_with_file_line_and_problem(
    tmp_path: Path, table: str, text: str | bytes, expected: str
) -> None:
    assert problems(tmp_path, **{table: text}) == [expected.format(dir=tmp_path)]


def test_missing_file_is_reported_with_its_path(tmp_path: Path) -> None:
    models, accounts, holdings, _ = write_book(tmp_path)
    missing = tmp_path / "nowhere" / "prices.csv"
    with pytest.raises(InputError) as caught:
        read_tables(models, accounts, holdings, missing)
    assert str(caught.value) == f"prices.csv: file not found: {missing}"


def test_all_problems_in_all_files_are_reported_together_in_order(tmp_path: Path) -> None:
    lines = problems(
        tmp_path,
        prices="symbol,price\nVTI,0\nBND,x\n",
        holdings="account,symbol,quantity,note\nA1,VTI,-1,\nA2,BND,1,\n",
        models="model,symbol,weight\ngrowth,VTI,60\ngrowth,BND,30\n",
        accounts="account,model,cash\nA1,growth,abc\n",
    )
    assert lines == [
        "models.csv line 2, column weight: weights of model 'growth' sum to 90%, not 100%",
        "accounts.csv line 2, column cash: 'abc' is not a number",
        "holdings.csv: unknown column(s): note; allowed: account, symbol, quantity, "
        "cost_basis, acquired",
        "holdings.csv line 2, column quantity: negative quantity '-1' (quantity must be > 0)",
        "holdings.csv line 3, column account: unknown account 'A2' (not in accounts.csv)",
        "prices.csv line 2, column price: zero price '0' (price must be > 0)",
        "prices.csv line 3, column price: 'x' is not a number",
    ]


def test_more_than_fifty_problems_are_summarised(tmp_path: Path) -> None:
    holdings = "account,symbol,quantity\n" + "A1,VTI,0\n" * 60
    with pytest.raises(InputError) as caught:
        read(tmp_path, holdings=holdings)
    assert len(caught.value.problems) == 60
    lines = str(caught.value).splitlines()
    assert len(lines) == 51
    assert lines[-1] == "... and 10 more"
    assert lines[49].startswith("holdings.csv line 51, column quantity: zero quantity")


def test_unreadable_file_is_reported_with_its_path(tmp_path: Path) -> None:
    models, accounts, _, prices = write_book(tmp_path)
    directory = tmp_path / "holdings.csv.d"
    directory.mkdir()
    with pytest.raises(InputError) as caught:
        read_tables(models, accounts, directory, prices)
    assert str(caught.value) == f"holdings.csv.d: cannot read {directory}: Is a directory"
