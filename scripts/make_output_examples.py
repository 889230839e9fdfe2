"""Regenerate the example output in docs/output.md from the sample book.

The JSON example there is what `rebal propose --sample --format json` prints for one account
(ACC-000009, a rails rebalance) and the first rows of its blotter, laid out one position, trade
and blotter row a line. Only the part between the two marker comments is written; the rest of
docs/output.md is left as it is. A test (tests/docs/test_output_example.py) runs `example()` and
compares, so the example cannot go stale: after a change to the output, run this script.

Usage: `python scripts/make_output_examples.py [--check]` (`--check`: exit 1 if the docs differ,
write nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from rebal.cli.exact_json import exact_json
from rebal.cli.main import app

DOC = Path(__file__).resolve().parents[1] / "docs" / "output.md"
BEGIN = "<!-- begin example: written by scripts/make_output_examples.py, do not edit -->"
END = "<!-- end example -->"
COMMAND = ("propose", "--sample", "--format", "json")
ACCOUNT = "ACC-000009"
BLOTTER_ROWS = 2
#: The keys of an account whose values are lists written one item a line.
_LISTS = ("positions", "trades")


def _propose() -> dict[str, Any]:
    """The JSON document of ``rebal COMMAND``, numbers as exact decimals."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        app(list(COMMAND), standalone_mode=False)
    document: dict[str, Any] = json.loads(out.getvalue(), parse_float=Decimal)
    return document


def _items(items: list[Any], indent: str) -> str:
    """A JSON list with one item a line."""
    rows = f",\n{indent} ".join(exact_json(item) for item in items)
    return f"[\n{indent} {rows}\n{indent}]"


def example() -> str:
    """The text between the markers: a sentence naming the command and the JSON block."""
    document = _propose()
    (account,) = [a for a in document["accounts"] if a["account"] == ACCOUNT]
    fields = ",\n".join(
        f"   {json.dumps(key)}: " + (_items(value, "   ") if key in _LISTS else exact_json(value))
        for key, value in account.items()
    )
    blotter = _items(document["blotter"][:BLOTTER_ROWS], " ")
    return (
        f"`rebal {' '.join(COMMAND)}`, account {ACCOUNT} and the first {BLOTTER_ROWS} rows of "
        "the blotter:\n\n"
        f'```json\n{{\n "accounts": [\n  {{\n{fields}\n  }}\n ],\n "blotter": {blotter}\n}}\n```'
    )


def documented(text: str) -> str:
    """The part of docs/output.md's ``text`` between the markers."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip("\n")


def main() -> int:
    """Rewrite the example in docs/output.md (or, with --check, compare it)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    check = parser.parse_args().check
    text = DOC.read_text(encoding="utf-8")
    fresh = example()
    if documented(text) == fresh:
        return 0
    if check:
        print(f"{DOC} is stale: run python scripts/make_output_examples.py", file=sys.stderr)
        return 1
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(f"{text[:start]}\n{fresh}\n{text[end:]}", encoding="utf-8")
    print(f"wrote {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
