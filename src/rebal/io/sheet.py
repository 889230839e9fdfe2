"""One input table as trimmed text, with vectorised typed readers that collect problems.

A `Sheet` holds every cell of a table as a stripped string plus the source line of every
row. Its readers (`percent`, `minor_units`, `boolean`, ...) validate and convert a whole
column at once (regex `fullmatch`, then exact conversion) and turn only the bad cells into
`Problem`s, so a holdings file with millions of rows is checked without a Python loop per row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from rebal.io.errors import Problem

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

#: Plain decimal notation: optional sign, digits with an optional fraction. No exponent,
#: no thousands separators, no currency signs, no nan/inf.
DECIMAL = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_PERCENT = rf"{DECIMAL}\s*%?"
_ISO_DATE = r"\d{4}-\d{2}-\d{2}"
_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")
#: Integer minor units must fit in int64 (19 digits); allow 18 digits in total.
_MAX_DIGITS = 18

#: Which values a number column accepts: any sign, zero and up, or strictly positive.
Floor = Literal["any", "nonnegative", "positive"]


def _not_a_number(value: str) -> str:
    hint = " (use plain decimal notation like 1234.56)" if any(c.isdigit() for c in value) else ""
    return f"{value!r} is not a number{hint}"


def _as_text(column: pd.Series) -> pd.Series:
    """Cells as stripped strings; missing cells (None, NaN, NA) become ""."""
    if pd.api.types.is_datetime64_any_dtype(column):
        given = column.dropna()
        midnight = bool((given == given.dt.normalize()).all())
        text = column.dt.strftime("%Y-%m-%d") if midnight else column.astype(str)
        return text.where(column.notna(), "").astype(object)
    return column.astype(str).where(column.notna(), "").astype(object).str.strip()


class Sheet:
    """A table's cells as stripped text (blank rows dropped), the line of each row, problems.

    `ok` marks rows that have no problem so far: checks that span rows (duplicates, weight
    sums) look only at rows that are otherwise valid, so one typo is reported once.
    """

    def __init__(
        self, name: str, cells: pd.DataFrame, lines: IntArray, problems: list[Problem]
    ) -> None:
        """Wrap `cells` (stripped strings, RangeIndex) whose rows come from `lines`."""
        self.name = name
        self.lines = lines
        self.problems = problems
        self.ok: BoolArray = np.ones(len(cells), dtype=bool)
        self._cells = cells

    @classmethod
    def from_frame(
        cls, name: str, frame: pd.DataFrame, lines: IntArray, problems: list[Problem]
    ) -> Sheet:
        """Build a sheet from `frame` (columns already named), dropping all-blank rows."""
        columns = {
            str(col): _as_text(frame.iloc[:, i].reset_index(drop=True))
            for i, col in enumerate(frame.columns)
        }
        cells = pd.DataFrame(columns, index=pd.RangeIndex(len(frame)), dtype=object)
        filled = np.zeros(len(cells), dtype=bool)
        for text in columns.values():
            filled |= (text != "").to_numpy()
        if not filled.all():
            cells = cells[filled].reset_index(drop=True)
            lines = lines[filled]
        return cls(name, cells, lines, problems)

    def __len__(self) -> int:
        return len(self._cells)

    def text(self, column: str) -> pd.Series:
        """The stripped text of `column`, or "" in every row when the column is absent."""
        if column in self._cells.columns:
            return self._cells[column]
        return pd.Series("", index=self._cells.index, dtype=object)

    def report(self, position: int, column: str | None, message: str) -> None:
        """Record a problem with the row at `position`."""
        self.problems.append(Problem(self.name, int(self.lines[position]), column, message))
        self.ok[position] = False

    def flag(self, mask: Sequence[bool] | BoolArray | pd.Series, column: str,
             message: Callable[[str], str]) -> None:
        """Record `message(cell text)` for every row where `mask` is true."""
        positions = np.flatnonzero(np.asarray(mask, dtype=bool))
        values = self.text(column).to_numpy()
        for position in positions:
            self.report(int(position), column, message(str(values[position])))

    def required(self, column: str, what: str) -> pd.Series:
        """Text of a column that must not be blank (`what` names the value in the message)."""
        text = self.text(column)
        self.flag(text == "", column, lambda _: f"missing {what}")
        return text

    def symbols(self, column: str) -> pd.Series:
        """A required column of ticker symbols, upper-cased."""
        return self.required(column, "symbol").str.upper()

    def _numbers(self, column: str, required: bool, pattern: str = DECIMAL
                 ) -> tuple[pd.Series, BoolArray]:
        """The column's text and which cells hold a number; flags non-numbers and blanks."""
        text = self.text(column)
        blank = (text == "").to_numpy()
        number = text.str.fullmatch(pattern).to_numpy(dtype=bool)
        if required:
            self.flag(blank, column, lambda _: "missing value (a number is required)")
        self.flag(~blank & ~number, column, _not_a_number)
        return text, number

    def _check_floor(self, column: str, values: npt.NDArray[np.float64] | IntArray,
                     checked: BoolArray, floor: Floor, noun: str) -> None:
        """Flag values below `floor` ("negative quantity '-5' (quantity must be > 0)")."""
        if floor == "any":
            return
        bound = ">= 0" if floor == "nonnegative" else "> 0"
        self.flag(checked & (values < 0), column,
                  lambda v: f"negative {noun} {v!r} ({noun} must be {bound})")
        if floor == "positive":
            self.flag(checked & (values == 0), column,
                      lambda v: f"zero {noun} {v!r} ({noun} must be {bound})")

    def percent(self, column: str, required: bool, noun: str) -> pd.Series:
        """Percent values (`40`, `40%`, ` 40.5 % `) as float64 percent; NaN when blank or bad.

        Negative values are flagged and returned as NaN.
        """
        text, number = self._numbers(column, required, _PERCENT)
        digits = text.str.replace(r"\s*%$", "", regex=True).where(number)
        values = pd.to_numeric(digits, errors="coerce").astype(np.float64)
        self._check_floor(column, values.to_numpy(), number, "nonnegative", noun)
        return values.where(values >= 0) + 0.0  # + 0.0 turns -0.0 into 0.0

    def minor_units(self, column: str, places: int, required: bool, floor: Floor, noun: str
                    ) -> tuple[IntArray, BoolArray]:
        """Exact integer units of 10**-places (cents, micro-shares) and which cells were given.

        More than `places` decimals is an error, not a rounding; blank or bad cells are 0.
        """
        text, number = self._numbers(column, required)
        units, too_precise, too_large = _to_minor_units(text.where(number, "0"), places)
        self.flag(number & too_precise, column,
                  lambda v: f"{v!r} has more than {places} decimal places")
        self.flag(number & too_large, column, lambda v: f"{v!r} is too large")
        given = number & ~too_precise & ~too_large
        self._check_floor(column, units, given, floor, noun)
        return np.where(given, units, 0), given

    def price(self, column: str) -> tuple[npt.NDArray[np.float64], pd.Series]:
        """A required, finite, strictly positive number as float64, and its text as given."""
        text, number = self._numbers(column, True)
        values = pd.to_numeric(text.where(number), errors="coerce").to_numpy(np.float64)
        finite = number & np.isfinite(values)
        self.flag(number & ~finite, column, lambda v: f"{v!r} is too large")
        self._check_floor(column, values, finite, "positive", "price")
        return values, text

    def boolean(self, column: str, default: bool) -> BoolArray:
        """true/false, yes/no, 1/0 in any case; blank (or no column) means `default`."""
        low = self.text(column).str.lower()
        true = low.isin(_TRUE).to_numpy()
        blank = (low == "").to_numpy()
        self.flag(~true & ~blank & ~low.isin(_FALSE).to_numpy(), column,
                  lambda v: f"{v!r} is not a boolean (use true/false, yes/no or 1/0)")
        return np.where(blank, default, true)

    def choice(self, column: str, allowed: Sequence[str], default: str, noun: str) -> pd.Series:
        """One of `allowed` in any case, lower-cased; blank (or no column) means `default`."""
        low = self.text(column).str.lower()
        self.flag((low != "") & ~low.isin(allowed), column,
                  lambda v: f"{v!r} is not a valid {noun} (use {', '.join(allowed)})")
        return low.where(low != "", default)

    def dates(self, column: str) -> pd.Series:
        """ISO dates (YYYY-MM-DD) as `datetime.date` objects; None where blank or bad."""
        text = self.text(column)
        iso = text.where(text.str.fullmatch(_ISO_DATE).astype(bool))
        parsed = pd.to_datetime(iso, format="%Y-%m-%d", errors="coerce")
        self.flag((text != "") & parsed.isna(), column,
                  lambda v: f"{v!r} is not a valid date (use YYYY-MM-DD)")
        return parsed.dt.date.astype(object).where(parsed.notna(), None)

    def symbol_lists(self, column: str) -> pd.Series:
        """`;`-separated symbols as sorted tuples of distinct upper-case symbols."""
        lists = [
            tuple(sorted({s.strip().upper() for s in cell.split(";")} - {""})) if cell else ()
            for cell in self.text(column)
        ]
        return pd.Series(lists, index=self._cells.index, dtype=object)


def _to_minor_units(text: pd.Series, places: int) -> tuple[IntArray, BoolArray, BoolArray]:
    """Exact units of 10**-places of plain decimal strings, with no float round trip.

    Returns (units, too_precise, too_large); units are 0 where a flag is set. Trailing zeros
    of the fraction do not count as decimal places ("1.500" is 150 cents).
    """
    if len(text) == 0:
        empty = np.zeros(0, dtype=bool)
        return np.zeros(0, dtype=np.int64), empty, empty
    negative = text.str.startswith("-").to_numpy()
    parts = text.str.lstrip("+-").str.partition(".")
    whole = parts[0].str.lstrip("0")
    fraction = parts[2].str.rstrip("0")
    too_precise = (fraction.str.len() > places).to_numpy()
    too_large = (whole.str.len() > _MAX_DIGITS - places).to_numpy()
    usable = ~too_precise & ~too_large
    whole_units = whole.where(usable & (whole != "").to_numpy(), "0").astype(np.int64).to_numpy()
    fraction_units = (
        fraction.where(usable, "").str.ljust(places, "0").astype(np.int64).to_numpy()
    )
    units = whole_units * 10**places + fraction_units
    return np.where(negative, -units, units), too_precise, too_large
