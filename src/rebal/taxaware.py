"""Tax-aware proposals: the tax layer (`rebal.tax`) applied to the engine's proposal.

`rebal propose --tax-aware` runs the engine as usual (`rebal.core.engine.propose`: every
account, vectorised), then revisits in a Python loop only the accounts where tax changes the
orders, and re-makes their orders with the core's public `generate_trades` (same tradable mask,
same cash kept, same minimum trade and share rounding), spliced into the proposal:

- **Taxable accounts where a policy ran** (other than liquidation): one
  `rebal.tax.plan.AccountProblem` each (lots from the holdings, the run's bands around the
  targets, cash after the flow less the cash kept, the gain budget, the short-term switch, and
  the symbols the household may not buy or sell at a loss without a wash sale: its recent trades
  from `--transactions` plus what this run already bought or sold at a loss in the household),
  planned by the rule-based method or the HiGHS optimiser. A buy the wash-sale rule blocks goes
  to the first wash-safe substitute of the security's group instead.
- **When not to rebalance**: an account with a withdrawal scheduled within `hold_days` is not
  rebalanced now (its withdrawal will sell what is overweight); with a drift cost, a plan whose
  estimated tax exceeds the benefit of the drift it closes is shrunk to the trades realising no
  net gain, or dropped. The account's reason says so.
- **Households** (`household=True`): accounts of one household on one model rebalance as one
  portfolio (`rebal.household`): sales happen in IRA/Roth accounts, taxable accounts only buy.
- **Loss harvesting** (`tlh=True`): taxable accounts with a lot below the loss threshold are
  looked at (found with one vectorised pass over the holdings), and actionable candidates
  (`rebal.tax.harvest`) sell their losing lots and buy the substitute.

Every taxable account that trades, and every account the tax layer planned, then gets its tax
report (`rebal.tax.report`): each sell's lots (by `lot_method`), realised short/long-term gains,
the netted estimated tax and wash-sale flags; other IRA/Roth accounts realise no taxable gain and
get the empty report. So the Python loop runs over the taxable accounts that trade (and the
households and harvest candidates asked for), never over the whole book; selecting them is
vectorised. Nothing here reads the clock: `TaxSettings.as_of` is given.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import numpy as np
import pandas as pd

from rebal.book import Book, build_book
from rebal.core.engine import (
    NO_POLICY,
    POLICY_NAMES,
    Proposal,
    RunConfig,
    kept_cents,
    propose,
    weights_after,
)
from rebal.core.status import Status
from rebal.core.trades import MICRO, Trades, generate_trades
from rebal.core.types import BoolArray, FloatArray, IntArray
from rebal.household import locate
from rebal.io.errors import InputError, Problem
from rebal.io.tables import Tables
from rebal.tax.harvest import HarvestCandidate, HarvestRules, HeldLot, harvest_candidates
from rebal.tax.lots import LotMethod, TaxLot, Term, holding_term, relief_order, relieve_lots
from rebal.tax.money import ZERO, share_of, to_cents
from rebal.tax.optimizer import optimal_plan
from rebal.tax.plan import SHARE_STEP, AccountProblem, Plan, Position, evaluate
from rebal.tax.rates import AccountType, TaxRates
from rebal.tax.report import TradeTax, account_report, buy_trade, lot_json, report_json, sell_trade
from rebal.tax.rulebased import rule_based_plan
from rebal.tax.wash_sales import Side, Transaction, WashGuard
from rebal.tax_inputs import LotIndex, SubstituteGroups, check_lots, substitute_slots

#: Methods whose lots are the planner's own choice (specific identification of its lots).
PLANNER_METHODS = (LotMethod.MIN_TAX, LotMethod.SPECIFIC)
_DIGITS = 12  # float weights become Decimal rounded to this many places


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
    substitutes: SubstituteGroups = ()
    transactions: tuple[Transaction, ...] = ()
    household: bool = False
    tax_inefficient: frozenset[str] = frozenset()
    drift_cost: Decimal | None = None
    withdrawal_dates: Mapping[str, date] = field(default_factory=dict)
    hold_days: int = 30


@dataclass(frozen=True)
class AccountTax:
    """What a tax-aware run adds to one account: the JSON ``tax`` object, the lots each sell
    consumes (symbol → ``lot`` list) and a note to append to the account's reason."""

    tax: dict[str, Any]
    lots: dict[str, list[dict[str, Any]]]
    note: str | None


@dataclass(frozen=True)
class TaxAwareProposal:
    """The proposal with tax-aware orders spliced in, and the tax annotation per account row."""

    proposal: Proposal
    accounts: dict[int, AccountTax]

    def annotation(self, row: int) -> AccountTax:
        """The annotation of `row` (an empty tax report where the account does not trade)."""
        return self.accounts.get(row) or AccountTax(_EMPTY_TAX, {}, None)


_EMPTY_TAX: dict[str, Any] = {
    **report_json(account_report("", AccountType.TAXABLE, (), TaxRates())),
    "method": None,
    "outside_band": {},
}


