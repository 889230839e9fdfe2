"""Regenerate the example output in docs/output.md from the sample book.

Two examples, each between its pair of marker comments (the rest of docs/output.md is left as
it is): what `rebal propose --sample --format json` prints for one account (ACC-000009, a rails
rebalance) and the first rows of its blotter, laid out one position, trade and blotter row a
line; and, with `--tax-aware`, that account's first sell (with its lots) and its `tax` object.
A test (tests/acceptance/docs/test_output_example.py) runs `example()` and compares, so the examples
cannot go stale: after a change to the output, run this script.

Usage: `python scripts/make_output_examples.py [--check]` (`--check`: exit 1 if the docs differ,
write nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from rebal.cli.main import app
from rebal.io.exact_json import exact_json

DOC = Path(__file__).resolve().parents[1] / "docs" / "output.md"
ACCOUNT = "ACC-000009"
BLOTTER_ROWS = 2
PROPOSE = ("propose", "--sample", "--format", "json")
TAX_AWARE = ("propose", "--sample", "--tax-aware", "--as-of", "2026-11-20", "--format", "json")
#: Keys whose values are lists written one item a line.
_LISTS = ("positions", "trades")


def begin(name: str) -> str:
    """The comment that opens the example ``name`` in docs/output.md."""
    return f"<!-- begin example {name}: written by scripts/make_output_examples.py, do not edit -->"


def end(name: str) -> str:
    """The comment that closes the example ``name``."""
    return f"<!-- end example {name} -->"


def _run(command: tuple[str, ...]) -> dict[str, Any]:
    """The JSON document ``rebal command`` prints, numbers as exact decimals."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        app(list(command), standalone_mode=False)
    document: dict[str, Any] = json.loads(out.getvalue(), parse_float=Decimal)
    return document


def _account(document: dict[str, Any]) -> dict[str, Any]:
    (account,) = [a for a in document["accounts"] if a["account"] == ACCOUNT]
    return account


def _items(items: list[Any], indent: str) -> str:
    """A JSON list with one item a line."""
    rows = f",\n{indent} ".join(exact_json(item) for item in items)
    return f"[\n{indent} {rows}\n{indent}]"


def _object(value: dict[str, Any], indent: str) -> str:
    """A JSON object with one key a line, the lists of `_LISTS` one item a line."""
    fields = ",\n".join(
        f"{indent} {json.dumps(key)}: "
        + (_items(item, indent + " ") if key in _LISTS else exact_json(item))
        for key, item in value.items()
    )
    return f"{{\n{fields}\n{indent}}}"


def _propose() -> str:
    document = _run(PROPOSE)
    blotter = _items(document["blotter"][:BLOTTER_ROWS], " ")
    return (
        f"`rebal {' '.join(PROPOSE)}`, account {ACCOUNT} and the first {BLOTTER_ROWS} rows of "
        "the blotter:\n\n"
        f'```json\n{{\n "accounts": [\n  {_object(_account(document), "  ")}\n ],\n'
        f' "blotter": {blotter}\n}}\n```'
    )


def _tax_aware() -> str:
    account = _account(_run(TAX_AWARE))
    sell = next(t for t in account["trades"] if t["side"] == "sell")
    return (
        f"`rebal {' '.join(TAX_AWARE)}`, account {ACCOUNT}: its first sell and its `tax`:\n\n"
        f"```json\n{exact_json(sell)}\n```\n\n```json\n{_object(account['tax'], '')}\n```"
    )


#: Each example of docs/output.md by the name its markers carry, and what writes it.
EXAMPLES: dict[str, Callable[[], str]] = {"propose": _propose, "tax-aware": _tax_aware}


def example(name: str) -> str:
    """The text between the markers of the example ``name``: what ran, and its output."""
    return EXAMPLES[name]()


def documented(text: str, name: str) -> str:
    """The part of docs/output.md's ``text`` between the markers of the example ``name``."""
    start, stop = text.index(begin(name)) + len(begin(name)), text.index(end(name))
    return text[start:stop].strip("\n")


def main() -> int:
    """Rewrite the examples in docs/output.md (or, with --check, compare them)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    check = parser.parse_args().check
    text = original = DOC.read_text(encoding="utf-8")
    for name in EXAMPLES:
        fresh = example(name)
        if documented(text, name) != fresh:
            start, stop = text.index(begin(name)) + len(begin(name)), text.index(end(name))
            text = f"{text[:start]}\n{fresh}\n{text[stop:]}"
    if text == original:
        return 0
    if check:
        print(f"{DOC} is stale: run python scripts/make_output_examples.py", file=sys.stderr)
        return 1
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
