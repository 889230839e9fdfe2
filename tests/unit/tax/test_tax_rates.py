"""Estimated tax: IRS netting of short- and long-term results, state rate, tax-free accounts."""

from decimal import Decimal

import pytest

from rebal.tax.rates import AccountType, TaxRates, estimated_tax, net_gains

D = Decimal
RATES = TaxRates(short_term=D("0.35"), long_term=D("0.15"), state=D("0.05"))


@pytest.mark.parametrize(
    ("st", "lt", "expected"),
    [
        (D(1000), D(2000), (D(1000), D(2000))),
        (D(-500), D(2000), (D(0), D(1500))),  # ST loss offsets LT gain
        (D(1000), D(-300), (D(700), D(0))),  # LT loss offsets ST gain
        (D(-1000), D(300), (D(0), D(0))),
        (D(-1), D(-1), (D(0), D(0))),
    ],
)
def test_netting(st: Decimal, lt: Decimal, expected: tuple[Decimal, Decimal]) -> None:
    assert net_gains(st, lt) == expected


def test_estimated_tax_adds_the_state_rate_and_rounds_to_cents() -> None:
    assert estimated_tax(D("1000.01"), D(2000), RATES) == D("800.00")  # 400.004 + 400


@pytest.mark.parametrize("account_type", [AccountType.IRA, AccountType.ROTH])
def test_retirement_accounts_realise_no_taxable_gain(account_type: AccountType) -> None:
    assert estimated_tax(D(10000), D(10000), RATES, account_type) == 0


def test_rates_must_be_fractions() -> None:
    with pytest.raises(ValueError, match="short_term"):
        TaxRates(short_term=D(35))
