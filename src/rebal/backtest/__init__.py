"""The backtest lab: rebalancing policies on price history, run by the core's own policies.

Modules: ``data`` (price histories and the shipped Shiller series), ``schedule`` (when the
portfolio is reviewed), ``variants`` (lab policies mapped onto core policies), ``engine`` (the
vectorised simulator), ``metrics``, ``sweep`` (grids of variants, results table) and ``report``
(the HTML report).
"""
