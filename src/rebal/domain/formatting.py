"""Numbers as people and programs read them: the one formatter of every number rebal shows.

Every number is written in plain digits, never in scientific notation (``Decimal("2E+1")`` is
``20``, ``Decimal("1E-7")`` is ``0.0000001``), with an optional thousands separator for tables
(``12,345.67``). Money and quantities are formatted from their exact ``Decimal`` (or from the
core's integer cents and micro-shares), so the text is the exact value, however large; a
float (a weight, a percentage) is written rounded to the places asked for.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from rebal.domain.money import from_cents, from_micro


def number_text(value: Decimal | int, places: int | None = None, *, grouped: bool = False) -> str:
    """``value`` in plain digits: with exactly ``places`` decimals (rounded half to even), or
    with the decimals it needs (trailing zeros dropped) when ``places`` is None; ``grouped``
    adds a thousands separator. Exact however many digits ``value`` has."""
    exact = Decimal(value)
    if exact.is_zero():
        exact = exact.copy_abs()  # no "-0"
    if places is not None:
        with localcontext() as context:  # room for every digit: quantize never rounds away any
            digits, exponent = exact.as_tuple()[1:]
            context.prec = len(digits) + abs(int(exponent)) + places + 2
            context.rounding = ROUND_HALF_EVEN
            exact = exact.quantize(Decimal(1).scaleb(-places))
    text = format(exact, ",f" if grouped else "f")
    if places is None and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def money_text(cents: int, *, grouped: bool = False) -> str:
    """Integer cents as money with two decimals (``1,234.50`` grouped, ``1234.50`` not)."""
    return number_text(from_cents(cents), 2, grouped=grouped)


def quantity_text(micro: int, *, grouped: bool = False) -> str:
    """Integer micro-shares as shares with the decimals they need (``12``, ``0.000001``)."""
    return number_text(from_micro(micro), grouped=grouped)


def percent_text(fraction: float, places: int = 2) -> str:
    """A fraction as a percentage with ``places`` decimals (``0.4`` → ``40.00%``)."""
    return f"{100 * fraction:.{places}f}%"
