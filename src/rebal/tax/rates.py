"""Tax rates, account types and the estimated tax of realised gains.

Estimated tax follows the IRS netting of capital gains (Schedule D): short-term gains and losses
net to a short-term result, long-term to a long-term result; a net loss in one term offsets a net
gain in the other; what is left is taxed at that term's rate plus the optional state rate (states
tax capital gains as ordinary income). A net capital loss gives no tax (and no refund: its
carry-over value is not counted). IRA and Roth accounts realise no taxable gains at all.
"""

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from rebal.tax.money import ZERO, to_cents


class AccountType(StrEnum):
    """Tax treatment of an account."""

    TAXABLE = "taxable"
    IRA = "ira"
    ROTH = "roth"

    @property
    def taxable(self) -> bool:
        """Whether sales in this account realise taxable gains and losses."""
        return self is AccountType.TAXABLE


@dataclass(frozen=True)
class TaxRates:
    """Marginal federal rates on short- and long-term gains plus an optional state rate."""

    short_term: Decimal = Decimal("0.37")
    long_term: Decimal = Decimal("0.20")
    state: Decimal = ZERO

    def __post_init__(self) -> None:
        for name in ("short_term", "long_term", "state"):
            value = getattr(self, name)
            if not ZERO <= value < 1:
                raise ValueError(f"tax rate {name} must be in [0, 1), got {value}")

    @property
    def short_term_total(self) -> Decimal:
        """Federal short-term plus state rate."""
        return self.short_term + self.state

    @property
    def long_term_total(self) -> Decimal:
        """Federal long-term plus state rate."""
        return self.long_term + self.state


def net_gains(realised_st: Decimal, realised_lt: Decimal) -> tuple[Decimal, Decimal]:
    """Taxable short- and long-term gain after netting one term's net loss against the other."""
    if realised_st < 0 < realised_lt:
        return ZERO, max(realised_lt + realised_st, ZERO)
    if realised_lt < 0 < realised_st:
        return max(realised_st + realised_lt, ZERO), ZERO
    return max(realised_st, ZERO), max(realised_lt, ZERO)


def estimated_tax(
    realised_st: Decimal,
    realised_lt: Decimal,
    rates: TaxRates,
    account_type: AccountType = AccountType.TAXABLE,
) -> Decimal:
    """Tax due on net realised gains, in cents; zero in IRA and Roth accounts."""
    if not account_type.taxable:
        return ZERO
    st, lt = net_gains(realised_st, realised_lt)
    return to_cents(st * rates.short_term_total + lt * rates.long_term_total)
