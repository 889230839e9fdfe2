"""Wash-sale calculator over a household's transaction history (IRC §1091, IRS Pub 550).

A loss on a sale in a taxable account is disallowed when substantially identical shares are
bought within 30 days before or after the sale, in ANY account of the household (spouses' and
retirement accounts included). The disallowed loss is added to the basis of the replacement
shares and the sold shares' holding period is carried over to them, so the loss is deferred, not
lost; if the replacement shares are bought in an IRA or Roth the loss is lost for good (Rev. Rul.
2008-5) and no basis is adjusted.

Rules applied, in order:

- Sales are processed in date order; trades on one day happen in line (file) order. The loss of
  each lot part sold (one Form 8949 line) is checked once, at the end of its sale day, with the
  basis it has by then (so chains of wash sales carry through).
- Replacement shares are matched in the order they were bought, earliest first (Pub 550, "More
  or less stock bought than sold", Example 2). When fewer replacement shares exist than shares
  sold, only the loss on the matched shares is disallowed, pro rata per share (Example 1).
- Each replacement share replaces at most one sold share.
- Shares from the same purchase as the shares sold are not replacements for them (selling half
  of one 200-share purchase is not a wash sale; the IRS position quoted by Fairmark).
- SAME-DAY RULE (the choice this module makes; the adlr suite contradicts itself here): shares
  bought before a loss sale count as replacements only if they are still held at the end of the
  sale day. Several lots sold on one day are one disposal, so they never wash each other, whether
  they were bought on the same day or not; shares bought later that same day, after the sale,
  DO count (a day trader's buy-sell-buy-sell: Fairmark "same day" example). Consequently shares
  already sold before the loss sale are never replacements. The adlr cases `two_lots_same_days`,
  `two_lots_different_buy_days` and `three_lots_same_days` disagree with this rule;
  `same_day_sold_not_replacement` and `fairmark_sameday_1` agree.
- The replacement's holding period starts `days held` before its own purchase date, where
  `days held` runs from the sold shares' (possibly already adjusted) acquisition to the sale.
- Losses inside IRA and Roth accounts are not deductible, so they are not checked.
- A gain, like IRS Pub 550 says, is never reduced by another block's washed loss.

Which lots a sale consumes: the named purchase (`lot_id`, specific identification) or else FIFO
by holding-period start within the account and symbol. Substantially identical securities are
configured as groups of symbols (for example share classes GOOG and GOOGL); by default only the
same symbol is identical.
"""

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from rebal.tax.lots import LotMethod, TaxLot, Term, holding_term, relieve_lots
from rebal.tax.money import ZERO, allocate, share_of
from rebal.tax.rates import AccountType

#: Days before and after a loss sale in which a purchase is a replacement.
WINDOW_DAYS = 30


class Side(StrEnum):
    """Buy or sell."""

    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True)
class Transaction:
    """One trade. `amount` is the gross value (cost of a buy, proceeds of a sell).

    `line` is the trade's position in the history (for a file: its line number); trades on one
    day happen in line order. `lot_id` names the lot a buy creates or the lot a sell sells.
    A buy may open a lot carried from a history before this one: `acquired` is its holding
    period's start when that differs from the trade date (a carried holding period, its
    `amount` the carried basis), and `replacement` marks shares an earlier wash sale already
    used as replacement shares, which cannot replace again.
    """

    line: int
    trade_date: date
    account: str
    household: str
    account_type: AccountType
    symbol: str
    side: Side
    quantity: Decimal
    amount: Decimal
    lot_id: str | None = None
    acquired: date | None = None
    replacement: bool = False


@dataclass(frozen=True)
class Disposal:
    """One lot part sold (a Form 8949 line). `disallowed` is the wash-sale adjustment (code W);
    `split_from` is the lot a part split off by a wash sale came from (None for a whole lot)."""

    account: str
    household: str
    account_type: AccountType
    symbol: str
    lot_id: str
    line: int
    quantity: Decimal
    bought: date
    acquired: date
    sold: date
    proceeds: Decimal
    basis: Decimal
    disallowed: Decimal
    split_from: str | None = None

    @property
    def term(self) -> Term:
        """Short or long term, from the (possibly carried-over) acquisition date."""
        return holding_term(self.acquired, self.sold)

    @property
    def gain(self) -> Decimal:
        """Reportable gain: proceeds − basis + disallowed loss (negative: deductible loss)."""
        return self.proceeds - self.basis + self.disallowed


