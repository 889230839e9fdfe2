"""Household asset location (`rebal.tax.location.locate`) and the substitutes file."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rebal.errors import InputError
from rebal.tax.location import locate
from rebal.tax_overlay.inputs import parse_substitutes

# accounts: taxable, IRA, Roth; securities: stocks, bonds
KINDS = {"taxable": np.array([True, False, False]), "roth": np.array([False, False, True])}


def test_bonds_go_to_the_ira_first_and_taxable_sells_nothing():
    held = np.array([[60.0, 0.0], [50.0, 10.0], [30.0, 0.0]])
    investable = held.sum(axis=1)
    location = locate(
        investable,
        held,
        np.array([0.6, 0.4]),
        KINDS["taxable"],
        KINDS["roth"],
        np.array([False, True]),
    )

    assert location.desired.tolist() == [[60.0, 0.0], [0.0, 60.0], [30.0, 0.0]]
    assert location.over.tolist() == [0.0, 0.0]


def test_taxable_spare_cash_buys_tax_efficient_assets_first():
    held = np.array([[50.0, 0.0], [0.0, 30.0], [0.0, 0.0]])
    investable = np.array([70.0, 30.0, 0.0])  # the taxable account has 20 of cash
    location = locate(
        investable,
        held,
        np.array([0.7, 0.3]),
        KINDS["taxable"],
        KINDS["roth"],
        np.array([False, True]),
    )

    assert location.desired[0].tolist() == [70.0, 0.0]


def test_what_taxable_accounts_hold_above_target_is_reported():
    held = np.array([[90.0, 0.0], [0.0, 10.0], [0.0, 0.0]])
    location = locate(
        held.sum(axis=1),
        held,
        np.array([0.5, 0.5]),
        KINDS["taxable"],
        KINDS["roth"],
        np.array([False, True]),
    )

    assert location.over.tolist() == [40.0, 0.0]
    assert location.desired[0].tolist() == [90.0, 0.0]
    assert location.desired[1].sum() == pytest.approx(10.0)


@settings(max_examples=100, deadline=None)
@given(
    held=arrays(float, (3, 4), elements=st.floats(0, 1e6)),
    cash=arrays(float, 3, elements=st.floats(0, 1e5)),
    raw=arrays(float, 4, elements=st.floats(0.01, 1)),
    taxable=arrays(bool, 3),
    roth=arrays(bool, 3),
    inefficient=arrays(bool, 4),
)
def test_every_account_stays_fully_invested_and_taxable_never_sells(
    held, cash, raw, taxable, roth, inefficient
):
    investable = held.sum(axis=1) + cash
    location = locate(investable, held, raw / raw.sum(), taxable, roth & ~taxable, inefficient)

    desired = location.desired
    assert (desired >= -1e-6).all()
    assert np.allclose(desired.sum(axis=1)[~taxable], investable[~taxable], rtol=1e-9, atol=1e-3)
    assert (desired[taxable] >= held[taxable] - 1e-6).all()
    assert (desired.sum(axis=1) <= investable + 1e-3).all()


def test_substitute_groups_are_read_one_per_line():
    groups = parse_substitutes("subs.txt", ["# equity", "VTI, itot ,SCHB", "", "BND,AGG  # bonds"])

    assert groups == (("VTI", "ITOT", "SCHB"), ("BND", "AGG"))


def test_substitute_file_problems_name_the_line():
    with pytest.raises(InputError) as caught:
        parse_substitutes("subs.txt", ["VTI,ITOT", "BND", "ITOT,SCHB"])

    assert [str(p) for p in caught.value.problems] == [
        "subs.txt line 2: a group needs two symbols: 'BND'",
        "subs.txt line 3: ITOT is already in the group on line 1",
    ]
