"""Read the four book CSV files as text and validate them with `rebal.io.tables`.

Files are read with the `csv` module so every row keeps the line number a person sees in
an editor, even across blank lines and quoted line breaks. A UTF-8 BOM is tolerated; blank
lines are skipped. A file that is missing, unreadable, empty or not CSV is reported as a
problem together with every other problem in the book.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from rebal.io.errors import Problem
from rebal.io.tables import Source, Tables, check_book


def read_tables(models: Path, accounts: Path, holdings: Path, prices: Path) -> Tables:
    """Read and validate the four files; raise `InputError` listing every problem found.

    Messages name each file by its basename, e.g. `accounts.csv line 7, column cash: ...`.
    """
    problems: list[Problem] = []
    sources = [_read(Path(path), problems) for path in (models, accounts, holdings, prices)]
    return check_book(*sources, problems=tuple(problems))


def _read(path: Path, problems: list[Problem]) -> Source:
    """The file's cells as text with their line numbers, or a Source without cells."""
    name = path.name
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return _parse(name, path, handle, problems)
    except FileNotFoundError:
        message = f"file not found: {path}"
    except UnicodeDecodeError:
        message = f"not UTF-8 text: {path}"
    except OSError as exc:
        message = f"cannot read {path}: {exc.strerror or exc}"
    problems.append(Problem(name, None, None, message))
    return Source(name, None)


def _parse(name: str, path: Path, handle: TextIO, problems: list[Problem]) -> Source:
    """Split the open file into a header and rows of the header's width."""
    reader = csv.reader(handle)
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        header = next((record for record in reader if any(c.strip() for c in record)), None)
        if header is None:
            problems.append(Problem(name, None, None, f"file is empty (no header line): {path}"))
            return Source(name, None)
        end = reader.line_num
        for record in reader:
            start, end = end + 1, reader.line_num
            if len(record) == len(header):
                rows.append(record)
                lines.append(start)
            elif any(cell.strip() for cell in record):
                problems.append(Problem(
                    name, start, None,
                    f"row has {len(record)} fields but the header has {len(header)}",
                ))
    except csv.Error as exc:
        problems.append(Problem(name, reader.line_num, None, f"not valid CSV: {exc}"))
        return Source(name, None)
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    return Source(name, frame, np.asarray(lines, dtype=np.int64))
