"""The transactions CSV of `rebal wash-sales`: optional columns, price or amount, problems."""

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from rebal.errors import InputError
from rebal.tax.rates import AccountType
from rebal.tax.transactions import read_transactions
from rebal.tax.wash_sales import Side, Transaction


def read(tmp_path: Path, text: str) -> list[Transaction]:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    return read_transactions(path)


def test_minimal_columns_default_household_and_type(tmp_path: Path) -> None:
    (trade,) = read(tmp_path, "\ufeffDate,Account,Symbol,Side,Quantity,Amount\n"
                              "2025-01-02,acc,VTI,BUY,\"1,000\",\"10,000.10\"\n")  # fmt: skip
    assert (trade.line, trade.trade_date, trade.household, trade.account_type) == (
        2,
        date(2025, 1, 2),
        "acc",
        AccountType.TAXABLE,
    )
    assert (trade.side, trade.quantity) == (Side.BUY, Decimal(1000))
    assert trade.amount == Decimal("10000.10")


def test_price_times_quantity_and_blank_lines(tmp_path: Path) -> None:
    trades = read(
        tmp_path,
        "date,account,household,account_type,symbol,side,quantity,price,lot_id\n\n"
        "2025-01-02,ira1,h,IRA,VTI,buy,2.5,100.10,x\n",
    )
    assert [(t.line, t.amount, t.account_type, t.lot_id) for t in trades] == [
        (3, Decimal("250.250"), AccountType.IRA, "x")
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file is empty"),
        ("date,account,symbol,side,quantity,price,colour\n", "unknown column(s): colour"),
        ("date,account,symbol,side,quantity,price\n", "no transactions after the header"),
        (
            "date,account,symbol,side,quantity,price,amount\n2025-01-02,a,X,buy,1,5,5\n",
            "line 2, column amount: give price or amount, not both",
        ),
        (
            "date,account,account_type,symbol,side,quantity,price\n2025-01-02,a,401k,X,buy,1,5\n",
            "line 2, column account_type: '401k' is not taxable, ira or roth",
        ),
        (
            "date,account,symbol,side,quantity,price\n2025-01-02,,X,buy,1,-5\n",
            "line 2, column account: is empty",
        ),
    ],
)
def test_problems_name_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        read(tmp_path, text)
    assert message in str(caught.value)
