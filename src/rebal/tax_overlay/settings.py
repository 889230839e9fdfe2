"""The options of a tax-aware run and the records it returns.

Kept apart from the steps so that callers (the CLI, the API, the report) import what they pass
in and get back without pulling in the planning machinery's names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from rebal.core.engine import Proposal
from rebal.tax.account_report import account_report, report_json
from rebal.tax.harvest import HarvestRules
from rebal.tax.lots import LotMethod, LotSale
from rebal.tax.rates import AccountType, TaxRates
from rebal.tax.wash_sales import Transaction

#: Methods whose lots are the planner's own choice (specific identification of its lots).
PLANNER_METHODS = (LotMethod.MIN_TAX, LotMethod.SPECIFIC)


@dataclass(frozen=True)
class TaxSettings:
    """Options of a tax-aware run (the `--tax-aware` family of `rebal propose`).

    `drift_cost` is the benefit, per dollar of absolute drift a plan closes, of closing it
    (e.g. 0.01 = 100 bps); None: never weigh tax against drift. `withdrawal_dates` are scheduled
    withdrawals per account id; an account with one within `hold_days` after `as_of` is held.
    """

    as_of: date
    rates: TaxRates = field(default_factory=TaxRates)
    lot_method: LotMethod = LotMethod.MIN_TAX
    gain_budget: Decimal | None = None
    short_term_gains: bool = True
    optimizer: bool = False
    tlh: bool = False
    harvest_rules: HarvestRules = field(default_factory=HarvestRules)
    substitutes: tuple[tuple[str, ...], ...] = ()  # rebal.tax_overlay.inputs.SubstituteGroups
    transactions: tuple[Transaction, ...] = ()
    household: bool = False
    tax_inefficient: frozenset[str] = frozenset()
    drift_cost: Decimal | None = None
    withdrawal_dates: Mapping[str, date] = field(default_factory=dict)
    hold_days: int = 30


@dataclass(frozen=True)
class AccountTax:
    """What a tax-aware run adds to one account: the JSON ``tax`` object, the lots each sell
    consumes (symbol → ``lot`` list; ``sales``: the same lot parts, exact) and a note to append
    to the account's reason."""

    tax: dict[str, Any]
    lots: dict[str, list[dict[str, Any]]]
    note: str | None
    sales: Mapping[str, tuple[LotSale, ...]] = field(default_factory=dict)


#: The ``tax`` object of an account that realises no taxable gain (no trade, or IRA/Roth).
EMPTY_TAX: dict[str, Any] = {
    **report_json(account_report("", AccountType.TAXABLE, (), TaxRates())),
    "method": None,
    "outside_band": {},
}


@dataclass(frozen=True)
class TaxAwareProposal:
    """The proposal with tax-aware orders spliced in, and the tax annotation per account row."""

    proposal: Proposal
    accounts: dict[int, AccountTax]

    def annotation(self, row: int) -> AccountTax:
        """The annotation of `row` (an empty tax report where the account does not trade)."""
        return self.accounts.get(row) or AccountTax(EMPTY_TAX, {}, None)
