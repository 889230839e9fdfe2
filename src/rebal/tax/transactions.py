"""Read a transaction history CSV for the wash-sale calculator.

Format (UTF-8, header line first, columns in any order, one trade per line, in the order the
trades happened — the order matters for several trades on one day):

=============  ========  ======================================================================
column         required  meaning
=============  ========  ======================================================================
date           yes       trade date, ``YYYY-MM-DD``
account        yes       account id
household      no        household the account belongs to (default: the account itself);
                         wash sales are found across all accounts of a household
account_type   no        ``taxable`` (default), ``ira`` or ``roth``
symbol         yes       security symbol
side           yes       ``buy`` or ``sell``
quantity       yes       shares, positive (fractions allowed)
price          one of    price per share (the trade value is quantity × price) ...
amount         the two   ... or the exact trade value (cost of a buy, proceeds of a sell);
                         give one of them on each line, not both
lot_id         no        a buy: the id of the lot it creates; a sell: the lot it sells
                         (specific identification; empty: oldest lots first)
acquired       no        a buy only: the lot's holding period starts on this date, before the
                         trade date (an opening lot carried from an earlier history, with its
                         carried basis as the amount); empty: the trade date
replacement    no        a buy only: ``true`` when the shares were already used as replacement
                         shares by an earlier wash sale (they cannot replace again); ``false``
                         or empty otherwise
=============  ========  ======================================================================

Every problem in the file is collected and raised together as one `InputError` naming the file,
line and column, so the file can be fixed in one pass.
"""

import csv
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from rebal.domain.ids import symbol
from rebal.errors import InputError, Problem
from rebal.tax.rates import AccountType
from rebal.tax.wash_sales import Side, Transaction

REQUIRED = ("date", "account", "symbol", "side", "quantity")
OPTIONAL = ("household", "account_type", "price", "amount", "lot_id", "acquired", "replacement")
FLAGS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False, "": False}


def read_transactions(path: Path) -> list[Transaction]:
    """Parse the history in `path`; raise InputError listing every problem found."""
    name = path.name
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return parse_transactions(name, _records(handle.read().splitlines(keepends=True)))
    except FileNotFoundError:
        message = f"file not found: {path}"
    except UnicodeDecodeError:
        message = f"not UTF-8 text: {path}"
    except IsADirectoryError:
        message = f"is a directory, not a file: {path}"
    except OSError as exc:
        message = f"cannot read {path}: {exc.strerror or exc}"
    except csv.Error as exc:
        message = f"not valid CSV: {exc}"
    raise InputError([Problem(name, None, None, message)])


def _records(lines: list[str]) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the line number each starts on (blank lines skipped)."""
    reader = csv.reader(lines)
    end = 0
    for record in reader:
        start, end = end + 1, reader.line_num
        if any(cell.strip() for cell in record):
            yield start, record


def parse_transactions(name: str, records: Iterator[tuple[int, list[str]]]) -> list[Transaction]:
    """Turn (line, cells) records, the first being the header, into transactions."""
    first = next(records, None)
    if first is None:
        raise InputError([Problem(name, None, None, "file is empty (no header line)")])
    header = [cell.strip().lower() for cell in first[1]]
    problems: list[Problem] = []
    missing = [column for column in REQUIRED if column not in header]
    if "price" not in header and "amount" not in header:
        missing.append("price or amount")
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if missing:
        problems.append(Problem(name, first[0], None, f"missing column(s): {', '.join(missing)}"))
    if unknown:
        problems.append(Problem(name, first[0], None, f"unknown column(s): {', '.join(unknown)}"))
    if problems:
        raise InputError(problems)
    trades: list[Transaction] = []
    for line, record in records:
        if len(record) != len(header):
            message = f"row has {len(record)} fields but the header has {len(header)}"
            problems.append(Problem(name, line, None, message))
            continue
        row = {column: cell.strip() for column, cell in zip(header, record, strict=True)}
        trade = _trade(name, line, row, problems)
        if trade is not None:
            trades.append(trade)
    if problems:
        raise InputError(problems)
    if not trades:
        raise InputError([Problem(name, None, None, "no transactions after the header")])
    return trades


def _trade(
    name: str, line: int, row: dict[str, str], problems: list[Problem]
) -> Transaction | None:
    """One row as a transaction, or None after recording its problems."""
    before = len(problems)

    def bad(column: str, message: str) -> None:
        problems.append(Problem(name, line, column, message))

    for column in REQUIRED:
        if not row[column]:
            bad(column, "is empty")
    trade_date = None
    if row["date"]:
        try:
            trade_date = date.fromisoformat(row["date"])
        except ValueError:
            bad("date", f"{row['date']!r} is not a date (YYYY-MM-DD)")
    side = None
    if row["side"]:
        try:
            side = Side(row["side"].lower())
        except ValueError:
            bad("side", f"{row['side']!r} is not buy or sell")
    account_type = AccountType.TAXABLE
    if row.get("account_type"):
        try:
            account_type = AccountType(row["account_type"].lower())
        except ValueError:
            bad("account_type", f"{row['account_type']!r} is not taxable, ira or roth")
    quantity = _decimal(row["quantity"], "quantity", bad, positive=True)
    price_text, amount_text = row.get("price", ""), row.get("amount", "")
    amount = None
    if price_text and amount_text:
        bad("amount", "give price or amount, not both")
    elif not price_text and not amount_text:
        bad("price", "give a price (or an amount)")
    elif amount_text:
        amount = _decimal(amount_text, "amount", bad, positive=False)
    else:
        price = _decimal(price_text, "price", bad, positive=False)
        if price is not None and quantity is not None:
            amount = quantity * price
    acquired = None
    if row.get("acquired"):
        try:
            acquired = date.fromisoformat(row["acquired"])
        except ValueError:
            bad("acquired", f"{row['acquired']!r} is not a date (YYYY-MM-DD)")
        else:
            if side is Side.SELL:
                bad("acquired", "is for a buy (an opening lot), not a sell")
            elif trade_date is not None and acquired > trade_date:
                bad("acquired", f"{acquired} is after the trade date {trade_date}")
    flag = row.get("replacement", "").lower()
    replacement = FLAGS.get(flag)
    if replacement is None:
        bad("replacement", f"{row['replacement']!r} is not true or false")
    elif replacement and side is Side.SELL:
        bad("replacement", "is for a buy (shares that replaced a loss), not a sell")
    if len(problems) > before or trade_date is None or side is None:
        return None
    if quantity is None or amount is None:
        return None
    return Transaction(
        line=line,
        trade_date=trade_date,
        account=row["account"],
        household=row.get("household") or row["account"],
        account_type=account_type,
        symbol=symbol(row["symbol"]),
        side=side,
        quantity=quantity,
        amount=amount,
        lot_id=row.get("lot_id") or None,
        acquired=acquired,
        replacement=bool(replacement),
    )


def _decimal(
    text: str, column: str, bad: Callable[[str, str], None], *, positive: bool
) -> Decimal | None:
    """Parse a plain decimal number (thousands separators allowed); None after reporting."""
    if not text:
        return None
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        bad(column, f"{text!r} is not a number")
        return None
    if not value.is_finite():
        bad(column, f"{text!r} is not a finite number")
    elif positive and value <= 0:
        bad(column, f"must be positive, got {text}")
    elif value < 0:
        bad(column, f"must not be negative, got {text}")
    else:
        return value
    return None