@dataclass(frozen=True)
class WashSale:
    """One match of sold shares with replacement shares: the lot part sold (`sale_lot`, its
    Form 8949 line's lot id) and the replacement lot (`replacement_lot`: the part of the
    purchase that took the loss). `sale_line` and `replacement_line` are the trades' lines."""

    household: str
    sale_account: str
    sale_symbol: str
    sale_line: int
    sold: date
    quantity: Decimal
    disallowed: Decimal
    replacement_account: str
    replacement_symbol: str
    replacement_line: int
    replacement_bought: date
    days_carried: int
    permanent: bool
    sale_lot: str = ""
    replacement_lot: str = ""


@dataclass(frozen=True)
class OpenLot:
    """A lot still held after the history, with its adjusted basis and acquisition date;
    `split_from` as for `Disposal`."""

    account: str
    household: str
    account_type: AccountType
    symbol: str
    lot_id: str
    quantity: Decimal
    basis: Decimal
    bought: date
    acquired: date
    replacement: bool
    split_from: str | None = None


@dataclass(frozen=True)
class WashSaleResult:
    """Every lot part sold, every wash-sale match, and the lots left."""

    disposals: tuple[Disposal, ...]
    wash_sales: tuple[WashSale, ...]
    open_lots: tuple[OpenLot, ...]

    @property
    def total_disallowed(self) -> Decimal:
        """Sum of disallowed losses (deferred and permanent)."""
        return sum((w.disallowed for w in self.wash_sales), ZERO)

    @property
    def permanently_disallowed(self) -> Decimal:
        """Losses lost for good because the replacement shares are in an IRA or Roth."""
        return sum((w.disallowed for w in self.wash_sales if w.permanent), ZERO)


class HistoryError(ValueError):
    """The transaction history is inconsistent; `line` names the trade at fault."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}")


@dataclass
class _Holding:
    """Shares of one purchase (or part of one, after a wash sale split it) held or sold."""

    account: str
    account_type: AccountType
    symbol: str
    origin: str
    buy_line: int
    bought: date
    lot: TaxLot
    replacement: bool = False


@dataclass
class _Sold:
    """A lot part sold, its wash-sale adjustment still open until the end of its day."""

    holding: _Holding
    line: int
    sold: date
    proceeds: Decimal
    disallowed: Decimal = ZERO


@dataclass
class _Household:
    """State of one household while its history is replayed."""

    name: str
    group_of: dict[str, str]
    lots: dict[tuple[str, str], list[_Holding]] = field(default_factory=lambda: defaultdict(list))
    sold: list[_Sold] = field(default_factory=list)
    washes: list[WashSale] = field(default_factory=list)
    pending: dict[int, list[tuple[Decimal, Decimal, int, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    reserved: dict[int, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    parts: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    origins: set[tuple[str, str]] = field(default_factory=set)

    def group(self, symbol: str) -> str:
        return self.group_of.get(symbol, symbol)

    def part_id(self, account: str, origin: str) -> str:
        """A new lot id for a replacement part split off purchase `origin` of `account`."""
        self.parts[(account, origin)] += 1
        return f"{origin}.w{self.parts[(account, origin)]}"


def identical_groups(groups: Iterable[Collection[str]]) -> dict[str, str]:
    """Map each symbol of the substantially-identical groups to its group key."""
    group_of: dict[str, str] = {}
    for members in groups:
        key = "|".join(sorted(members))
        for symbol in members:
            if group_of.get(symbol, key) != key:
                raise ValueError(f"symbol {symbol} is in two substantially identical groups")
            group_of[symbol] = key
    return group_of


def compute_wash_sales(
    transactions: Sequence[Transaction], identical: Iterable[Collection[str]] = ()
) -> WashSaleResult:
    """Replay the history of every household and apply the wash-sale rule (module docstring).

    Raises HistoryError for a sale of more than the account holds, an unknown or reused lot id,
    or an account that changes household or account type.
    """
    group_of = identical_groups(identical)
    _check_accounts(transactions)
    by_household: dict[str, list[Transaction]] = defaultdict(list)
    for trade in sorted(transactions, key=lambda t: (t.trade_date, t.line)):
        by_household[trade.household].append(trade)
    disposals: list[Disposal] = []
    washes: list[WashSale] = []
    open_lots: list[OpenLot] = []
    for name in sorted(by_household):
        state = _Household(name, group_of)
        _replay(state, by_household[name])
        disposals.extend(_disposal(name, s) for s in state.sold)
        washes.extend(state.washes)
        open_lots.extend(_open_lot(name, h) for key in sorted(state.lots) for h in state.lots[key])
    return WashSaleResult(tuple(disposals), tuple(washes), tuple(open_lots))


def _check_accounts(transactions: Sequence[Transaction]) -> None:
    seen: dict[str, tuple[str, AccountType]] = {}
    for trade in sorted(transactions, key=lambda t: t.line):
        first = seen.setdefault(trade.account, (trade.household, trade.account_type))
        if first != (trade.household, trade.account_type):
            raise HistoryError(
                trade.line,
                f"account {trade.account} was household {first[0]} ({first[1]}) earlier, "
                f"now {trade.household} ({trade.account_type})",
            )


def _replay(state: _Household, trades: list[Transaction]) -> None:
    """Trade day by day; check the day's losses at the end of each day."""
    day_start = 0
    while day_start < len(trades):
        day = trades[day_start].trade_date
        day_end = day_start
        first_sold = len(state.sold)
        while day_end < len(trades) and trades[day_end].trade_date == day:
            trade = trades[day_end]
            if trade.side is Side.BUY:
                _buy(state, trade)
            else:
                _sell(state, trade)
            day_end += 1
        _wash_day(state, first_sold, trades, day_end)
        day_start = day_end


