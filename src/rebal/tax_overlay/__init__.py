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
  portfolio (`rebal.tax.location`): sales happen in IRA/Roth accounts, taxable accounts only buy.
- **Loss harvesting** (`tlh=True`): taxable accounts with a lot below the loss threshold are
  looked at (found with one vectorised pass over the holdings), and actionable candidates
  (`rebal.tax.harvest`) sell their losing lots and buy the substitute.

Every taxable account that trades, and every account the tax layer planned, then gets its tax
report (`rebal.tax.account_report`): each sell's lots (by `lot_method`), realised short/long-term
gains, the netted estimated tax and wash-sale flags; other IRA/Roth accounts realise no taxable gain
and get the empty report. So the Python loop runs over the taxable accounts that trade (and the
households and harvest candidates asked for), never over the whole book; selecting them is
vectorised. Nothing here reads the clock: `TaxSettings.as_of` is given.

The package: `settings` (the options and the records returned), `context` (what every step
reads, built once), `decisions` (what each step returns: rows re-planned or held, notes, lots,
problems), `run_trades` (what the run buys and sells at a loss per household, for wash sales
within the run), one module per step: `households`, `wash` (wash-sale guards and substitutes),
`planning` and `quantities` (the taxable accounts' plans, and when not to rebalance),
`harvesting`; `run_reports` (tax reports, each sell's lots), `run` (the steps composed in order,
and the splice), and `convert` (the engine's integers and floats as `Decimal`).
"""

from rebal.tax_overlay.run import apply_tax, run_tax_aware
from rebal.tax_overlay.settings import PLANNER_METHODS, AccountTax, TaxAwareProposal, TaxSettings

__all__ = [
    "PLANNER_METHODS",
    "AccountTax",
    "TaxAwareProposal",
    "TaxSettings",
    "apply_tax",
    "run_tax_aware",
]
