"""Inputs of a tax-aware proposal: tax lots from the holdings table, and substitute groups.

`rebal propose --tax-aware` reads each holdings row of a taxable account as one tax lot
(`cost_basis`, `acquired`); a taxable holding without them is an input error naming the file
and line, since the tax of selling it cannot be known. Substitute groups (`--substitutes FILE`)
are equivalence groups such as ``VTI,ITOT,SCHB``: funds tracking different indexes of one
market, bought instead of a security whose purchase would create a wash sale or whose loss is
harvested. Nothing here reads the clock; `as_of` is an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from rebal.domain.ids import symbol
from rebal.errors import InputError, Problem
from rebal.io.tables import Tables
from rebal.tax.lots import TaxLot
from rebal.tax.rates import AccountType

SubstituteGroups = tuple[tuple[str, ...], ...]


def check_lots(tables: Tables, as_of: date, holdings_name: str = "holdings") -> None:
    """Raise InputError for every holdings row of a taxable account that is not a usable lot.

    A taxable lot needs `cost_basis` and `acquired`, and must not be acquired after `as_of`.
    """
    holdings = tables.holdings
    kinds = tables.accounts.set_index("account")["type"]
    taxable = holdings["account"].map(kinds).eq(AccountType.TAXABLE.value).to_numpy()
    no_basis = holdings["cost_basis_cents"].isna().to_numpy()
    acquired = holdings["acquired"]
    no_date = acquired.isna().to_numpy()
    late = np.array([d is not None and d > as_of for d in acquired], dtype=bool)
    lines = holdings["line"].to_numpy(dtype=np.int64)
    problems: list[Problem] = []
    for position in map(int, np.flatnonzero(taxable & (no_basis | no_date | late))):
        line = int(lines[position])
        account = holdings["account"].iat[position]
        symbol = holdings["symbol"].iat[position]
        what = f"{symbol} in taxable account {account}"
        if no_basis[position]:
            message = f"{what} has no cost_basis; --tax-aware needs the lot's cost basis"
            problems.append(Problem(holdings_name, line, "cost_basis", message))
        if no_date[position]:
            message = f"{what} has no acquired date; --tax-aware needs it for the holding period"
            problems.append(Problem(holdings_name, line, "acquired", message))
        elif late[position]:
            message = f"{what} was acquired on {acquired.iat[position]}, after the as-of {as_of}"
            problems.append(Problem(holdings_name, line, "acquired", message))
    if problems:
        raise InputError(problems)


class LotIndex:
    """The tax lots of the book, looked up per account and symbol.

    Lot ids are ``SYMBOL-LINE`` (the holdings line of the lot), unique within an account. Rows
    without a cost basis or date (allowed in IRA and Roth accounts) are not lots.
    """

    def __init__(self, holdings: pd.DataFrame) -> None:
        self._rows = holdings.groupby("account", sort=False).indices
        self._symbol = holdings["symbol"].to_numpy()
        self._quantity = holdings["quantity_micro"].to_numpy()
        basis = holdings["cost_basis_cents"]
        self._has_lot = (basis.notna() & holdings["acquired"].notna()).to_numpy()
        self._basis = basis.fillna(0).to_numpy(dtype=np.int64)
        self._acquired = holdings["acquired"].to_numpy()
        self._line = holdings["line"].to_numpy()

    def lots(self, account: str, symbol: str) -> tuple[TaxLot, ...]:
        """The lots of `symbol` held in `account` (empty when none, or without basis)."""
        rows = self._rows.get(account)
        if rows is None:
            return ()
        return tuple(
            TaxLot(
                lot_id=f"{symbol}-{int(self._line[r])}",
                quantity=Decimal(int(self._quantity[r])).scaleb(-6),
                cost_basis=Decimal(int(self._basis[r])).scaleb(-2),
                acquired=self._acquired[r],
            )
            for r in rows
            if self._symbol[r] == symbol and self._has_lot[r]
        )


def parse_substitutes(name: str, lines: Sequence[str]) -> SubstituteGroups:
    """Groups of substitutes, one per line (``VTI,ITOT,SCHB``); ``#`` starts a comment.

    Raises InputError (naming `name` and the line) for a group of fewer than two symbols or a
    symbol in two groups.
    """
    groups: list[tuple[str, ...]] = []
    first_line: dict[str, int] = {}
    problems: list[Problem] = []
    for number, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        symbols = tuple(dict.fromkeys(symbol(s) for s in text.split(",") if s.strip()))
        if len(symbols) < 2:
            problems.append(Problem(name, number, None, f"a group needs two symbols: {text!r}"))
            continue
        for member in symbols:
            if member in first_line:
                message = f"{member} is already in the group on line {first_line[member]}"
                problems.append(Problem(name, number, None, message))
            first_line.setdefault(member, number)
        groups.append(symbols)
    if problems:
        raise InputError(problems)
    return tuple(groups)


def read_substitutes(path: Path) -> SubstituteGroups:
    """Read a substitutes file (`parse_substitutes`); unreadable files are an InputError."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        message = f"file not found: {path}"
    except UnicodeDecodeError:
        message = f"not UTF-8 text: {path}"
    except OSError as exc:
        message = f"cannot read {path}: {exc.strerror or exc}"
    else:
        return parse_substitutes(path.name, text.splitlines())
    raise InputError([Problem(path.name, None, None, message)])


def substitute_slots(tables: Tables, groups: SubstituteGroups) -> pd.DataFrame:
    """(account, symbol) slots an account needs to buy a substitute of what it holds or
    targets: every priced member of the group of such a symbol."""
    members = pd.DataFrame(
        [(g, s) for g, group in enumerate(groups) for s in group], columns=["group", "symbol"]
    )
    priced = members[members["symbol"].isin(set(tables.prices["symbol"]))]
    held = tables.holdings[["account", "symbol"]]
    targeted = tables.accounts[["account", "model"]].merge(tables.models, on="model")[
        ["account", "symbol"]
    ]
    mine = pd.concat([held, targeted])
    in_group = mine.merge(members, on="symbol")[["account", "group"]].drop_duplicates()
    slots = in_group.merge(priced, on="group")[["account", "symbol"]].drop_duplicates()
    return slots.reset_index(drop=True)