def _origin(trade: Transaction) -> str:
    """The lot id a buy creates."""
    return trade.lot_id or f"L{trade.line}"


def _buy(state: _Household, trade: Transaction) -> None:
    origin = _origin(trade)
    if (trade.account, origin) in state.origins:
        raise HistoryError(trade.line, f"lot id {origin} is used twice in {trade.account}")
    state.origins.add((trade.account, origin))
    lots = state.lots[(trade.account, trade.symbol)]
    whole = _Holding(
        account=trade.account,
        account_type=trade.account_type,
        symbol=trade.symbol,
        origin=origin,
        buy_line=trade.line,
        bought=trade.trade_date,
        lot=TaxLot(origin, trade.quantity, trade.amount, trade.acquired or trade.trade_date),
        replacement=trade.replacement,
    )
    for quantity, disallowed, days, lot_id in state.pending.pop(trade.line, []):
        if quantity == whole.lot.quantity:
            whole = replace(whole, lot=replace(whole.lot, lot_id=lot_id))
            lots.append(_as_replacement(whole, disallowed, days))
            return
        part, whole = _split(state, whole, quantity, lot_id)
        lots.append(_as_replacement(part, disallowed, days))
    lots.append(whole)


def _split(
    state: _Household, holding: _Holding, quantity: Decimal, lot_id: str | None = None
) -> tuple[_Holding, _Holding]:
    """Split `quantity` shares off `holding` as a new part (named `lot_id`, or a new part id);
    returns (part, rest)."""
    lot = holding.lot
    basis = share_of(lot.cost_basis, quantity, lot.quantity)
    part_id = lot_id or state.part_id(holding.account, holding.origin)
    part = replace(holding, lot=replace(lot, lot_id=part_id, quantity=quantity, cost_basis=basis))
    rest_lot = replace(lot, quantity=lot.quantity - quantity, cost_basis=lot.cost_basis - basis)
    rest = replace(holding, lot=rest_lot)
    return part, rest


