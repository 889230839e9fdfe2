"""One input table as trimmed text, with vectorised typed readers that collect problems.

A `Sheet` holds every cell of a table as a stripped Arrow-backed string plus the source
line of every row. Its readers (`percent`, `minor_units`, `boolean`, ...) validate and
convert a whole column at once (regex `fullmatch`, then exact conversion) and turn only
the bad cells into `Problem`s, so a holdings file with millions of rows is checked without
a Python loop per row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from rebal.domain.ids import symbol
from rebal.errors import Problem

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

TEXT = pd.StringDtype("pyarrow")
#: Plain decimal notation: optional sign, digits with an optional fraction. No exponent,
#: no thousands separators, no currency signs, no nan/inf.
DECIMAL = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
#: A number as programs write floats: plain decimal notation with an optional exponent
#: (``1.5e-05``). For the lab's prices, returns and sweep values, which are floats; the book's
#: money and quantities are exact and take `DECIMAL` only.
_FLOAT = re.compile(rf"{DECIMAL}(?:[eE][+-]?\d+)?", re.ASCII)
_PERCENT = rf"{DECIMAL}\s*%?"
_ISO_DATE = r"\d{4}-\d{2}-\d{2}"
_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")
#: Integer minor units must fit in int64 (19 digits); allow 18 digits in total.
_MAX_DIGITS = 18

#: Which values a number column accepts: any sign, zero and up, or strictly positive.
Floor = Literal["any", "nonnegative", "positive"]


def mask(values: pd.Series | BoolArray) -> BoolArray:
    """A boolean Series (numpy, masked or Arrow-backed) as a plain numpy mask."""
    return np.asarray(pd.Series(values).to_numpy(dtype=bool, na_value=False))


def parse_float(text: str) -> float | None:
    """``text`` (surrounding space ignored) as a float when it is a number by `_FLOAT`, else
    None: one cell's reading by the same rule as the columns' (ASCII digits; no ``nan``, ``inf``
    or ``1_000``; an exponent too large is ``inf``, which the caller refuses as not finite)."""
    text = text.strip()
    return float(text) if _FLOAT.fullmatch(text) else None


def _not_a_number(value: str) -> str:
    hint = " (use plain decimal notation like 1234.56)" if any(c.isdigit() for c in value) else ""
    return f"{value!r} is not a number{hint}"


def _as_text(column: pd.Series) -> pd.Series:
    """Cells as stripped strings; missing cells (None, NaN, NA) become ""."""
    if pd.api.types.is_datetime64_any_dtype(column):
        given = column.dropna()
        if (given == given.dt.normalize()).all():
            column = column.dt.strftime("%Y-%m-%d")
    return column.astype(TEXT).fillna("").str.strip()


class Sheet:
    """A table's cells as stripped text (blank rows dropped), the line of each row, problems.

    `ok` marks rows that have no problem so far: checks that span rows (duplicates, weight
    sums) look only at rows that are otherwise valid, so one typo is reported once.
    """

    def __init__(
        self, name: str, cells: dict[str, pd.Series], lines: IntArray, problems: list[Problem]
    ) -> None:
        """Wrap `cells` (stripped text columns, RangeIndex) whose rows come from `lines`."""
        self.name = name
        self.lines = lines
        self.problems = problems
        self.ok: BoolArray = np.ones(len(lines), dtype=bool)
        self._cells = cells

    @classmethod
    def from_frame(
        cls, name: str, frame: pd.DataFrame, lines: IntArray, problems: list[Problem]
    ) -> Sheet:
        """Build a sheet from `frame` (columns already named), dropping all-blank rows."""
        cells = {
            str(col): _as_text(frame.iloc[:, i].reset_index(drop=True))
            for i, col in enumerate(frame.columns)
        }
        filled = np.zeros(len(frame), dtype=bool)
        for text in cells.values():
            filled |= mask(text != "")
        if not filled.all():
            cells = {col: text[filled].reset_index(drop=True) for col, text in cells.items()}
            lines = lines[filled]
        return cls(name, cells, lines, problems)

    def __len__(self) -> int:
        return len(self.lines)

    def text(self, column: str) -> pd.Series:
        """The stripped text of `column`, or "" in every row when the column is absent."""
        if column in self._cells:
            return self._cells[column]
        return pd.Series("", index=pd.RangeIndex(len(self)), dtype=TEXT)

    def report(self, position: int, column: str | None, message: str) -> None:
        """Record a problem with the row at `position`."""
        self.problems.append(Problem(self.name, int(self.lines[position]), column, message))
        self.ok[position] = False

    def flag(
        self, where: pd.Series | BoolArray, column: str, message: Callable[[str], str]
    ) -> None:
        """Record `message(cell text)` for every row where `where` is true."""
        positions = np.flatnonzero(mask(where))
        if len(positions) == 0:
            return
        values = self.text(column).iloc[positions]
        for position, value in zip(positions, values, strict=True):
            self.report(int(position), column, message(str(value)))

    def required(self, column: str, what: str) -> pd.Series:
        """Text of a column that must not be blank (`what` names the value in the message)."""
        text = self.text(column)
        self.flag(text == "", column, lambda _: f"missing {what}")
        return text

    def symbols(self, column: str) -> pd.Series:
        """A required column of ticker symbols, upper-cased."""
        return self.required(column, "symbol").map(symbol)

    def _numbers(
        self, column: str, required: bool, pattern: str = DECIMAL
    ) -> tuple[pd.Series, BoolArray]:
        """The column's text and which cells hold a number; flags non-numbers and blanks."""
        text = self.text(column)
        blank = mask(text == "")
        number = mask(text.str.fullmatch(pattern))
        if required:
            self.flag(blank, column, lambda _: "missing value (a number is required)")
        self.flag(~blank & ~number, column, _not_a_number)
        return text, number

    def _check_floor(
        self,
        column: str,
        values: FloatArray | IntArray,
        checked: BoolArray,
        floor: Floor,
        noun: str,
    ) -> None:
        """Flag values below `floor` ("negative quantity '-5' (quantity must be > 0)")."""
        if floor == "any":
            return
        bound = ">= 0" if floor == "nonnegative" else "> 0"
        self.flag(
            checked & (values < 0),
            column,
            lambda v: f"negative {noun} {v!r} ({noun} must be {bound})",
        )
        if floor == "positive":
            self.flag(
                checked & (values == 0),
                column,
                lambda v: f"zero {noun} {v!r} ({noun} must be {bound})",
            )

    def percent(self, column: str, required: bool, noun: str) -> tuple[pd.Series, pd.Series]:
        """Percent values (`40`, `40%`, ` 40.5 % `) as float64 percent, NaN when blank or bad,
        and the same values exactly, as `Decimal` fractions (`40` is 0.40), None when blank or
        bad.

        Negative values are flagged and returned as NaN.
        """
        text, number = self._numbers(column, required, _PERCENT)
        digits = text.str.replace(r"\s*%$", "", regex=True).where(number, "nan")
        values: FloatArray = digits.to_numpy(dtype=np.float64)
        self._check_floor(column, values, number, "nonnegative", noun)
        fractions = exact_decimals(digits, number & (values >= 0), scale=-2)
        return pd.Series(np.where(values >= 0, values + 0.0, np.nan)), fractions  # no -0.0

    def minor_units(
        self, column: str, places: int, required: bool, floor: Floor, noun: str, hint: str = ""
    ) -> tuple[IntArray, BoolArray]:
        """Exact integer units of 10**-places (cents, micro-shares) and which cells were given.

        More than `places` decimals is an error, not a rounding (`hint`, when given, is added
        to its message in parentheses); blank or bad cells are 0.
        """
        text, number = self._numbers(column, required)
        units, decimals, digits = _to_minor_units(text.where(number, "0"), places)
        too_precise = number & (decimals > places)
        too_large = number & ~too_precise & (digits > _MAX_DIGITS)
        why = f" ({hint})" if hint else ""
        self.flag(
            too_precise, column, lambda v: f"{v!r} has more than {places} decimal places{why}"
        )
        self.flag(too_large, column, lambda v: f"{v!r} is too large")
        given = number & ~too_precise & ~too_large
        self._check_floor(column, units, given, floor, noun)
        return np.where(given, units, 0), given

    def split_units(
        self, column: str, places: int, fine: int, required: bool, floor: Floor, noun: str
    ) -> tuple[IntArray, IntArray, BoolArray]:
        """Exact values with up to `fine` decimals as two integers, and which cells were given:
        whole units of 10**-places (truncated: micro-shares) and the rest below one such unit,
        in units of 10**-fine (nano-shares, 0 to 999 for 6 and 9).

        Two integers keep a value exact with as many whole digits as `minor_units` allows at
        `places` (a 10**-fine count in one int64 would hold 1000 times less). More than `fine`
        decimals is an error, not a rounding; blank or bad cells are 0.
        """
        text, number = self._numbers(column, required)
        given = text.where(number, "0")
        decimals = _decimal_places(_fraction_trimmed(given))
        head = given.str.replace(rf"(\.\d{{{places}}})\d+$", r"\1", regex=True)
        units, _, digits = _to_minor_units(head, places)
        # The digits past the `places`-th decimal, padded to `fine - places` of them.
        tail = given.str.replace(rf"^[+-]?\d*(?:\.\d{{0,{places}}})?", "", regex=True)
        width = fine - places
        rest = tail.str.pad(width, side="right", fillchar="0").str.slice(0, width)
        rest_units = rest.astype(np.int64).to_numpy(dtype=np.int64)
        rest_units = np.where(mask(given.str.startswith("-")), -rest_units, rest_units)
        too_precise = number & (decimals > fine)
        too_large = number & ~too_precise & (digits > _MAX_DIGITS)
        self.flag(too_precise, column, lambda v: f"{v!r} has more than {fine} decimal places")
        self.flag(too_large, column, lambda v: f"{v!r} is too large")
        ok = number & ~too_precise & ~too_large
        self._check_floor(column, np.where(units != 0, units, rest_units), ok, floor, noun)
        return np.where(ok, units, 0), np.where(ok, rest_units, 0), ok

    def price(self, column: str) -> tuple[FloatArray, pd.Series]:
        """A required, finite, strictly positive number as float64, and its text as given."""
        text, number = self._numbers(column, True)
        values: FloatArray = text.where(number, "nan").to_numpy(dtype=np.float64)
        finite = number & np.isfinite(values)
        self.flag(number & ~finite, column, lambda v: f"{v!r} is too large")
        self._check_floor(column, values, finite, "positive", "price")
        return values, text

    def boolean(self, column: str, default: bool) -> BoolArray:
        """true/false, yes/no, 1/0 in any case; blank (or no column) means `default`."""
        low = self.text(column).str.lower()
        true = mask(low.isin(_TRUE))
        blank = mask(low == "")
        self.flag(
            ~true & ~blank & ~mask(low.isin(_FALSE)),
            column,
            lambda v: f"{v!r} is not a boolean (use true/false, yes/no or 1/0)",
        )
        return np.where(blank, default, true)

    def choice(self, column: str, allowed: Sequence[str], default: str, noun: str) -> pd.Series:
        """One of `allowed` in any case, lower-cased; blank (or no column) means `default`."""
        low = self.text(column).str.lower()
        self.flag(
            mask(low != "") & ~mask(low.isin(allowed)),
            column,
            lambda v: f"{v!r} is not a valid {noun} (use {', '.join(allowed)})",
        )
        return low.where(low != "", default)

    def dates(self, column: str) -> pd.Series:
        """ISO dates (YYYY-MM-DD) as `datetime.date` objects; None where blank or bad."""
        text = self.text(column)
        if not mask(text != "").any():
            return pd.Series([None] * len(self), dtype=object)
        iso = text.where(mask(text.str.fullmatch(_ISO_DATE)), None)
        parsed = pd.to_datetime(iso, format="%Y-%m-%d", errors="coerce")
        self.flag(
            mask(text != "") & mask(parsed.isna()),
            column,
            lambda v: f"{v!r} is not a valid date (use YYYY-MM-DD)",
        )
        return parsed.dt.date.astype(object).where(parsed.notna(), None)

    def symbol_lists(self, column: str) -> pd.Series:
        """`;`-separated symbols as sorted tuples of distinct upper-case symbols."""
        lists = [
            tuple(sorted({symbol(s) for s in cell.split(";")} - {""})) if cell else ()
            for cell in self.text(column)
        ]
        return pd.Series(lists, dtype=object)


