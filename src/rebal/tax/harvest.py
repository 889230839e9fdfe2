"""Tax-loss harvesting candidates: which losing lots to sell, and what to buy instead.

A lot is a harvesting candidate in a taxable account when its unrealised loss is at least
`HarvestRules.min_loss_fraction` of its basis; the candidate lots of one position (account and
symbol) are harvested together when their loss adds up to at least `HarvestRules.min_loss`.
The proceeds buy a substitute from the symbol's equivalence group (for example VTI, ITOT, SCHB:
funds tracking different indexes of the same market, so not substantially identical), which
keeps the allocation while the loss is realised.

Nothing here creates a wash sale (`rebal.tax.wash_sales.WashGuard` on the household's recent
trades): a position is not harvested when a substantially identical security was bought in the
household in the last 30 days (unless those are the very lots sold), a substitute is not bought
when it was sold at a loss in the last 30 days, and within one run a security sold at a loss is
never another candidate's substitute, nor is a substitute bought in the run harvested after.
Each candidate says in plain words what to do, what it saves, and when the security sold may be
bought back. Everything is a pure function of its arguments.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from rebal.tax.lots import LotMethod, LotSale, SoldLots, TaxLot, Term, relieve_lots
from rebal.tax.money import ZERO, money_shown, shares_shown, to_cents
from rebal.tax.rates import AccountType, TaxRates
from rebal.tax.wash_sales import WashGuard

#: The lot id of a buy this run makes (the guard's `recent_buys` include them), so a blocked
#: harvest says "is bought in this run" rather than giving a trade date.
RUN_BUY = "run"


@dataclass(frozen=True)
class HeldLot:
    """A tax lot held in an account of a household."""

    household: str
    account: str
    account_type: AccountType
    symbol: str
    lot: TaxLot


@dataclass(frozen=True)
class HarvestRules:
    """Loss thresholds: per lot as a fraction of basis, per position in currency."""

    min_loss: Decimal = Decimal(500)
    min_loss_fraction: Decimal = Decimal("0.05")


@dataclass(frozen=True)
class HarvestCandidate(SoldLots):
    """Sell `lots` of `symbol` at a loss and buy `substitute` for the proceeds (if not blocked)."""

    household: str
    account: str
    symbol: str
    sales: tuple[LotSale, ...]
    substitute: str | None
    blocked: str | None
    tax_value: Decimal
    rationale: str

    @property
    def loss(self) -> Decimal:
        """Loss realised (positive amount)."""
        return self.basis - self.proceeds

    @property
    def actionable(self) -> bool:
        """Whether the harvest can be done now: a safe substitute and no wash sale."""
        return self.blocked is None and self.substitute is not None


def _loss_value(sales: Sequence[LotSale], rates: TaxRates) -> Decimal:
    """Tax saved by realising these losses at the marginal rates (positive)."""
    st = sum((s.gain for s in sales if s.term is Term.SHORT), ZERO)
    lt = sum((s.gain for s in sales if s.term is Term.LONG), ZERO)
    return to_cents(-(st * rates.short_term_total + lt * rates.long_term_total))


def _qualifying(held: Sequence[HeldLot], price: Decimal, rules: HarvestRules) -> list[HeldLot]:
    """The lots whose unrealised loss reaches the per-lot fraction threshold."""
    chosen = []
    for h in held:
        loss = h.lot.cost_basis - h.lot.quantity * price
        if loss > 0 and loss >= rules.min_loss_fraction * h.lot.cost_basis:
            chosen.append(h)
    return chosen


def harvest_candidates(
    lots: Sequence[HeldLot],
    prices: Mapping[str, Decimal],
    as_of: date,
    rates: TaxRates,
    *,
    rules: HarvestRules | None = None,
    substitutes: Sequence[Sequence[str]] = (),
    guard: WashGuard | None = None,
) -> list[HarvestCandidate]:
    """Harvesting candidates of the taxable accounts, largest tax saving first.

    `substitutes` are equivalence groups (ordered: the first safe member is chosen). `guard`
    holds the household's recent trades (none when omitted). Blocked candidates are returned
    too, with the reason, so a report can say why a loss was left alone. Raises ValueError when
    a held symbol has no price.
    """
    rules = rules or HarvestRules()
    guard = guard or WashGuard(as_of, {}, (), ())
    group: dict[str, Sequence[str]] = {s: members for members in substitutes for s in members}
    positions: dict[tuple[str, str, str], list[HeldLot]] = defaultdict(list)
    for one in lots:
        if one.account_type.taxable:
            positions[(one.household, one.account, one.symbol)].append(one)

    drafts: list[tuple[Decimal, tuple[str, str, str], tuple[LotSale, ...]]] = []
    for key, held in positions.items():
        symbol = key[2]
        if symbol not in prices:
            raise ValueError(f"no price for {symbol}, held in account {key[1]}")
        chosen = _qualifying(held, prices[symbol], rules)
        if not chosen:
            continue
        relief = relieve_lots(
            [h.lot for h in held],
            sum((h.lot.quantity for h in chosen), ZERO),
            LotMethod.SPECIFIC,
            prices[symbol],
            as_of,
            lot_ids=[h.lot.lot_id for h in chosen],
        )
        if -(relief.realised_st + relief.realised_lt) >= rules.min_loss:
            drafts.append((_loss_value(relief.sales, rates), key, relief.sales))
    drafts.sort(key=lambda d: (-d[0], d[1]))

    sold_at_loss: dict[str, set[str]] = defaultdict(set)
    bought: dict[str, set[str]] = defaultdict(set)
    candidates = []
    for value, (household, account, symbol), sales in drafts:
        sold_in_full = {(account, s.lot_id) for s in sales}
        blocked = None
        buy = guard.loss_sale_blocker(household, symbol, sold_in_full)
        if buy is not None and buy.lot_id == RUN_BUY:
            blocked = (
                f"{buy.symbol} is bought in this run in {_kind(buy.account_type)} account "
                f"{buy.account} of the household: a loss now would be a wash sale"
            )
        elif buy is not None:
            blocked = (
                f"{buy.symbol} was bought on {buy.trade_date} in account {buy.account}: "
                "a loss now would be a wash sale"
            )
        elif any(guard.same_security(symbol, b) for b in bought[household]):
            blocked = f"{symbol} is bought as a substitute in this run"
        substitute = None
        if blocked is None:
            substitute, blocked = _substitute(
                guard, household, symbol, group.get(symbol, ()), sold_at_loss[household]
            )
        if blocked is None and substitute is not None:
            sold_at_loss[household].add(symbol)
            bought[household].add(substitute)
        candidate = HarvestCandidate(
            household=household,
            account=account,
            symbol=symbol,
            sales=sales,
            substitute=substitute,
            blocked=blocked,
            tax_value=value,
            rationale="",
        )
        candidates.append(_with_rationale(candidate, guard))
    return candidates


def _kind(kind: AccountType) -> str:
    return {AccountType.IRA: "IRA", AccountType.ROTH: "Roth"}.get(kind, "taxable")


def _substitute(
    guard: WashGuard,
    household: str,
    symbol: str,
    members: Sequence[str],
    sold_at_loss: set[str],
) -> tuple[str | None, str | None]:
    """The first wash-safe member of the group, or the reason there is none."""
    reasons = []
    for other in members:
        if other == symbol or guard.same_security(other, symbol):
            continue
        loss = guard.buy_blocker(household, other)
        if loss is not None:
            reasons.append(f"{other} was sold at a loss on {loss.sold}")
        elif any(guard.same_security(other, s) for s in sold_at_loss):
            reasons.append(f"{other} is sold at a loss in this run")
        else:
            return other, None
    if not reasons:
        return None, f"no substitute configured for {symbol}"
    return None, "no wash-safe substitute: " + "; ".join(reasons)


def _with_rationale(candidate: HarvestCandidate, guard: WashGuard) -> HarvestCandidate:
    lots = ", ".join(
        f"{shares_shown(s.quantity)} from lot {s.lot_id} ({s.term} term)" for s in candidate.sales
    )
    head = (
        f"Sell {shares_shown(candidate.quantity)} {candidate.symbol} in {candidate.account} "
        f"({lots}) at a loss of {money_shown(candidate.loss)}"
    )
    if candidate.blocked is not None:
        text = f"Not harvested: {candidate.blocked}. {head} would save about "
        text += f"{money_shown(candidate.tax_value)} in tax."
    else:
        text = (
            f"{head}, buy {money_shown(candidate.proceeds)} of {candidate.substitute} to keep "
            f"the allocation; estimated tax saved {money_shown(candidate.tax_value)}. Do not buy "
            f"{candidate.symbol} or a substantially identical security in the household before "
            f"{guard.rebuy_after()}."
        )
    return replace(candidate, rationale=text)