def _as_replacement(part: _Holding, disallowed: Decimal, days: int) -> _Holding:
    """Mark `part` as replacement shares; in a taxable account it takes the loss and period."""
    if not part.account_type.taxable:
        return replace(part, replacement=True)
    lot = replace(
        part.lot,
        cost_basis=part.lot.cost_basis + disallowed,
        acquired=part.bought - timedelta(days=days),
    )
    return replace(part, lot=lot, replacement=True)


def _sell(state: _Household, trade: Transaction) -> None:
    key = (trade.account, trade.symbol)
    lots = state.lots[key]
    lot_ids: list[str] | None = None
    method = LotMethod.FIFO
    if trade.lot_id is not None:
        named = sorted((h for h in lots if h.origin == trade.lot_id), key=lambda h: h.lot.acquired)
        if not named:
            raise HistoryError(
                trade.line, f"no open lot {trade.lot_id} of {trade.symbol} in {trade.account}"
            )
        lot_ids, method = [h.lot.lot_id for h in named], LotMethod.SPECIFIC
    try:
        relief = relieve_lots(
            [h.lot for h in lots],
            trade.quantity,
            method,
            trade.amount / trade.quantity,
            trade.trade_date,
            lot_ids=lot_ids,
            proceeds=trade.amount,
        )
    except ValueError as exc:
        raise HistoryError(
            trade.line, f"selling {trade.quantity} {trade.symbol} in {trade.account}: {exc}"
        ) from exc
    by_id = {h.lot.lot_id: h for h in lots}
    for piece in relief.sales:
        holding = by_id[piece.lot_id]
        sold_lot = replace(holding.lot, quantity=piece.quantity, cost_basis=piece.basis)
        state.sold.append(
            _Sold(replace(holding, lot=sold_lot), trade.line, trade.trade_date, piece.proceeds)
        )
    state.lots[key] = [replace(by_id[lot.lot_id], lot=lot) for lot in relief.remaining]


def _wash_day(state: _Household, first_sold: int, trades: list[Transaction], later: int) -> None:
    """Check each loss sold today (in line order) against the replacement candidates."""
    index = first_sold
    while index < len(state.sold):
        sale = state.sold[index]
        loss = sale.holding.lot.cost_basis - sale.proceeds
        if sale.holding.account_type.taxable and loss > 0:
            _wash_one(state, index, loss, trades, later)
        index += 1


class _Purchase(NamedTuple):
    """Where replacement shares come from, and the lot (part) that took the loss."""

    account: str
    symbol: str
    buy_line: int
    bought: date
    account_type: AccountType
    lot_id: str

    @classmethod
    def of(cls, h: _Holding, lot_id: str) -> "_Purchase":
        return cls(h.account, h.symbol, h.buy_line, h.bought, h.account_type, lot_id)


#: A replacement candidate: a held lot, a lot part sold later the same day, or a future buy.
_Candidate = _Holding | _Sold | Transaction


