"""Holdings quantities with up to 9 decimals (broker exports of fractional shares) are read
exactly: the core's whole micro-shares plus the nano-shares below them, kept at the edge."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebal.domain.money import from_micro_nano
from rebal.io.book_records import book_snapshot, book_tables, too_many_shares
from rebal.io.tables import InputError, Tables, validate_tables

AT = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)


def _tables(*quantities: str) -> Tables:
    return validate_tables(
        pd.DataFrame({"model": ["m"], "symbol": ["VTI"], "weight": ["100"]}),
        pd.DataFrame({"account": ["a1"], "model": ["m"], "cash": ["0"]}),
        pd.DataFrame({"account": "a1", "symbol": "VTI", "quantity": list(quantities)}),
        pd.DataFrame({"symbol": ["VTI"], "price": ["10"]}),
    )


def _held(tables: Tables) -> list[Decimal]:
    h = tables.holdings
    return [
        from_micro_nano(m, r)
        for m, r in zip(h["quantity_micro"], h["quantity_rest_nano"], strict=True)
    ]


def test_nine_decimals_are_kept_exactly_beside_the_micro_shares_the_core_trades() -> None:
    tables = _tables("1.123456789", "340000000000.123456789", "0.000000001", "2.50", ".0000005")

    assert tables.holdings["quantity_micro"].tolist() == [
        1_123_456,
        340_000_000_000_123_456,
        0,
        2_500_000,
        0,
    ]
    assert tables.holdings["quantity_rest_nano"].tolist() == [789, 789, 1, 0, 500]
    assert _held(tables) == [
        Decimal("1.123456789"),
        Decimal("340000000000.123456789"),
        Decimal("0.000000001"),
        Decimal("2.5"),
        Decimal("0.0000005"),
    ]


@pytest.mark.parametrize(
    ("quantity", "problem"),
    [
        ("1.0000000001", "'1.0000000001' has more than 9 decimal places"),
        ("0.0000000000", "zero quantity '0.0000000000' (quantity must be > 0)"),
        ("-0.000000001", "negative quantity '-0.000000001' (quantity must be > 0)"),
        ("1000000000000", "'1000000000000' is too large"),
    ],
)
def test_what_cannot_be_held_exactly_is_refused(quantity: str, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        _tables(quantity)
    assert [p.message for p in caught.value.problems] == [problem]


def test_holdings_differing_below_the_micro_share_are_not_duplicates() -> None:
    assert len(_tables("1.000000001", "1.000000002").holdings) == 2
    with pytest.raises(InputError, match="duplicate of line 2"):
        _tables("1.000000001", "1.0000000010")


_QUANTITY = st.decimals(
    min_value=Decimal("0.000000001"), max_value=Decimal("999999999999.999999999"), places=9
)


@settings(deadline=None, max_examples=30)
@given(st.lists(_QUANTITY, min_size=1, max_size=40, unique=True))
def test_any_quantity_of_up_to_nine_decimals_reads_back_exactly(quantities: list[Decimal]) -> None:
    tables = _tables(*(format(q, "f") for q in quantities))
    assert _held(tables) == quantities
    for micro, quantity in zip(tables.holdings["quantity_micro"], quantities, strict=True):
        assert Decimal(int(micro)).scaleb(-6) <= quantity  # the core never holds more


def test_the_store_path_keeps_nine_decimals_through_the_files_and_back() -> None:
    snapshot = book_snapshot(_tables("10.123456789", "0.000000001"), AT)
    texts = book_tables(snapshot)
    assert texts["holdings.csv"].splitlines()[1:] == [
        "a1,VTI,10.123456789,,",
        "a1,VTI,0.000000001,,",
    ]

    frames = [
        pd.read_csv(io.StringIO(texts[name]), dtype=str, keep_default_na=False)
        for name in ("models.csv", "accounts.csv", "holdings.csv", "prices.csv")
    ]
    assert book_snapshot(validate_tables(*frames), AT).holdings == snapshot.holdings


def test_a_holding_the_store_cannot_hold_is_named() -> None:
    problems = too_many_shares(_tables("1", "1000000000.5", "999999999.999999999"), "h.csv", 10**9)
    assert [str(p) for p in problems] == [
        "h.csv line 3, column quantity: 1000000000.5 shares is too many for the store "
        "(fewer than 1,000,000,000 shares a holding)"
    ]
