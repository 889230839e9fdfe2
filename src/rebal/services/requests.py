"""The typed requests of the use cases (drift, propose, backtest, wash sales), validated once.

Every entry point (the command line, the Python API, the lab's Python entry point, later the REST
API and the scheduler) translates what it was given into one of these requests and nothing
else: the checks (an unknown value, two options that contradict each other, a value out of
range) and the defaults live here only, so a request refused by one entry point is refused by
every other with the same message. A request that exists is valid: each one checks itself when
it is made and raises :class:`RequestError`.

Units are the user's, as on the command line: band widths, rates and the cash reserve in
**percent** (``band_rel=20`` is a 20 % relative band), the drift cost in basis points, money as
an amount. Text is accepted where the command line passes text (``"5%"``, ``"1,000.00"``).

**Money** (deposits, withdrawals, the minimum trade) must be whole cents when given as
``Decimal``, ``int`` or text, as in a file. A Python ``float`` (an amount computed as ``0.1 +
0.2``) is taken as its shortest decimal text (``0.30000000000000004``) and rounded to the cent,
half to even (``0.30``), by :func:`money_cents`: a float cannot hold cents exactly, so rejecting
it would only push the same rounding onto the caller.

Requests carry already-parsed data (transactions, substitute groups): reading files is the entry
point's job.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from rebal.backtest.engine import LAB_LOT_METHODS, Costs
from rebal.backtest.schedule import ScheduleSpec
from rebal.backtest.variants import CORE_POLICY, DEFAULT_FREQUENCY, Variant
from rebal.core.bands import BandSpec
from rebal.core.engine import RunConfig
from rebal.core.policies import POLICIES
from rebal.core.trades import TradeRules
from rebal.domain.ids import symbol
from rebal.domain.money import cents, to_cents
from rebal.tax.lots import LotMethod
from rebal.tax.rates import TaxRates
from rebal.tax.wash_sales import Transaction, identical_groups
from rebal.tax_overlay.settings import TaxSettings

#: A percentage as an entry point receives it: a number, or text such as ``"5"`` or ``"5%"``.
Percent = float | int | Decimal | str
#: An amount of money: whole cents as ``Decimal``/``int``/text, a ``float`` rounded to the cent.
Amount = Decimal | float | int | str

_HUNDRED = Decimal(100)
_CORE = RunConfig()
_TAX = TaxSettings(as_of=date.min)
#: The defaults, each taken from the one place that defines it (the core's run settings, the tax
#: layer's settings); entry points show these, never their own copies.
DEFAULT_POLICY = _CORE.policy
DEFAULT_BAND_REL = Decimal(str(BandSpec().band_rel)) * _HUNDRED  # percent
DEFAULT_MIN_TRADE = Decimal(TradeRules().min_trade_cents).scaleb(-2)
DEFAULT_ST_RATE = (_TAX.rates.short_term * _HUNDRED).normalize()  # percent
DEFAULT_LT_RATE = (_TAX.rates.long_term * _HUNDRED).normalize()
DEFAULT_STATE_RATE = (_TAX.rates.state * _HUNDRED).normalize()
DEFAULT_HOLD_DAYS = _TAX.hold_days
DEFAULT_LOT_METHOD = _TAX.lot_method
DEFAULT_OPTIMIZER = "rules"
OPTIMIZERS = ("rules", "highs")
#: The lab's defaults: the starting value, the lab policy, flows' frequency, tax lots relieved.
DEFAULT_INITIAL = 10_000.0
DEFAULT_LAB_POLICY = "threshold"
DEFAULT_FLOW_FREQUENCY = "monthly"
DEFAULT_LAB_LOTS = LotMethod.AVERAGE
#: The weights on the shipped series (``stocks``, ``bonds``) when none are given, in percent.
SHIPPED_WEIGHTS: Mapping[str, Percent] = {"stocks": 60, "bonds": 40}


class RequestError(ValueError):
    """A request refused: an unknown value, contradictory options, a value out of range.

    The message names options by the Python API's keyword names (``band_abs``); an entry point
    with its own spelling (the command line's ``--band-abs``) renders it with :meth:`spelled`,
    so the text is otherwise the same everywhere.
    """

    def __init__(self, template: str, *options: str) -> None:
        self.template = template
        self.options = options
        super().__init__(self.spelled(lambda name: name))

    def spelled(self, spell: Callable[[str], str]) -> str:
        """The message with each option named by ``spell(keyword)``."""
        return self.template.format(*(spell(name) for name in self.options))


def _decimal(name: str, value: Percent | Amount, what: str) -> Decimal:
    """``value`` as a finite Decimal (text may carry ``%`` and thousands separators)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RequestError(f"{{0}} {value!r} is not {what}", name)
        return Decimal(repr(value))
    try:
        number = Decimal(str(value).strip().removesuffix("%").strip().replace(",", ""))
    except InvalidOperation:
        raise RequestError(f"{{0}} {value!r} is not {what}", name) from None
    if not number.is_finite():
        raise RequestError(f"{{0}} {value!r} is not {what}", name)
    return number


def percent_value(
    name: str, value: Percent | None, *, below: Decimal = Decimal(1000)
) -> Decimal | None:
    """``value`` given as ``name``, a percentage in [0, ``below``); None when not given."""
    if value is None:
        return None
    number = _decimal(name, value, "a percentage")
    if not 0 <= number < below:
        limit = "" if below == 1000 else f" below {below}"
        raise RequestError(
            f"{{0}} must be a non-negative percentage{limit}, received {value}", name
        )
    return number


def _fraction(name: str, value: Percent | None) -> float | None:
    number = percent_value(name, value)
    return None if number is None else float(number) / 100.0


def float_cents(value: float) -> Decimal:
    """A float amount as money: its shortest decimal text rounded to the cent, half to even."""
    return cents(Decimal(repr(value)))


def money_cents(name: str, amount: Amount) -> int:
    """``amount`` given as ``name`` in integer cents: a float rounded to the cent, half to even;
    anything else must be whole cents (see the module's rule)."""
    exact = _decimal(name, amount, "an amount")
    if isinstance(amount, float):
        exact = float_cents(amount)
    try:
        return to_cents(exact)
    except ValueError:
        raise RequestError(
            f"{{0}} must be a whole number of cents, received {amount}", name
        ) from None


def _non_negative(name: str, value: Percent | Amount) -> Decimal:
    number = _decimal(name, value, "a number")
    if number < 0:
        raise RequestError(f"{{0}} must be a non-negative number, received {value}", name)
    return number


@dataclass(frozen=True)
class Bands:
    """Band widths in percent: the band (absolute points or relative to the target; one of the
    two, 20 % relative when neither), the inner rails and the wide bands (derived from the band
    when not given). The same meaning in ``propose``, ``drift`` and the lab."""

    band_abs: Percent | None = None
    band_rel: Percent | None = None
    rail_abs: Percent | None = None
    rail_rel: Percent | None = None
    wide_band_abs: Percent | None = None
    wide_band_rel: Percent | None = None

    def __post_init__(self) -> None:
        self.spec()

    def spec(self) -> BandSpec:
        """The core's band settings (fractions)."""
        if self.band_abs is not None and self.band_rel is not None:
            raise RequestError("give either {0} or {1}, not both", "band_abs", "band_rel")
        band_abs = _fraction("band_abs", self.band_abs)
        band_rel = _fraction("band_rel", self.band_rel)
        if band_abs is None and band_rel is None:
            band_rel = float(DEFAULT_BAND_REL) / 100.0
        return BandSpec(
            band_abs=band_abs,
            band_rel=band_rel,
            rail_abs=_fraction("rail_abs", self.rail_abs),
            rail_rel=_fraction("rail_rel", self.rail_rel),
            wide_abs=_fraction("wide_band_abs", self.wide_band_abs),
            wide_rel=_fraction("wide_band_rel", self.wide_band_rel),
        )


def _reserve(value: Percent) -> float:
    """The cash reserve as a fraction of the account's value, below 100 %."""
    reserve = percent_value("cash_reserve", value) or Decimal(0)
    if reserve >= _HUNDRED:
        raise RequestError("{0} must be below 100%", "cash_reserve")
    return float(reserve) / 100.0


@dataclass(frozen=True)
class DriftRequest:
    """Measure drift and statuses against the models (no orders)."""

    bands: Bands = field(default_factory=Bands)
    cash_reserve: Percent = 0

    def __post_init__(self) -> None:
        self.config()

    def config(self) -> RunConfig:
        """The core's run settings: no orders."""
        return RunConfig(
            bands=self.bands.spec(), cash_reserve=_reserve(self.cash_reserve), trade=False
        )


@dataclass(frozen=True)
class TaxOptions:
    """The options of a tax-aware proposal (``rebal propose --tax-aware``), rates in percent and
    the drift cost in basis points. ``as_of`` None: the entry point's today (it reads the
    clock, the use case does not). ``substitutes`` and ``transactions`` None: not given (an empty
    tuple is a file given with nothing in it)."""

    lot_method: LotMethod | str = DEFAULT_LOT_METHOD
    gain_budget: Amount | None = None
    no_short_term_gains: bool = False
    tlh: bool = False
    substitutes: Sequence[Sequence[str]] | None = None
    household: bool = False
    optimizer: str = DEFAULT_OPTIMIZER
    st_rate: Percent = DEFAULT_ST_RATE
    lt_rate: Percent = DEFAULT_LT_RATE
    state_rate: Percent = DEFAULT_STATE_RATE
    transactions: Sequence[Transaction] | None = None
    as_of: date | None = None
    tax_inefficient: Iterable[str] = ()
    drift_cost: Percent | None = None
    withdrawal_dates: Mapping[str, date] = field(default_factory=dict)
    hold_before_withdrawal: int = DEFAULT_HOLD_DAYS

    def given(self) -> list[str]:
        """The options set to something other than their default, in the command line's order."""

        def differs(value: Percent, default: Decimal) -> bool:
            try:
                return _decimal("", value, "") != default
            except RequestError:
                return True

        used = {
            "lot_method": str(self.lot_method) != str(DEFAULT_LOT_METHOD),
            "gain_budget": self.gain_budget is not None,
            "no_short_term_gains": self.no_short_term_gains,
            "tlh": self.tlh,
            "substitutes": self.substitutes is not None,
            "household": self.household,
            "optimizer": str(self.optimizer) != DEFAULT_OPTIMIZER,
            "st_rate": differs(self.st_rate, DEFAULT_ST_RATE),
            "lt_rate": differs(self.lt_rate, DEFAULT_LT_RATE),
            "state_rate": differs(self.state_rate, DEFAULT_STATE_RATE),
            "transactions": self.transactions is not None,
            "as_of": self.as_of is not None,
            "tax_inefficient": any(s.strip() for s in self.tax_inefficient),
            "drift_cost": self.drift_cost is not None,
            "withdrawal_dates": bool(self.withdrawal_dates),
            "hold_before_withdrawal": self.hold_before_withdrawal != DEFAULT_HOLD_DAYS,
        }
        return [name for name, is_set in used.items() if is_set]

    def settings(self, today: date) -> TaxSettings:
        """The tax layer's settings; ``today`` is the trade date when ``as_of`` is not given."""
        if self.tlh and self.substitutes is None:
            raise RequestError(
                "{0} needs {1} (what to buy instead of a harvested security)", "tlh", "substitutes"
            )
        if self.hold_before_withdrawal < 0:
            raise RequestError("{0} must not be negative", "hold_before_withdrawal")
        if str(self.optimizer) not in OPTIMIZERS:
            raise RequestError(
                f"{{0}} must be 'rules' or 'highs', received {self.optimizer!r}", "optimizer"
            )
        try:
            method = LotMethod(str(self.lot_method))
        except ValueError:
            names = ", ".join(m.value for m in LotMethod)
            raise RequestError(
                f"{{0}} {self.lot_method!r} is not a lot method: {names}", "lot_method"
            ) from None
        st, lt, state = (
            (percent_value(name, value, below=_HUNDRED) or Decimal(0)) / _HUNDRED
            for name, value in (
                ("st_rate", self.st_rate),
                ("lt_rate", self.lt_rate),
                ("state_rate", self.state_rate),
            )
        )
        if st + state >= 1 or lt + state >= 1:
            raise RequestError("a tax rate plus the state rate must be below 100%")
        budget = self.gain_budget
        cost = None if self.drift_cost is None else _non_negative("drift_cost", self.drift_cost)
        return TaxSettings(
            as_of=self.as_of or today,
            rates=TaxRates(st, lt, state),
            lot_method=method,
            gain_budget=None if budget is None else _non_negative("gain_budget", budget),
            short_term_gains=not self.no_short_term_gains,
            optimizer=str(self.optimizer) == "highs",
            tlh=self.tlh,
            substitutes=tuple(
                tuple(symbol(s) for s in group) for group in (self.substitutes or ())
            ),
            transactions=tuple(self.transactions or ()),
            household=self.household,
            tax_inefficient=frozenset(symbol(s) for s in self.tax_inefficient if s.strip()),
            drift_cost=None if cost is None else cost / Decimal(10000),
            withdrawal_dates=dict(self.withdrawal_dates),
            hold_days=self.hold_before_withdrawal,
        )


@dataclass(frozen=True)
class ProposeRequest:
    """Propose orders: the policy, the bands, the order rules, the cash kept, the deposits and
    withdrawals per account and, with ``tax_aware``, the tax options."""

    policy: str = DEFAULT_POLICY
    bands: Bands = field(default_factory=Bands)
    whole_shares: bool = False
    min_trade: Amount = DEFAULT_MIN_TRADE
    cash_reserve: Percent = 0
    all_accounts: bool = False
    deposits: Mapping[str, Amount] = field(default_factory=dict)
    withdrawals: Mapping[str, Amount] = field(default_factory=dict)
    tax_aware: bool = False
    tax: TaxOptions = field(default_factory=TaxOptions)

    def __post_init__(self) -> None:
        self.config()
        self.flows()
        if not self.tax_aware:
            named = self.tax.given()
            if named:
                placeholders = ", ".join(f"{{{i}}}" for i in range(len(named)))
                raise RequestError(f"{placeholders} need(s) {{{len(named)}}}", *named, "tax_aware")
        else:
            self.tax.settings(date.min)

    def config(self) -> RunConfig:
        """The core's run settings."""
        if self.policy not in POLICIES:
            known = ", ".join(POLICIES)
            raise RequestError(f"{{0}} {self.policy!r} is unknown; choose one of {known}", "policy")
        min_cents = money_cents("min_trade", self.min_trade)
        if min_cents < 0:
            raise RequestError("{0} must not be negative", "min_trade")
        return RunConfig(
            policy=self.policy,
            bands=self.bands.spec(),
            rules=TradeRules(whole_shares=self.whole_shares, min_trade_cents=min_cents),
            cash_reserve=_reserve(self.cash_reserve),
            all_accounts=self.all_accounts,
        )

    def flows(self) -> dict[str, int]:
        """Deposits (+) and withdrawals (-) per account, in cents; amounts must be positive."""
        flows: dict[str, int] = {}
        for name, given, sign in (
            ("deposits", self.deposits, 1),
            ("withdrawals", self.withdrawals, -1),
        ):
            for account, amount in given.items():
                value = money_cents(name, amount)
                if value <= 0:
                    raise RequestError(
                        f"{{0}} {account}={amount}: the amount must be positive", name
                    )
                flows[account] = flows.get(account, 0) + sign * value
        return flows

    def tax_settings(self, today: date) -> TaxSettings | None:
        """The tax layer's settings (None without ``tax_aware``)."""
        return self.tax.settings(today) if self.tax_aware else None


@dataclass(frozen=True)
class BacktestRequest:
    """A backtest of one lab policy: its bands (percent, as :class:`Bands` everywhere), when it
    is reviewed, the money (start, flows, costs) and the tax reporting (rates in percent, the
    lots a sale relieves). ``weights`` are percent per symbol of the history, summing to 100
    (None: equal weights); ``start`` and ``end`` bound the observations run (default: from the
    first date every symbol held has a price, to the last).

    :func:`backtest_request` makes one from an entry point's options by name."""

    policy: str = DEFAULT_LAB_POLICY
    bands: Bands = field(default_factory=Bands)
    frequency: str | None = None
    day: int = 1
    look: int | None = None
    cooldown: int = 0
    initial: float = DEFAULT_INITIAL
    flow: float = 0.0
    flow_frequency: str = DEFAULT_FLOW_FREQUENCY
    cost_bps: float = 0.0
    cost_fixed: float = 0.0
    tax_rate: Percent | None = None
    short_term_rate: Percent | None = None
    state_rate: Percent | None = None
    lots: LotMethod | str = DEFAULT_LAB_LOTS
    weights: Mapping[str, Percent] | None = None
    start: date | None = None
    end: date | None = None

    def __post_init__(self) -> None:
        self.variant()
        self.costs()
        self.tax_rates()
        self.lot_method()
        self.target()
        if not self.initial > 0 or not math.isfinite(self.initial):
            raise RequestError(f"{{0}} must be positive, received {self.initial:g}", "initial")
        self.flow_schedule()

    def flow_schedule(self) -> ScheduleSpec:
        """When the flows happen: the first observation of each ``flow_frequency`` period."""
        try:
            return ScheduleSpec(frequency=self.flow_frequency)
        except ValueError as exc:
            raise RequestError(f"{{0}}: {exc}", "flow_frequency") from None

    def variant(self) -> Variant:
        """The lab policy variant (bands as the core's fractions)."""
        if self.policy not in CORE_POLICY:
            known = ", ".join(CORE_POLICY)
            raise RequestError(f"{{0}} {self.policy!r} is unknown; choose one of {known}", "policy")
        try:
            schedule = ScheduleSpec(
                frequency=self.frequency or DEFAULT_FREQUENCY.get(self.policy, "daily"),
                day=self.day,
                look=self.look,
                cooldown=self.cooldown,
            )
        except ValueError as exc:
            raise RequestError(str(exc).replace("{", "{{").replace("}", "}}")) from None
        return Variant(policy=self.policy, bands=self.bands.spec(), schedule=schedule)

    def costs(self) -> Costs:
        """Trading costs: basis points of the traded value plus a fixed amount per trade."""
        if self.cost_bps < 0 or self.cost_fixed < 0:
            raise RequestError("costs cannot be negative ({0}, {1})", "cost_bps", "cost_fixed")
        return Costs(bps=self.cost_bps, fixed=self.cost_fixed)

    def tax_rates(self) -> TaxRates | None:
        """The long-term rate (``tax_rate``), the short-term rate (default: the same) and the
        state rate; None without ``tax_rate``."""
        if self.tax_rate is None:
            for name, given in (
                ("state_rate", self.state_rate),
                ("short_term_rate", self.short_term_rate),
            ):
                if given is not None:
                    raise RequestError("{0} goes with {1}; give {1} too", name, "tax_rate")
            return None
        long_term = percent_value("tax_rate", self.tax_rate, below=_HUNDRED)
        short_term = percent_value("short_term_rate", self.short_term_rate, below=_HUNDRED)
        state = percent_value("state_rate", self.state_rate, below=_HUNDRED)
        assert long_term is not None
        try:
            return TaxRates(
                long_term=long_term / _HUNDRED,
                short_term=(long_term if short_term is None else short_term) / _HUNDRED,
                state=(state or Decimal(0)) / _HUNDRED,
            )
        except ValueError as exc:
            raise RequestError(
                f"{{0}}/{{1}}/{{2}}: {exc}", "tax_rate", "short_term_rate", "state_rate"
            ) from None

    def lot_method(self) -> LotMethod:
        """The lot relief method, one the lab runs."""
        if str(self.lots) not in LAB_LOT_METHODS:
            names = "|".join(LAB_LOT_METHODS)
            raise RequestError(
                f"{{0}} {str(self.lots)!r} is not a lot method the lab runs: {names}", "lots"
            )
        return LotMethod(str(self.lots))

    def target(self) -> dict[str, float] | None:
        """The target weights as fractions per symbol (None: not given)."""
        if self.weights is None:
            return None
        out: dict[str, float] = {}
        for name, value in self.weights.items():
            number = percent_value("weights", value)
            sym = symbol(name)
            if not sym:
                raise RequestError("{0}: a weight names no symbol", "weights")
            if sym in out:
                raise RequestError("{0} names a symbol twice", "weights")
            assert number is not None
            out[sym] = float(number)
        total = sum(out.values())
        if abs(total - 100.0) > 1e-6:
            raise RequestError(
                f"{{0}} must add up to 100 (percent), they add up to {total:g}", "weights"
            )
        return {sym: value / 100.0 for sym, value in out.items()}


#: The band options of ``rebal backtest`` and ``rebal.api.backtest`` (:class:`Bands`' fields) and
#: their other options that are :class:`BacktestRequest` fields, by the same names.
_BANDS = tuple(f.name for f in fields(Bands))
_BACKTEST_FIELDS = tuple(f.name for f in fields(BacktestRequest) if f.name != "bands")


def backtest_request(options: Mapping[str, Any], *, shipped: bool) -> BacktestRequest:
    """The one translation of a backtest's options (``rebal backtest``'s, ``rebal.api.backtest``'s
    keywords: both pass their parameters by name) onto a :class:`BacktestRequest`: the band
    options make its :class:`Bands`, the others are its fields by name, options of the entry
    point alone (files, outputs) are left out. On the ``shipped`` series the weights default to
    :data:`SHIPPED_WEIGHTS`."""
    given = {name: options[name] for name in _BACKTEST_FIELDS if name in options}
    if shipped and given.get("weights") is None:
        given["weights"] = SHIPPED_WEIGHTS
    return BacktestRequest(bands=Bands(**{name: options.get(name) for name in _BANDS}), **given)


@dataclass(frozen=True)
class WashSalesRequest:
    """Find the wash sales of a transaction history (already read); ``identical`` lists groups
    of substantially identical symbols, each a sequence of symbols or one comma-separated text
    (``"GOOG,GOOGL"``, as ``--identical`` takes it)."""

    transactions: Sequence[Transaction]
    identical: Sequence[Sequence[str] | str] = ()

    def __post_init__(self) -> None:
        try:
            identical_groups(self.identical_groups())
        except ValueError as exc:
            raise RequestError(f"{{0}}: {exc}", "identical") from None

    def identical_groups(self) -> list[frozenset[str]]:
        """The groups, symbols normalised as everywhere else."""
        groups: list[frozenset[str]] = []
        for group in self.identical:
            members = group.split(",") if isinstance(group, str) else group
            groups.append(frozenset(symbol(s) for s in members if s.strip()))
        return groups
