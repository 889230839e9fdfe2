"""Read the four book CSV files as text and validate them with `rebal.io.tables`.

Every row keeps the line number a person sees in an editor, even across blank lines and
quoted line breaks. A UTF-8 BOM is tolerated; blank lines are skipped. A file that is
missing, unreadable, empty or not UTF-8 is reported as a problem together with every
other problem in the book.

Files without quote characters (the usual export) are split with Arrow string kernels, a
million-row holdings file in well under a second; files with quotes go through the `csv`
module, which understands quoting and line breaks inside quoted fields. Both give the same
cells, line numbers and problems.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from rebal.errors import Problem
from rebal.io.sheet import IntArray
from rebal.io.tables import Source, Tables, check_book


def read_tables(models: Path, accounts: Path, holdings: Path, prices: Path) -> Tables:
    """Read and validate the four files; raise `InputError` listing every problem found.

    Messages name each file by its basename, e.g. `accounts.csv line 7, column cash: ...`.
    """
    problems: list[Problem] = []
    sources = [_read(Path(path), problems) for path in (models, accounts, holdings, prices)]
    return check_book(sources[0], sources[1], sources[2], sources[3], tuple(problems))


@dataclass(frozen=True)
class _Split:
    """A file cut into a header and the rows that have as many fields as the header."""

    header: list[str]
    columns: list[pd.Series]  # one text column per header field
    lines: IntArray  # the line each kept row starts on
    ragged: list[tuple[int, int]]  # (line, number of fields) of rows of another width


def _read(path: Path, problems: list[Problem]) -> Source:
    """The file's cells as text with their line numbers, or a Source without cells."""
    name = path.name

    def unusable(message: str, line: int | None = None) -> Source:
        problems.append(Problem(name, line, None, message))
        return Source(name, None)

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return unusable(f"file not found: {path}")
    except OSError as exc:
        return unusable(f"cannot read {path}: {exc.strerror or exc}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return unusable(f"not UTF-8 text: {path}", line)
    plain = '"' not in text and text.count("\r") == text.count("\r\n")
    try:
        split = _split_plain(text) if plain else _split_quoted(text)
    except csv.Error as exc:
        return unusable(f"not valid CSV: {exc}")
    if split is None:
        return unusable(f"file is empty (no header line): {path}")
    for line, count in split.ragged:
        problems.append(
            Problem(
                name, line, None, f"row has {count} fields but the header has {len(split.header)}"
            )
        )
    frame = pd.DataFrame(dict(enumerate(split.columns)))
    frame.columns = pd.Index(split.header, dtype=object)
    return Source(name, frame, split.lines)


def _split_plain(text: str) -> _Split | None:
    """Split a file without quotes: every line is one record, fields are cut at commas."""
    raw = pc.utf8_rtrim(pa.array(text.split("\n"), pa.large_string()), characters="\r")
    blank = pc.match_substring_regex(raw, r"^[\s,]*$").to_numpy(zero_copy_only=False)
    if blank.all():
        return None
    start = int(np.argmax(~blank))
    header = raw[start].as_py().split(",")
    body = raw[start + 1 :]
    fields = pc.split_pattern(body, ",")
    counts = pc.list_value_length(fields).to_numpy(zero_copy_only=False)
    keep = counts == len(header)
    line_numbers = np.arange(start + 2, start + 2 + len(body), dtype=np.int64)
    ragged = ~keep & ~blank[start + 1 :]
    kept = fields.filter(pa.array(keep))
    columns = [
        pd.Series(pd.arrays.ArrowStringArray(pc.list_element(kept, i))) for i in range(len(header))
    ]
    return _Split(
        header,
        columns,
        line_numbers[keep],
        list(zip(line_numbers[ragged].tolist(), counts[ragged].tolist(), strict=True)),
    )


def _split_quoted(text: str) -> _Split | None:
    """Split a file with the `csv` module, tracking the line each record starts on."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next((record for record in reader if any(c.strip() for c in record)), None)
    if header is None:
        return None
    rows: list[list[str]] = []
    lines: list[int] = []
    ragged: list[tuple[int, int]] = []
    end = reader.line_num
    for record in reader:
        start, end = end + 1, reader.line_num
        if len(record) == len(header):
            rows.append(record)
            lines.append(start)
        elif any(cell.strip() for cell in record):
            ragged.append((start, len(record)))
    cells = list(zip(*rows, strict=True)) or [()] * len(header)
    columns = [pd.Series(list(column), dtype=object) for column in cells]
    return _Split(header, columns, np.asarray(lines, dtype=np.int64), ragged)
