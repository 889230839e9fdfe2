"""The HTML report of a backtest: the plots a person looks at, and the metrics table.

One self-contained file (plots embedded as base64 PNG): value curves of the variants against
never rebalancing, the weights of one focus variant over time with its tolerance bands, its
drift against the baseline's, and the turnover-versus-tracking-error frontier of the grid.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rebal.backtest.metrics import MONEY_COLUMNS, PERCENT_COLUMNS, money_text, period_returns
from rebal.backtest.sweep import LabRun

#: Value curves drawn at most (the first variants of the grid, plus the baseline).
SHOWN_CURVES = 8
#: Table rows shown in the report (the CSV/Parquet output has them all).
SHOWN_ROWS = 200


def _png(fig: Figure, title: str, ylabel: str) -> str:
    """The figure's one plot titled, labelled, gridded and with its legend, as base64 PNG."""
    (ax,) = fig.axes
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    # A bare Figure (no pyplot) renders with the Agg canvas and leaves no global state behind.
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _dates(run: LabRun) -> np.ndarray:
    return run.history.dates.astype("datetime64[D]").astype("O")


def value_curves(run: LabRun) -> str:
    """Growth of 1 (time-weighted, so flows do not count) of the first variants and the baseline."""
    growth = np.cumprod(1.0 + period_returns(run.result), axis=1)
    growth = np.concatenate([np.ones((growth.shape[0], 1)), growth], axis=1)
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    dates = _dates(run)
    shown = list(range(min(SHOWN_CURVES, len(run.table))))
    baseline = len(run.variants) - 1
    for i in shown:
        ax.plot(dates, growth[i], lw=1.2, label=run.variants[i].label())
    if run.variants[baseline].policy == "never" and baseline not in shown:
        ax.plot(dates, growth[baseline], lw=1.2, color="black", ls="--", label="never (baseline)")
    ax.set_yscale("log")
    return _png(fig, "Value curves", "growth of 1 (log scale)")


def weights_with_bands(focus: LabRun) -> str:
    """Weights of the focus variant (row 0) over time, with its band edges as dashed lines."""
    assert focus.result.weights is not None
    weights = focus.result.weights[0]
    edges = focus.plan.edges
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    dates = _dates(focus)
    for k, sym in enumerate(focus.history.symbols):
        (line,) = ax.plot(dates, weights[:, k] * 100, lw=1.0, label=sym)
        for edge in (edges.band_low[0, k], edges.band_high[0, k]):
            ax.axhline(edge * 100, color=line.get_color(), ls="--", lw=0.8, alpha=0.7)
    trades = dates[focus.result.event_dates(0)]
    ax.plot(
        trades, np.full(len(trades), ax.get_ylim()[0]), "|", color="black", ms=8, label="rebalances"
    )
    return _png(
        fig,
        f"Weights with tolerance bands: {focus.variants[0].label()}",
        "weight before trading (%)",
    )


def drift_plot(focus: LabRun) -> str:
    """Largest absolute drift of the focus variant and of never rebalancing, over time."""
    assert focus.result.weights is not None
    target = focus.plan.target[:, None, :]
    drift = np.abs(focus.result.weights - target).max(axis=2) * 100
    fig = Figure(figsize=(9, 3.5))
    ax = fig.subplots()
    dates = _dates(focus)
    ax.plot(dates, drift[-1], lw=0.9, color="grey", label="never (baseline)")
    ax.plot(dates, drift[0], lw=1.0, label=focus.variants[0].label())
    return _png(fig, "Drift", "max |weight - target| (pp)")


def efficient(turnover: np.ndarray, tracking: np.ndarray) -> np.ndarray:
    """Mask of the variants no other variant beats on both turnover and tracking error."""
    order = np.lexsort((tracking, turnover))
    best = np.inf
    mask = np.zeros(len(turnover), dtype=bool)
    for i in order:
        if tracking[i] < best:
            mask[i] = True
            best = tracking[i]
    return mask


def frontier(table: pd.DataFrame) -> str:
    """Turnover against tracking error of every variant; the efficient ones are joined."""
    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    x = table["turnover"].to_numpy() * 100
    y = table["tracking_error"].to_numpy() * 100
    for policy, group in table.groupby("policy", sort=False):
        ax.scatter(group["turnover"] * 100, group["tracking_error"] * 100, s=14, label=policy)
    mask = efficient(x, y)
    order = np.argsort(x[mask])
    ax.plot(x[mask][order], y[mask][order], color="black", lw=0.8, label="efficient frontier")
    ax.set_xlabel("turnover (% per year)")
    return _png(
        fig,
        "Turnover versus tracking error",
        "tracking error vs continuously rebalanced target (% per year)",
    )


def _table_html(table: pd.DataFrame) -> str:
    shown = table.head(SHOWN_ROWS).copy()
    for col in PERCENT_COLUMNS:
        shown[col] = (shown[col] * 100).map(lambda v: f"{v:.2f}%")
    for col in [c for c in shown.columns if c.startswith("avg_weight_")]:
        shown[col] = (shown[col] * 100).map(lambda v: f"{v:.1f}%")
    for col in [c for c in MONEY_COLUMNS if c in shown]:
        shown[col] = shown[col].map(money_text)
    shown["events"] = shown["events"].astype(int)
    note = ""
    if len(table) > SHOWN_ROWS:
        note = f"<p>First {SHOWN_ROWS} of {len(table)} variants; --out has them all.</p>"
    return note + shown.to_html(index=False, na_rep="", border=0, classes="metrics")


def render_report(run: LabRun, focus: LabRun, title: str) -> str:
    """Return the report as one HTML document.

    ``run`` is the whole grid; ``focus`` is a re-run of one variant (row 0) and the never
    baseline (last row) with weights recorded.
    """
    h = run.history
    figures = [
        ("Value curves", value_curves(run)),
        ("Weights over time with bands", weights_with_bands(focus)),
        ("Drift", drift_plot(focus)),
        ("Turnover versus tracking error", frontier(run.table)),
    ]
    body = "\n".join(
        f'<h2>{html.escape(name)}</h2><img alt="{html.escape(name)}" '
        f'src="data:image/png;base64,{data}">'
        for name, data in figures
    )
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table.metrics{border-collapse:collapse;font-size:12px}"
        "table.metrics td,table.metrics th{padding:2px 6px;border-bottom:1px solid #ddd;"
        "text-align:right}"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{style}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(h.source)}: {', '.join(map(html.escape, h.symbols))}, "
        f"{h.dates[0]} to {h.dates[-1]} ({len(h.dates)} observations). "
        "Metric definitions: docs/backtest.md.</p>"
        f"{body}<h2>Metrics</h2>{_table_html(run.table)}</body></html>\n"
    )
