"""The backtest lab: rebalancing policies on price history, run by the core's own policies.

Modules: ``history`` (a price history as arrays), ``schedule`` (when the portfolio is reviewed),
``variants`` (lab policies mapped onto core policies), ``engine`` (the vectorised simulator),
``lab`` (one run and its metrics), ``metrics``, ``sweep`` (the results table of a grid of
variants), ``rebalances`` (every trade of a run), ``html_report`` and ``validation`` (Vanguard's
study). The lab reads no file: price histories and grids come from :mod:`rebal.io`
(``price_history``, ``sweep_grid``).
"""