def _wash_one(
    state: _Household, index: int, loss: Decimal, trades: list[Transaction], later: int
) -> None:
    """Match the loss sold at `state.sold[index]` with replacement shares, earliest bought
    first; `trades[later:]` are the household's trades after the sale day."""
    sale = state.sold[index]
    sold = sale.holding
    group = state.group(sold.symbol)
    day = sale.sold

    def eligible(h: _Holding) -> bool:
        return (
            not h.replacement
            and (h.account, h.origin) != (sold.account, sold.origin)
            and state.group(h.symbol) == group
        )

    earliest = day - timedelta(days=WINDOW_DAYS)
    candidates: list[tuple[date, int, int, _Candidate]] = [
        (h.bought, h.buy_line, 0, h)
        for lots in state.lots.values()
        for h in lots
        if earliest <= h.bought and eligible(h)
    ]
    candidates += [
        (s.holding.bought, s.holding.buy_line, 1, s)
        for s in state.sold[index + 1 :]
        if s.holding.bought == day and s.holding.buy_line > sale.line and eligible(s.holding)
    ]
    last = day + timedelta(days=WINDOW_DAYS)
    for t in (trades[i] for i in range(later, len(trades))):
        if t.trade_date > last:
            break
        if t.side is Side.BUY and state.group(t.symbol) == group:
            candidates.append((t.trade_date, t.line, 2, t))
    candidates.sort(key=lambda c: c[:3])

    matches: list[tuple[Decimal, _Candidate]] = []
    need = sold.lot.quantity
    for *_, candidate in candidates:
        available = _available(state, candidate)
        if need > 0 and available > 0:
            matches.append((min(need, available), candidate))
            need -= matches[-1][0]
    if not matches:
        return
    quantities = [take for take, _ in matches] + ([need] if need > 0 else [])
    disallowed = allocate(loss, quantities)[: len(matches)]
    days = (day - sold.lot.acquired).days
    for (take, candidate), amount in zip(matches, disallowed, strict=True):
        replacement = _apply(state, candidate, take, amount, days)
        sale.disallowed += amount
        state.washes.append(
            WashSale(
                household=state.name,
                sale_account=sold.account,
                sale_symbol=sold.symbol,
                sale_line=sale.line,
                sold=day,
                quantity=take,
                disallowed=amount,
                replacement_account=replacement.account,
                replacement_symbol=replacement.symbol,
                replacement_line=replacement.buy_line,
                replacement_bought=replacement.bought,
                days_carried=days,
                permanent=not replacement.account_type.taxable,
                sale_lot=sold.lot.lot_id,
                replacement_lot=replacement.lot_id,
            )
        )


def _available(state: _Household, candidate: _Candidate) -> Decimal:
    """Shares of the candidate not yet used as replacement shares."""
    if isinstance(candidate, Transaction):
        if candidate.replacement:
            return ZERO
        return candidate.quantity - state.reserved[candidate.line]
    holding = candidate if isinstance(candidate, _Holding) else candidate.holding
    return ZERO if holding.replacement else holding.lot.quantity


def _apply(
    state: _Household, candidate: _Candidate, take: Decimal, amount: Decimal, days: int
) -> _Purchase:
    """Turn `take` shares of the candidate into replacement shares; say which purchase it is."""
    if isinstance(candidate, Transaction):
        # The part is named now, so the match can name it; the buy creates it later.
        origin = _origin(candidate)
        whole = take == candidate.quantity
        lot_id = origin if whole else state.part_id(candidate.account, origin)
        state.pending[candidate.line].append((take, amount, days, lot_id))
        state.reserved[candidate.line] += take
        return _Purchase(
            candidate.account,
            candidate.symbol,
            candidate.line,
            candidate.trade_date,
            candidate.account_type,
            lot_id,
        )
    if isinstance(candidate, _Holding):
        lots = state.lots[(candidate.account, candidate.symbol)]
        at = next(i for i, h in enumerate(lots) if h is candidate)
        if take < candidate.lot.quantity:
            part, rest = _split(state, candidate, take)
            lots[at : at + 1] = [_as_replacement(part, amount, days), rest]
            return _Purchase.of(candidate, part.lot.lot_id)
        lots[at] = _as_replacement(candidate, amount, days)
        return _Purchase.of(candidate, candidate.lot.lot_id)
    at = next(i for i, s in enumerate(state.sold) if s is candidate)
    holding = candidate.holding
    if take < holding.lot.quantity:
        part, rest = _split(state, holding, take)
        proceeds = share_of(candidate.proceeds, take, holding.lot.quantity)
        state.sold[at : at + 1] = [
            _Sold(_as_replacement(part, amount, days), candidate.line, candidate.sold, proceeds),
            _Sold(rest, candidate.line, candidate.sold, candidate.proceeds - proceeds),
        ]
        return _Purchase.of(holding, part.lot.lot_id)
    candidate.holding = _as_replacement(holding, amount, days)
    return _Purchase.of(holding, holding.lot.lot_id)


def _disposal(household: str, sale: _Sold) -> Disposal:
    h = sale.holding
    return Disposal(
        account=h.account,
        household=household,
        account_type=h.account_type,
        symbol=h.symbol,
        lot_id=h.lot.lot_id,
        line=sale.line,
        quantity=h.lot.quantity,
        bought=h.bought,
        acquired=h.lot.acquired,
        sold=sale.sold,
        proceeds=sale.proceeds,
        basis=h.lot.cost_basis,
        disallowed=sale.disallowed,
        split_from=_split_from(h),
    )


