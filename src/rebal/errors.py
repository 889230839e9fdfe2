"""Input problems and the error that carries them.

Every bad cell, row or file found while reading a book becomes a `Problem`; all of them
are collected and raised together as one `InputError`, so a user can fix everything in
one pass instead of meeting the errors one at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: How many problems `str(InputError)` lists before summarising the rest.
SHOWN_PROBLEMS = 50


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input.

    `file` names the file (its basename) or, for DataFrames passed from Python, the table.
    `row` is the line number a person sees in an editor (the header is line 1) or None for
    a problem with the whole file; `column` is None when no single column is at fault.
    """

    file: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" line {self.row}"
        if self.column is not None:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


class InputError(ValueError):
    """The input tables are invalid; `problems` lists every problem found, in report order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        lines = [str(p) for p in self.problems[:SHOWN_PROBLEMS]]
        hidden = len(self.problems) - SHOWN_PROBLEMS
        if hidden > 0:
            lines.append(f"... and {hidden} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._render()