def run_tax_aware(
    tables: Tables,
    config: RunConfig,
    settings: TaxSettings,
    flows: Mapping[str, int] | None = None,
    holdings_name: str = "holdings",
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[Book, TaxAwareProposal]:
    """Check the lots, build the book (with substitute slots), run the engine, apply the tax
    layer. Raises InputError for unusable lots or withdrawal dates of unknown accounts."""
    check_lots(tables, settings.as_of, holdings_name)
    unknown = sorted(set(settings.withdrawal_dates) - set(tables.accounts["account"]))
    if unknown:
        message = f"unknown account(s): {', '.join(unknown)}"
        raise InputError([Problem("--withdrawal-date", None, None, message)])
    extra = substitute_slots(tables, settings.substitutes) if settings.substitutes else None
    book = build_book(tables, flows, extra)
    proposal = propose(book.arrays, config, on_progress)
    return book, apply_tax(book, tables, proposal, config, settings)


def apply_tax(
    book: Book, tables: Tables, proposal: Proposal, config: RunConfig, settings: TaxSettings
) -> TaxAwareProposal:
    """Re-plan the accounts where tax matters and report every trading account's tax."""
    run = _Run(book, tables, proposal, config, settings)
    if settings.household:
        run.households()
    run.wash_safe_buys()
    run.plan_taxable()
    if settings.tlh:
        run.harvest()
    return run.finish()


def _money(cents: int) -> Decimal:
    return Decimal(int(cents)).scaleb(-2)


def _shares(micro: int) -> Decimal:
    return Decimal(int(micro)).scaleb(-6).normalize() if micro else ZERO


def _dec(x: float) -> Decimal:
    return Decimal(str(round(float(x), _DIGITS)))


def _member(values: np.ndarray, pool: Sequence[object] | np.ndarray) -> BoolArray:
    """Whether each of `values` is in `pool` (hashing: fast for strings, unlike np.isin)."""
    result: BoolArray = pd.Series(values).isin(set(pool)).to_numpy()
    return result


def _piece(lot: TaxLot, shares: Decimal) -> TaxLot:
    """The part `shares` of `lot`, with its pro-rata basis (as `relieve_lots` splits it)."""
    return replace(lot, quantity=shares, cost_basis=share_of(lot.cost_basis, shares, lot.quantity))


class _Run:
    """State of one tax-aware pass over a proposal."""

    def __init__(
        self,
        book: Book,
        tables: Tables,
        proposal: Proposal,
        config: RunConfig,
        settings: TaxSettings,
    ) -> None:
        self.book, self.proposal, self.config, self.s = book, proposal, config, settings
        arrays, drift = book.arrays, proposal.drift
        accounts = book.accounts
        self.symbols = book.symbols()
        self.used = arrays.used
        self.ids = accounts["account"].to_numpy()
        self.kind = accounts["type"].to_numpy()
        self.is_taxable = self.kind == AccountType.TAXABLE.value
        households = accounts["household"].to_numpy()
        self.household = np.where(households == "", self.ids, households)
        self.model = accounts["model"].to_numpy()
        self.keep = kept_cents(arrays, drift, config.cash_reserve)
        prices = tables.prices
        self.price = {
            s: Decimal(t) for s, t in zip(prices["symbol"], prices["price_text"], strict=True)
        }
        self.lots = LotIndex(tables.holdings)
        self.holdings = tables.holdings
        self.guard = WashGuard.from_history(settings.transactions, settings.as_of)
        self._guards: dict[str, WashGuard] = {}
        status = proposal.statuses.status
        self.checkable = (status > int(Status.UNABLE_TO_CHECK)) & arrays.can_trade & drift.priced
        self.liquidation = POLICY_NAMES.index("liquidation")
        self.desired: dict[int, FloatArray] = {}
        self.with_flow: dict[int, bool] = {}
        self.held: set[int] = set()
        self.notes: dict[int, list[str]] = defaultdict(list)
        self.method: dict[int, str] = {}
        self.pieces: dict[tuple[int, str], list[TaxLot]] = {}
        self.problems: dict[int, AccountProblem] = {}
        self.bought: dict[str, set[str]] = defaultdict(set)
        self.lost: dict[str, set[str]] = defaultdict(set)
        self.in_household: set[int] = set()

    # -- helpers ---------------------------------------------------------------------------

    def spendable_cents(self, i: int) -> int:
        a = self.book.arrays
        return int(a.cash_cents[i] + a.pending_cents[i] - self.keep[i])

    def symbol_slots(self, i: int) -> dict[str, int]:
        return {str(self.symbols[i, k]): int(k) for k in np.flatnonzero(self.used[i])}

    def note(self, i: int, text: str) -> None:
        self.notes[i].append(text)

    def guard_of(self, household: str, run_buys: tuple[Transaction, ...] = ()) -> WashGuard:
        """The wash-sale guard of one household (its own recent trades only, so lookups do not
        scan the whole book's history), plus `run_buys` of this run."""
        guard = self._guards.get(household)
        if guard is None:
            guard = replace(
                self.guard,
                recent_buys=tuple(b for b in self.guard.recent_buys if b.household == household),
                recent_losses=tuple(
                    d for d in self.guard.recent_losses if d.household == household
                ),
            )
            self._guards[household] = guard
        return replace(guard, recent_buys=guard.recent_buys + run_buys) if run_buys else guard

    # -- households ------------------------------------------------------------------------

    def households(self) -> None:
        """Rebalance each eligible household of two or more accounts as one portfolio."""
        groups = pd.Series(np.arange(len(self.ids))).groupby(self.household, sort=False).indices
        for name, members in groups.items():
            rows = np.asarray(members, dtype=np.int64)
            if len(rows) < 2:
                continue
            why_not = self._household_obstacle(rows)
            if why_not is None:
                why_not = self._household(str(name), [int(i) for i in rows])
            if why_not is not None:  # said where it matters: the accounts that trade
                for i in rows[self.proposal.policy[rows] >= 0]:
                    self.note(int(i), f"household {name}: account rebalanced alone ({why_not})")

    def _household_obstacle(self, rows: IntArray) -> str | None:
        a = self.book.arrays
        models = set(self.model[rows])
        if len(models) > 1:
            return "its accounts have different models: " + ", ".join(sorted(map(str, models)))
        if not self.checkable[rows].all() or a.liquidate[rows].any():
            return "an account cannot be checked, cannot trade or is being liquidated"
        if (a.restricted[rows] & self.used[rows]).any():
            return "an account has a restricted security"
        if self.is_taxable[rows].all():
            return "no tax-deferred account to trade in"
        if any(self.is_taxable[i] and self.spendable_cents(int(i)) < 0 for i in rows):
            return "a taxable account must raise cash"
        return None

    def _household(self, name: str, rows: list[int]) -> str | None:
        """Place the household's holdings (`rebal.household.locate`); the reason to treat its
        accounts alone instead when that cannot bring every position into its band."""
        a, drift = self.book.arrays, self.proposal.drift
        names: list[str] = []
        for i in rows:
            names += [s for s in self.symbol_slots(i) if s not in names]
        index = {s: j for j, s in enumerate(names)}
        held = np.zeros((len(rows), len(names)))
        weight = np.zeros(len(names))
        low = np.zeros(len(names))
        high = np.zeros(len(names))
        for r, i in enumerate(rows):
            for s, k in self.symbol_slots(i).items():
                j = index[s]
                held[r, j] = drift.value[i, k]
                weight[j] = drift.target[i, k]
                low[j] = drift.edges.band_low[i, k]
                high[j] = max(high[j], drift.edges.band_high[i, k])
        total = float(drift.total[rows].sum())
        share = held.sum(axis=0) / total
        breach = bool(((share < low - 1e-12) | (share > high + 1e-12)).any())
        flow = any(a.pending_cents[i] != 0 or self.spendable_cents(i) < 0 for i in rows)
        if not breach and not flow:
            self.in_household.update(rows)
            for i in rows:
                self.held.add(i)
                self.note(i, f"household {name} is inside its bands as one portfolio: no trades")
            return None
        investable = np.array([self.spendable_cents(i) / 100.0 for i in rows]) + held.sum(axis=1)
        location = locate(
            investable,
            held,
            weight / weight.sum(),
            self.is_taxable[rows],
            np.array([self.kind[i] == AccountType.ROTH.value for i in rows]),
            np.array([s in self.s.tax_inefficient for s in names]),
        )
        after = location.desired.sum(axis=0) / (total + a.pending_cents[rows].sum() / 100.0)
        outside = [names[j] for j in np.flatnonzero((after < low - 1e-9) | (after > high + 1e-9))]
        if outside:
            return (
                f"the tax-deferred accounts cannot bring {', '.join(outside)} within the bands "
                "without sales in taxable accounts"
            )
        self.in_household.update(rows)
        text = (
            f"household {name} rebalanced as one portfolio of {len(rows)} accounts: sales in "
            "tax-deferred accounts, taxable accounts only buy"
        )
        over = [f"{names[j]} {v:,.2f}" for j, v in enumerate(location.over) if v >= 0.01]
        if over:
            text += "; left above the household target in taxable accounts: " + ", ".join(over)
        for r, i in enumerate(rows):
            desired = np.nan_to_num(drift.value[i]).copy()
            for s, k in self.symbol_slots(i).items():
                desired[k] = location.desired[r, index[s]]
            self.desired[i], self.with_flow[i], self.method[i] = desired, True, "household"
            self.note(i, text)
        return None

    # -- taxable accounts ------------------------------------------------------------------

    def plan_taxable(self) -> None:
        """Plan every taxable account where a policy ran, one by one (wash-safe in the run)."""
        policy = self.proposal.policy
        chosen = (policy >= 0) & (policy != self.liquidation) & self.is_taxable
        chosen[list(self.in_household)] = False
        rows = [int(i) for i in np.flatnonzero(chosen)]
        self._policy_buys(rows, chosen)
        for i in self.desired:  # household accounts' buys
            self._record_buys(i)
        for i in rows:
            self._plan_account(i)

    def _policy_buys(self, rows: list[int], replanned: BoolArray) -> None:
        """Record the policy's buys in the other accounts of the households of `rows`: they
        block loss sales there (wash sales within the run)."""
        skip = replanned.copy()
        skip[[*self.desired, *self.held]] = True
        buyer, slot = np.nonzero(self.proposal.trades.buy_cents > 0)
        keep = ~skip[buyer] & _member(self.household[buyer], self.household[rows])
        for i, k in zip(buyer[keep], slot[keep], strict=True):
            self.bought[str(self.household[i])].add(str(self.symbols[i, k]))

    def _record_buys(self, i: int) -> None:
        held = np.nan_to_num(self.proposal.drift.value[i])
        for k in np.flatnonzero(self.desired[i] > held + 0.005):
            self.bought[str(self.household[i])].add(str(self.symbols[i, k]))

    def _plan_account(self, i: int) -> None:
        if self._withdrawal_soon(i):
            return
        problem = self._problem(i)
        if problem is None:
            self.note(
                i,
                "no tax-aware plan (no value to invest outside restricted securities); the "
                "policy's orders stand",
            )
            return
        plan = self._solve(i, problem)
        if self._owes(i, problem, plan):
            problem, plan = self._raise_anyway(i, problem, plan)
        if self.s.drift_cost is not None and self.spendable_cents(i) >= 0:
            worth = self._worth_it(i, problem, plan)
            if worth is None:
                self.held.add(i)
                return
            plan = worth
        self.problems[i] = problem
        self._apply(i, problem, plan)

    def _withdrawal_soon(self, i: int) -> bool:
        when = self.s.withdrawal_dates.get(str(self.ids[i]))
        if when is None or self.spendable_cents(i) < 0 or self.book.arrays.pending_cents[i]:
            return False
        days = (when - self.s.as_of).days
        if not 0 <= days <= self.s.hold_days:
            return False
        self.held.add(i)
        self.note(
            i,
            f"rebalancing held: a withdrawal is scheduled on {when} (within {self.s.hold_days} "
            "days); its sales will rebalance without realising gains twice",
        )
        return True

    def _problem(self, i: int) -> AccountProblem | None:
        a, drift = self.book.arrays, self.proposal.drift
        free = np.flatnonzero(self.used[i] & ~a.restricted[i])
        weight_sum = float(drift.target[i, free].sum())
        cash = _money(self.spendable_cents(i))
        account = str(self.ids[i])
        positions = []
        for k in free:
            symbol = str(self.symbols[i, k])
            lots = self.lots.lots(account, symbol)
            if sum((lot.quantity for lot in lots), ZERO) != _shares(a.quantity_micro[i, k]):
                return None
            positions.append((k, symbol, lots))
        value = cash + sum(
            (lot.quantity * self.price[s] for _, s, lots in positions for lot in lots), ZERO
        )
        if value <= 0 or weight_sum <= 0:
            return None
        scale = float(drift.total[i]) / float(value)
        hh = str(self.household[i])
        symbols = [s for _, s, _ in positions]
        no_buy, no_loss = self.guard_of(hh).blocked(hh, symbols)
        no_buy |= {s for s in symbols if any(self.guard.same_security(s, x) for x in self.lost[hh])}
        no_loss |= {
            s for s in symbols if any(self.guard.same_security(s, x) for x in self.bought[hh])
        }
        return AccountProblem(
            account=account,
            positions=tuple(
                Position(
                    symbol=s,
                    price=self.price[s],
                    target=_dec(drift.target[i, k] / weight_sum),
                    band=_dec(max(drift.target[i, k] - drift.edges.band_low[i, k], 0.0) * scale),
                    lots=lots,
                )
                for k, s, lots in positions
            ),
            cash=cash,
            rates=self.s.rates,
            as_of=self.s.as_of,
            gain_budget=self.s.gain_budget,
            short_term_gains=self.s.short_term_gains,
            blocked_buys=frozenset(no_buy),
            blocked_loss_sales=frozenset(no_loss),
        )

    def _solve(self, i: int, problem: AccountProblem) -> Plan:
        if self.s.optimizer:
            try:
                self.method[i] = "optimizer"
                return optimal_plan(problem).plan
            except RuntimeError as exc:
                self.note(i, f"{exc}; rule-based plan used")
        self.method[i] = "rule-based"
        return rule_based_plan(problem)

    def _owes(self, i: int, problem: AccountProblem, plan: Plan) -> bool:
        """Whether the account owes cash (a withdrawal, a debit: not the cash it would like to
        keep) that `plan` does not raise."""
        a = self.book.arrays
        if a.cash_cents[i] + a.pending_cents[i] >= 0:
            return False
        return evaluate(problem, plan).cash_after + _money(self.keep[i]) < 0

    def _raise_anyway(
        self, i: int, problem: AccountProblem, plan: Plan
    ) -> tuple[AccountProblem, Plan]:
        """Cash owed (a withdrawal, a debit) comes before tax preferences: when the plan leaves
        cash short, sell losses a wash sale would wash, then set the gain limits aside."""
        relaxations: tuple[tuple[dict[str, Any], str], ...] = (
            (
                {"blocked_loss_sales": frozenset()},
                "losses sold to raise the cash owed although the household bought the security "
                "recently or buys it in this run (wash sale)",
            ),
            (
                {"gain_budget": None, "short_term_gains": True},
                "gain budget and short-term switch set aside to raise the cash owed",
            ),
        )
        for change, why in relaxations:
            relaxed = replace(problem, **change)
            if relaxed == problem:
                continue
            problem, plan = relaxed, self._solve(i, relaxed)
            self.note(i, why)
            if not self._owes(i, problem, plan):
                break
        return problem, plan

    def _worth_it(self, i: int, problem: AccountProblem, plan: Plan) -> Plan | None:
        """The plan if its tax is worth the drift it closes; else the plan realising no net
        gain (None when that trades nothing), saying so in the account's note."""
        assert self.s.drift_cost is not None
        result = evaluate(problem, plan)
        total = problem.total
        closed = sum(
            (
                abs(p.value - p.target * total)
                - abs(result.weights_after[p.symbol] * total - p.target * total)
                for p in problem.positions
            ),
            ZERO,
        )
        benefit = to_cents(max(closed, ZERO) * self.s.drift_cost)
        if result.estimated_tax <= benefit:
            return plan
        why = (
            f"estimated tax {result.estimated_tax:,.2f} exceeds the benefit {benefit:,.2f} of "
            f"closing the drift ({to_cents(closed):,.2f} at a drift cost of "
            f"{(self.s.drift_cost * 10000).normalize():f} bps)"
        )
        budget = ZERO if problem.gain_budget is None else min(problem.gain_budget, ZERO)
        smaller = self._solve(i, replace(problem, gain_budget=budget))
        if not smaller.sells and not smaller.buys:
            self.note(i, f"rebalancing held: {why}")
            return None
        self.note(i, f"trades shrunk to those realising no net gain: {why}")
        return smaller

    def _apply(self, i: int, problem: AccountProblem, plan: Plan) -> None:
        """Turn `plan` into desired values of row `i` (lots trimmed to the lot method)."""
        owner = problem.lot_owner()
        pieces: dict[str, list[TaxLot]] = defaultdict(list)
        for lot_id, shares in plan.sells.items():
            position = owner[lot_id]
            lot = next(lot for lot in position.lots if lot.lot_id == lot_id)
            pieces[position.symbol].append(_piece(lot, shares))
        wanted = {s: sum((p.quantity for p in parts), ZERO) for s, parts in pieces.items()}
        if self.s.lot_method in PLANNER_METHODS:
            quantities = {s: self._step(q) for s, q in wanted.items()}
            for s, parts in pieces.items():
                self.pieces[(i, s)] = parts
        else:
            quantities = self._method_quantities(problem, wanted)
        buys = dict(plan.buys)
        for symbol, amount in self._substitutes(i, problem, plan).items():
            buys[symbol] = buys.get(symbol, ZERO) + amount
        a, drift = self.book.arrays, self.proposal.drift
        desired = np.nan_to_num(drift.value[i]).copy()
        for symbol, k in self.symbol_slots(i).items():
            sold = int(quantities.get(symbol, ZERO) * MICRO)
            bought = float(buys.get(symbol, ZERO))
            if sold or bought:
                desired[k] = (a.quantity_micro[i, k] - sold) / MICRO * a.price[i, k] + bought
        self.desired[i], self.with_flow[i] = desired, True
        hh = str(self.household[i])
        self.bought[hh].update(s for s, v in buys.items() if v > 0)
        for symbol, parts in pieces.items():
            if any(p.cost_per_share > self.price[symbol] for p in parts):
                self.lost[hh].add(symbol)

    def _step(self, shares: Decimal) -> Decimal:
        """Shares rounded down to what an order may hold (whole shares with --whole-shares)."""
        step = Decimal(1) if self.config.rules.whole_shares else SHARE_STEP
        return shares.quantize(step, rounding=ROUND_FLOOR) if step == 1 else shares

    def _method_quantities(
        self, problem: AccountProblem, wanted: Mapping[str, Decimal]
    ) -> dict[str, Decimal]:
        """Per position, the planned shares trimmed so that relieving them by the run's lot
        method keeps the gain budget and the short-term switch (losing positions first)."""
        method, as_of, rates = self.s.lot_method, self.s.as_of, self.s.rates
        by_symbol = {p.symbol: p for p in problem.positions}

        def gain(symbol: str, shares: Decimal) -> Decimal:
            p = by_symbol[symbol]
            relief = relieve_lots(p.lots, shares, method, p.price, as_of, rates=rates)
            return relief.realised_st + relief.realised_lt

        left = problem.gain_budget
        out: dict[str, Decimal] = {}
        for symbol in sorted(wanted, key=lambda s: (gain(s, wanted[s]), s)):
            p = by_symbol[symbol]
            shares = self._step(self._capped(p, wanted[symbol], left, problem.short_term_gains))
            out[symbol] = shares
            if left is not None and shares > 0:
                left -= gain(symbol, shares)
        return out

    def _capped(
        self, p: Position, wanted: Decimal, budget: Decimal | None, short_term_gains: bool
    ) -> Decimal:
        """Most shares up to `wanted`, taken in lot-method order, within `budget` (net gain)
        and, when short-term gains are forbidden, before the first short-term gain lot."""
        method, as_of = self.s.lot_method, self.s.as_of
        order = relief_order(p.lots, method, p.price, as_of, rates=self.s.rates)
        quantity = sum((lot.quantity for lot in p.lots), ZERO)
        average = sum((lot.cost_basis for lot in p.lots), ZERO) / quantity if quantity else ZERO
        taken = gained = ZERO
        for j in order:
            lot = p.lots[j]
            per_share = p.price - (average if method is LotMethod.AVERAGE else lot.cost_per_share)
            take = min(lot.quantity, wanted - taken)
            if take <= 0:
                break
            short = holding_term(lot.acquired, as_of) is Term.SHORT
            if per_share > 0 and short and not short_term_gains:
                break
            if budget is not None and per_share > 0 and gained + take * per_share > budget:
                room = ((budget - gained) / per_share).quantize(SHARE_STEP, rounding=ROUND_FLOOR)
                return taken + max(room, ZERO)
            taken += take
            gained += take * per_share
        return taken

    def _substitutes(self, i: int, problem: AccountProblem, plan: Plan) -> dict[str, Decimal]:
        """Money for substitutes of buys the wash-sale rule blocked: what each blocked position
        ends below its band goes to the first wash-safe member of its group with a slot."""
        if not problem.blocked_buys or not self.s.substitutes:
            return {}
        below = evaluate(problem, plan).outside_band
        out: dict[str, Decimal] = {}
        for p in problem.positions:
            if p.symbol not in problem.blocked_buys or p.symbol not in below:
                continue
            if p.value - _plan_sold(plan, p) > (p.target - p.band) * problem.total:
                continue  # above its band, not below
            other = self._safe_substitute(i, p.symbol, problem.blocked_buys)
            if other is not None:
                out[other] = out.get(other, ZERO) + below[p.symbol]
        return out

    def _safe_substitute(self, i: int, symbol: str, blocked: frozenset[str]) -> str | None:
        """The first member of `symbol`'s substitute group that row `i` has a slot for and may
        buy without a wash sale; the account's note says what was bought instead."""
        slots = self.symbol_slots(i)
        hh = str(self.household[i])
        group = next((g for g in self.s.substitutes if symbol in g), ())
        for other in group:
            safe = (
                other in slots
                and other not in blocked
                and not self.guard.same_security(other, symbol)
                and self.guard_of(hh).buy_blocker(hh, other) is None
                and not any(self.guard.same_security(other, x) for x in self.lost[hh])
            )
            if safe:
                self.note(
                    i,
                    f"{symbol} not bought (wash sale: sold at a loss in the household in the "
                    f"last 30 days); {other} bought instead",
                )
                return other
        return None

    # -- buys of accounts the planner does not see -------------------------------------------

    def wash_safe_buys(self) -> None:
        """IRA/Roth accounts, and households rebalanced as one, buy nothing the household sold
        at a loss in the last 30 days (in an IRA the loss would be lost for good): such a buy
        goes to a wash-safe substitute, or its money stays in cash."""
        losers = list({d.household for d in self.guard.recent_losses})
        if not losers:
            return
        buys = (self.proposal.trades.buy_cents > 0).any(axis=1)
        rows = ~self.is_taxable & buys & (self.proposal.policy >= 0)
        rows[list(self.held)] = False
        rows[list(self.desired)] = True
        rows &= _member(self.household, losers)
        for i in map(int, np.flatnonzero(rows)):
            self._wash_safe_row(i)

    def _wash_safe_row(self, i: int) -> None:
        a, drift, t = self.book.arrays, self.proposal.drift, self.proposal.trades
        held = np.nan_to_num(drift.value[i])
        desired = self.desired.get(i)
        if desired is None:  # the policy's orders as desired values
            price = np.nan_to_num(a.price[i])
            desired = held - t.sell_micro[i] / MICRO * price + t.buy_cents[i] / 100.0
        desired = desired.copy()
        hh = str(self.household[i])
        changed = False
        for symbol, k in self.symbol_slots(i).items():
            extra = desired[k] - held[k]
            if extra <= 0.005 or self.guard_of(hh).buy_blocker(hh, symbol) is None:
                continue
            desired[k], changed = held[k], True
            other = self._safe_substitute(i, symbol, frozenset({symbol}))
            if other is not None:
                desired[self.symbol_slots(i)[other]] += extra
            else:
                self.note(
                    i,
                    f"{symbol} not bought (wash sale: sold at a loss in the household in the "
                    "last 30 days); its money stays in cash",
                )
        if changed:
            self.desired[i] = desired
            self.with_flow.setdefault(i, True)
            self.method.setdefault(i, "wash-safe")

    # -- loss harvesting -------------------------------------------------------------------

    def harvest(self) -> None:
        """Harvest losses in taxable accounts (positions this run does not otherwise trade)."""
        rows = self._harvest_rows()
        if not rows:
            return
        self._policy_buys(rows, np.zeros(len(self.ids), dtype=bool))
        held_lots: dict[str, list[HeldLot]] = defaultdict(list)
        for i in rows:
            traded = self._traded_symbols(i)
            for symbol, k in self.symbol_slots(i).items():
                if symbol in traded or self.book.arrays.restricted[i, k]:
                    continue
                hh = str(self.household[i])
                for lot in self.lots.lots(str(self.ids[i]), symbol):
                    held_lots[hh].append(
                        HeldLot(hh, str(self.ids[i]), AccountType.TAXABLE, symbol, lot)
                    )
        row_of = {str(self.ids[i]): i for i in rows}
        for hh, lots in held_lots.items():  # wash sales are a household matter
            run_buys = tuple(
                Transaction(
                    0,
                    self.s.as_of,
                    "(this run)",
                    hh,
                    AccountType.TAXABLE,
                    s,
                    Side.BUY,
                    Decimal(1),
                    ZERO,
                    "run",
                )
                for s in self.bought[hh]
            )
            guard = self.guard_of(hh, run_buys)
            candidates = harvest_candidates(
                lots,
                self.price,
                self.s.as_of,
                self.s.rates,
                rules=self.s.harvest_rules,
                substitutes=self.s.substitutes,
                guard=guard,
            )
            for c in candidates:
                i = row_of[c.account]
                lost = self.lost[hh]
                if not c.actionable or any(guard.same_security(str(c.substitute), x) for x in lost):
                    continue
                if c.substitute in self.symbol_slots(i):
                    self._harvest_one(i, c)

    def _harvest_rows(self) -> list[int]:
        """Taxable, tradable accounts with a lot below the per-lot loss threshold."""
        h = self.holdings
        price = h["symbol"].map({s: float(p) for s, p in self.price.items()})
        basis = h["cost_basis_cents"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        loss = basis / 100.0 - h["quantity_micro"].to_numpy() / MICRO * price.to_numpy()
        fraction = float(self.s.harvest_rules.min_loss_fraction)
        losing = set(h["account"][(loss > 0) & (loss >= fraction * basis / 100.0)])
        rows = (
            self.checkable
            & self.is_taxable
            & _member(self.ids, list(losing))
            & (self.proposal.policy != self.liquidation)
        )
        rows[list(self.held)] = False
        return [int(i) for i in np.flatnonzero(rows)]

    def _traded_symbols(self, i: int) -> set[str]:
        if i in self.desired:
            held = np.nan_to_num(self.proposal.drift.value[i])
            moved = np.abs(self.desired[i] - held) > 0.005
        else:
            t = self.proposal.trades
            moved = (t.sell_micro[i] > 0) | (t.buy_cents[i] > 0)
        return {str(self.symbols[i, k]) for k in np.flatnonzero(moved)}

    def _harvest_one(self, i: int, c: HarvestCandidate) -> None:
        a, drift = self.book.arrays, self.proposal.drift
        if i not in self.desired:
            self.desired[i] = np.nan_to_num(drift.value[i]).copy()
            self.with_flow[i] = bool(self.proposal.policy[i] >= 0)
            self.method[i] = "harvest"
        elif not self.method[i].endswith("harvest"):
            self.method[i] += "+harvest"
        slots = self.symbol_slots(i)
        k, s = slots[c.symbol], slots[str(c.substitute)]
        proceeds = float(c.proceeds)
        self.desired[i][k] = (
            (a.quantity_micro[i, k] - int(c.quantity * MICRO)) / MICRO * a.price[i, k]
        )
        self.desired[i][s] += proceeds
        by_id = {lot.lot_id: lot for lot in self.lots.lots(c.account, c.symbol)}
        self.pieces[(i, c.symbol)] = [_piece(by_id[x.lot_id], x.quantity) for x in c.sales]
        self.bought[c.household].add(str(c.substitute))
        self.lost[c.household].add(c.symbol)
        self.note(i, f"harvest: {c.rationale}")

    # -- the result ------------------------------------------------------------------------

    def finish(self) -> TaxAwareProposal:
        """Re-make the orders of the re-planned rows, splice them, and report the tax."""
        a, p = self.book.arrays, self.proposal
        t = p.trades
        fields = {
            "sell_micro": t.sell_micro.copy(),
            "sell_cents": t.sell_cents.copy(),
            "buy_cents": t.buy_cents.copy(),
            "buy_micro": t.buy_micro.copy(),
            "cash_after_cents": t.cash_after_cents.copy(),
            "dropped": t.dropped.copy(),
        }
        policy = p.policy.copy()
        rows = np.array(sorted(set(self.desired) - self.held), dtype=np.int64)
        if rows.size:
            flow = np.where([self.with_flow[r] for r in rows], a.pending_cents[rows], 0)
            new = generate_trades(
                a.quantity_micro[rows],
                a.price[rows],
                np.stack([self.desired[r] for r in rows]),
                a.cash_cents[rows],
                flow,
                self.keep[rows],
                self.used[rows] & ~a.restricted[rows] & self.checkable[rows, None],
                self.config.rules,
            )
            for name, values in fields.items():
                values[rows] = getattr(new, name)
        held = np.array(sorted(self.held), dtype=np.int64)
        if held.size:
            for name in ("sell_micro", "sell_cents", "buy_cents", "buy_micro", "dropped"):
                fields[name][held] = 0
            fields["cash_after_cents"][held] = a.cash_cents[held]
            policy[held] = NO_POLICY
        trades = Trades(**fields)
        proposal = Proposal(
            drift=p.drift,
            statuses=p.statuses,
            policy=policy,
            trades=trades,
            weight_after=weights_after(a, p.drift, trades),
        )
        return TaxAwareProposal(proposal, self._reports(trades))

    def _reports(self, trades: Trades) -> dict[int, AccountTax]:
        """Tax reports of the taxable accounts that trade and of the accounts the tax layer
        planned (households); other IRA/Roth accounts get the empty report (no taxable gain)."""
        trading = trades.count > 0
        touched = np.zeros_like(trading)
        touched[list(self.desired)] = True
        traded = [int(i) for i in np.flatnonzero(trading & (self.is_taxable | touched))]
        run_buys = self._run_buys(trades, traded)
        out: dict[int, AccountTax] = {}
        for i in sorted(set(traded) | set(self.notes)):
            note = "; ".join(self.notes[i]) or None
            if i not in traded:
                out[i] = AccountTax(_EMPTY_TAX | {"method": self.method.get(i)}, {}, note)
                continue
            hh = str(self.household[i])
            guard = self.guard_of(hh, tuple(run_buys.get(hh, ())))
            out[i] = self._report(i, trades, guard, note)
        return out

    def _run_buys(self, trades: Trades, reported: list[int]) -> dict[str, list[Transaction]]:
        """This run's buys in the households of the `reported` accounts, per household (so a
        loss sold while another account of the household buys is flagged)."""
        buyer, slot = np.nonzero(trades.buy_cents > 0)
        keep = _member(self.household[buyer], self.household[reported])
        buys: dict[str, list[Transaction]] = defaultdict(list)
        for i, k in zip(buyer[keep], slot[keep], strict=True):
            buys[str(self.household[i])].append(
                Transaction(
                    0,
                    self.s.as_of,
                    str(self.ids[i]),
                    str(self.household[i]),
                    AccountType(self.kind[i]),
                    str(self.symbols[i, k]),
                    Side.BUY,
                    _shares(trades.buy_micro[i, k]) or Decimal(1),
                    _money(trades.buy_cents[i, k]),
                    f"run-{self.ids[i]}-{self.symbols[i, k]}",
                )
            )
        return buys

    def _report(self, i: int, trades: Trades, guard: WashGuard, note: str | None) -> AccountTax:
        kind = AccountType(self.kind[i])
        account, hh = str(self.ids[i]), str(self.household[i])
        taxes: list[TradeTax] = []
        lots: dict[str, list[dict[str, Any]]] = {}
        sold: dict[str, Decimal] = {}
        for k in np.flatnonzero(trades.sell_micro[i] > 0):
            symbol = str(self.symbols[i, k])
            trade = self._sell(i, symbol, _shares(trades.sell_micro[i, k]), kind, guard)
            taxes.append(trade)
            lots[symbol] = [lot_json(s) for s in trade.sales]
            sold.update({s.lot_id: s.quantity for s in trade.sales})
        buys: dict[str, Decimal] = {}
        for k in np.flatnonzero(trades.buy_cents[i] > 0):
            symbol = str(self.symbols[i, k])
            buys[symbol] = _money(trades.buy_cents[i, k])
            taxes.append(
                buy_trade(
                    account,
                    kind,
                    symbol,
                    _shares(trades.buy_micro[i, k]),
                    self.price[symbol],
                    household=hh,
                    guard=guard,
                )
            )
        report = account_report(account, kind, taxes, self.s.rates)
        tax = report_json(report) | {"method": self.method.get(i), "outside_band": {}}
        problem = self.problems.get(i)
        if problem is not None and kind.taxable:
            try:
                result = evaluate(problem, Plan("final", sold, buys))
            except (KeyError, StopIteration):  # lots sold outside the plan's positions
                result = None
            if result is not None:
                tax["outside_band"] = {s: float(v) for s, v in result.outside_band.items()}
                if result.outside_band and problem.gain_budget is not None:
                    left = ", ".join(f"{s} {v:,.2f}" for s, v in result.outside_band.items())
                    extra = f"gain budget {problem.gain_budget:,.2f} left outside the bands: {left}"
                    note = f"{note}; {extra}" if note else extra
        return AccountTax(tax, lots, note)

    def _sell(
        self, i: int, symbol: str, quantity: Decimal, kind: AccountType, guard: WashGuard
    ) -> TradeTax:
        """The tax of selling `quantity` of `symbol` in row `i`, lots by the run's method."""
        account, hh = str(self.ids[i]), str(self.household[i])
        price = self.price[symbol]
        lots = self.lots.lots(account, symbol)
        if not lots:
            rationale = f"Sell {quantity} {symbol}: no tax in an {kind.value.upper()} account."
            return TradeTax(
                account, kind, symbol, Side.SELL, quantity, price, (), ZERO, None, rationale
            )
        as_of, rates = self.s.as_of, self.s.rates
        chosen: Sequence[TaxLot] = lots
        ids: list[str] | None = None
        method = self.s.lot_method
        if method is LotMethod.SPECIFIC:  # no lots named outside a plan: least tax
            method = LotMethod.MIN_TAX
        pieces = self.pieces.get((i, symbol))
        if pieces and quantity <= sum((p.quantity for p in pieces), ZERO):
            # The planner's (or the harvest's) own lots; named "by min-tax" when that is what
            # min-tax order gives anyway.
            named = [p.lot_id for p in pieces]
            planned = relieve_lots(
                pieces, quantity, LotMethod.SPECIFIC, price, as_of, lot_ids=named
            )
            natural = relieve_lots(lots, quantity, LotMethod.MIN_TAX, price, as_of, rates=rates)
            same = sorted((s.lot_id, s.quantity) for s in planned.sales) == sorted(
                (s.lot_id, s.quantity) for s in natural.sales
            )
            if not (same and method is LotMethod.MIN_TAX):
                chosen, ids, method = pieces, named, LotMethod.SPECIFIC
        trade, _ = sell_trade(
            account,
            kind,
            symbol,
            chosen,
            quantity,
            price,
            as_of,
            rates,
            method,
            lot_ids=ids,
            household=hh,
            guard=guard,
        )
        return trade


def _plan_sold(plan: Plan, position: Position) -> Decimal:
    """Market value of `position` that `plan` sells."""
    ids = {lot.lot_id for lot in position.lots}
    shares = sum((q for lot_id, q in plan.sells.items() if lot_id in ids), ZERO)
    return shares * position.price