def _split_from(h: _Holding) -> str | None:
    """The purchase's lot id when `h` is a part split off it, else None."""
    return h.origin if h.lot.lot_id != h.origin else None


def _open_lot(household: str, h: _Holding) -> OpenLot:
    return OpenLot(
        account=h.account,
        household=household,
        account_type=h.account_type,
        symbol=h.symbol,
        lot_id=h.lot.lot_id,
        quantity=h.lot.quantity,
        basis=h.lot.cost_basis,
        bought=h.bought,
        acquired=h.lot.acquired,
        replacement=h.replacement,
        split_from=_split_from(h),
    )


@dataclass(frozen=True)
class WashGuard:
    """What a household must not do on `as_of` without creating a wash sale.

    Built from the household's recent history: selling at a loss is blocked by a purchase of a
    substantially identical security in the 30 days before (unless that purchase is among the
    lots being sold, in full, the same day: the same-day rule), and buying is blocked by a sale
    at a loss, not yet washed, in the 30 days before. What happens after `as_of` (buying back
    within 30 days after a loss sale) is the caller's to avoid: see `rebuy_after`.
    """

    as_of: date
    group_of: dict[str, str]
    recent_buys: tuple[Transaction, ...]
    recent_losses: tuple[Disposal, ...]

    @classmethod
    def from_history(
        cls,
        transactions: Sequence[Transaction],
        as_of: date,
        identical: Iterable[Collection[str]] = (),
    ) -> "WashGuard":
        """Replay the history up to `as_of` and keep the trades that matter on `as_of`."""
        groups = [set(g) for g in identical]
        past = [t for t in transactions if t.trade_date <= as_of]
        result = compute_wash_sales(past, identical=groups)
        earliest = as_of - timedelta(days=WINDOW_DAYS)
        buys = tuple(t for t in past if t.side is Side.BUY and t.trade_date >= earliest)
        losses = tuple(
            d
            for d in result.disposals
            if d.account_type.taxable
            and d.sold >= earliest
            and d.basis - d.proceeds - d.disallowed > 0
        )
        return cls(as_of, identical_groups(groups), buys, losses)

    def same_security(self, a: str, b: str) -> bool:
        """Whether `a` and `b` are the same or substantially identical securities."""
        return self.group_of.get(a, a) == self.group_of.get(b, b)

    def loss_sale_blocker(
        self, household: str, symbol: str, sold_in_full: Collection[tuple[str, str]] = ()
    ) -> Transaction | None:
        """A recent purchase that would wash a loss on selling `symbol` today, if any.

        `sold_in_full` lists (account, lot id) of lots sold entirely in the same sale; a buy
        without lot id has the id ``L<line>``.
        """
        for buy in self.recent_buys:
            if buy.replacement:  # already replaced an earlier loss: it cannot replace again
                continue
            key = (buy.account, _origin(buy))
            mine = buy.household == household and self.same_security(buy.symbol, symbol)
            if mine and key not in sold_in_full:
                return buy
        return None

    def buy_blocker(self, household: str, symbol: str) -> Disposal | None:
        """A recent loss sale that buying `symbol` today would wash, if any."""
        for loss in self.recent_losses:
            if loss.household == household and self.same_security(loss.symbol, symbol):
                return loss
        return None

    def blocked(
        self, household: str, symbols: Iterable[str]
    ) -> tuple[frozenset[str], frozenset[str]]:
        """(symbols that may not be bought, symbols that may not be sold at a loss) today.

        Conservative for loss sales: the exception for lots sold in full is not applied.
        """
        symbols = list(symbols)
        no_buy = frozenset(s for s in symbols if self.buy_blocker(household, s) is not None)
        no_loss = frozenset(s for s in symbols if self.loss_sale_blocker(household, s) is not None)
        return no_buy, no_loss

    def rebuy_after(self) -> date:
        """First day a security sold at a loss on `as_of` may be bought back safely."""
        return self.as_of + timedelta(days=WINDOW_DAYS + 1)