def exact_decimals(text: pd.Series, valid: BoolArray, scale: int = 0) -> pd.Series:
    """Cells of plain decimal notation (already validated, where `valid`) as exact `Decimal`s
    times 10**`scale`, None elsewhere: the one conversion of a number's text to a Decimal, so a
    value is kept to its last digit as written (`110.8350` stays `110.8350`)."""
    exact = [
        Decimal(cell).scaleb(scale) if ok else None
        for cell, ok in zip(text.astype(object), valid, strict=True)
    ]
    return pd.Series(
        [d.copy_abs() if d is not None and d.is_zero() else d for d in exact], dtype=object
    )


def _fraction_trimmed(text: pd.Series) -> pd.Series:
    """Plain decimal strings without their sign and the trailing zeros of their fraction."""
    body = text.str.lstrip("+-")
    has_dot = mask(body.str.contains(".", regex=False))
    return body.where(~has_dot, body.str.rstrip("0"))


def _decimal_places(body: pd.Series) -> IntArray:
    """How many decimals each string of `_fraction_trimmed` has."""
    length = body.str.len().to_numpy(dtype=np.int64)
    dot = body.str.find(".").to_numpy(dtype=np.int64)
    return np.where(dot >= 0, length - dot - 1, 0)


def _to_minor_units(text: pd.Series, places: int) -> tuple[IntArray, IntArray, IntArray]:
    """Exact units of 10**-places of plain decimal strings, with no float round trip.

    Returns (units, decimals, digits): units are valid only where decimals <= places and
    digits (the length of the result) <= 18. Trailing zeros of the fraction do not count
    as decimal places ("1.500" is 150 cents).
    """
    negative = mask(text.str.startswith("-"))
    body = _fraction_trimmed(text)
    decimals = _decimal_places(body)
    significant = body.str.replace(".", "", regex=False).str.lstrip("0")
    shift = places - decimals
    digits = significant.str.len().to_numpy(dtype=np.int64) + shift
    usable = (shift >= 0) & (digits <= _MAX_DIGITS)
    whole = significant.where(usable & mask(significant != ""), "0").astype(np.int64).to_numpy()
    units = whole * np.power(10, np.where(usable, shift, 0), dtype=np.int64)
    return np.where(negative, -units, units), decimals, digits
