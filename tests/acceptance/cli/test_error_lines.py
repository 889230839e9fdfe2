"""Error messages are one line per problem, whatever the terminal width, and give hints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from rebal.cli.main import app
from rebal.testkit import write_book_files

runner = CliRunner()

#: A book with three problems whose messages are longer than 40 (and 80) characters.
BOOK = {
    "models": "model,symbol,weight\nbal,VTI,0.6\nbal,BND,0.4\n",
    "accounts": "account,model,cash\na1,bal,100.005\n",
    "holdings": "account,symbol,quantity\na1,VTI,1\n",
    "prices": "symbol;price\nVTI;10\nBND;10\n",
}
PROBLEMS = [
    "models.csv line 2, column weight: weights of model 'bal' sum to 1%, not 100% "
    "(weights are percent: did you mean 60 for 0.6?)",
    "accounts.csv line 2, column cash: '100.005' has more than 2 decimal places "
    "(an amount below a cent: money is kept to whole cents; round it to 2 decimals)",
    "prices.csv: missing required column(s): symbol, price (the header is one column, "
    "'symbol;price': the file looks ';'-separated; rebal reads comma-separated files)",
]
EXPECTED = ["error: the book has problems; nothing was written:", *PROBLEMS]


def test_each_problem_is_one_line_on_standard_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["drift", *write_book_files(tmp_path, BOOK)])

    assert result.exit_code == 1
    assert result.stderr.splitlines() == EXPECTED


def test_a_narrow_terminal_does_not_wrap_the_messages(tmp_path: Path) -> None:
    args = write_book_files(tmp_path, BOOK)
    done = subprocess.run(
        [sys.executable, "-c", "from rebal.cli.main import app; app()", "drift", *args],
        env={**os.environ, "COLUMNS": "40"},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )

    assert done.returncode == 1
    assert done.stderr.splitlines() == EXPECTED
