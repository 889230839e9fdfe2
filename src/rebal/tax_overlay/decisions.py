"""What the steps of a tax-aware run decide, as frozen values the run composes.

Each step (`households`, `wash`, `planning`, `harvesting`) returns a `Decisions` of its own: the
rows it re-plans (`Replan`: desired post-trade values, and whether the pending flow applies),
the rows it holds (no orders now), how each row it planned was planned (`tax.method`), what each
row's reason adds, the lots each planned sell relieves, each planned row's `AccountProblem`, and
the rows whose plan raises cash owed past their tax preferences. `Decisions.then` lays a later
step's decisions over the earlier ones; `rebal.tax_overlay.run.splice` turns the result into
orders and `rebal.tax_overlay.run_reports` into tax reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rebal.core.types import FloatArray
from rebal.tax.lots import TaxLot
from rebal.tax.plan import AccountProblem


@dataclass(frozen=True)
class Replan:
    """A row's orders to re-make: its desired post-trade value per slot (read-only), and
    whether its pending flow applies."""

    desired: FloatArray
    with_flow: bool

    def __post_init__(self) -> None:
        self.desired.setflags(write=False)


@dataclass(frozen=True)
class Decisions:
    """Decisions of one step, or of the run so far (see the module docstring); `lots` holds,
    per (row, symbol), the lots a planned sell relieves."""

    replans: Mapping[int, Replan] = field(default_factory=dict)
    held: frozenset[int] = frozenset()
    notes: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    methods: Mapping[int, str] = field(default_factory=dict)
    lots: Mapping[tuple[int, str], tuple[TaxLot, ...]] = field(default_factory=dict)
    problems: Mapping[int, AccountProblem] = field(default_factory=dict)
    raised: frozenset[int] = frozenset()

    def then(self, later: Decisions) -> Decisions:
        """These decisions, then `later`'s (`merge`)."""
        return Decisions.merge((self, later))

    @staticmethod
    def merge(parts: Iterable[Decisions]) -> Decisions:
        """`parts` laid over each other in order: a later part's re-plans, methods, lots and
        problems replace the earlier ones row by row; held and raised rows add up; notes
        follow each other."""
        replans: dict[int, Replan] = {}
        methods: dict[int, str] = {}
        lots: dict[tuple[int, str], tuple[TaxLot, ...]] = {}
        problems: dict[int, AccountProblem] = {}
        notes: dict[int, tuple[str, ...]] = {}
        held: set[int] = set()
        raised: set[int] = set()
        for part in parts:
            replans.update(part.replans)
            methods.update(part.methods)
            lots.update(part.lots)
            problems.update(part.problems)
            for i, texts in part.notes.items():
                notes[i] = notes.get(i, ()) + texts
            held |= part.held
            raised |= part.raised
        return Decisions(
            replans, frozenset(held), notes, methods, lots, problems, frozenset(raised)
        )
