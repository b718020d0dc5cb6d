"""The report's interactive charts (plotly), drawn in report.html by the plotly.js the
page carries inline: zoom, hover, legend toggles and, on the parallel coordinates,
brushing a range of any axis.

Each function returns a figure, or None when the sweep has nothing to show for it (each
says why in `SKIPPED`). Settings are drawn on the axes of `axes.py`: the ticks are the
real values, the hover names the trial and its searched settings.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from orchestrator.analysis.axes import Axis, metric_axis, searched, setting_axes
from orchestrator.analysis.curve_marks import (
    SIGNALS_SKIPPED,
    STOP_COLOURS,
    UNFINISHED_COLOUR,
    UPDATE_YARDSTICK,
    asha_rungs,
    loss_column,
    on_log_axis,
    signal_panels,
)
from orchestrator.analysis.importance import NOT_ENOUGH
from orchestrator.analysis.leaderboard import fmt
from orchestrator.results import schema

LOOK = {"template": "plotly_white", "font": {"family": "system-ui, sans-serif", "size": 12},
        "margin": {"l": 60, "r": 30, "t": 50, "b": 50}}
# the modebar's plotly logo (a link) and its "Share chart" (an upload to Plotly Cloud)
# lead out of an offline page
CONFIG = {"displaylogo": False, "showSendToCloud": False, "responsive": True}
FALLBACK_CURVE = "val_loss"

SKIPPED = {
    "learning_curves": f"no epoch reported the metric or {FALLBACK_CURVE}",
    "metric_vs_settings": "no searched settings, or no trial with a score",
    "parallel_coordinates": "no searched settings, or no trial with a score",
    "lr_curves": "no trial with a score",
    "importance": NOT_ENOUGH,
    "signals": SIGNALS_SKIPPED,
}


def fragment(fig: go.Figure, name: str) -> str:
    """The chart as a <div> and the script that draws it; plotly.js itself comes once,
    from the page (`plotly_js`)."""
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, config=CONFIG,
                       div_id=f"chart-{name}", default_height=f"{fig.layout.height}px")


def plotly_js() -> str:
    """plotly.js, to inline in a <script> element of the page."""
    from plotly.offline import get_plotlyjs

    # a "</script" inside it would end the element early (there is none today)
    return get_plotlyjs().replace("</script", "<\\/script")


def _hover_settings(trials: pd.DataFrame, spec: dict[str, Any]) -> dict[str, str]:
    """trial id -> its searched settings as hover lines (HTML-escaped)."""
    keys = list(searched(spec))
    lines = {}
    for row in trials.to_dict("records"):
        lines[row[schema.TRIAL_ID]] = "".join(
            f"<br>{html.escape(key)} = {html.escape(fmt(row.get(schema.CONFIG_PREFIX + key)))}"
            for key in keys)
    return lines


def _curve_metric(history: pd.DataFrame, metric: str) -> str | None:
    """The objective if any epoch reported it, else val_loss, else nothing."""
    for column in (metric, FALLBACK_CURVE):
        if column in history and history[column].notna().any():
            return column
    return None


def learning_curves(trials: pd.DataFrame, history: pd.DataFrame,
                    spec: dict[str, Any]) -> go.Figure | None:
    """Every trial's metric by epoch, one line each, coloured by how it ended; the
    legend toggles a whole stop reason."""
    metric = _curve_metric(history, spec["metric"])
    if metric is None:
        return None
    reasons = trials.set_index(schema.TRIAL_ID)[schema.STOP_REASON].fillna("unfinished")
    settings = _hover_settings(trials, spec)
    fig = go.Figure()
    shown: set[str] = set()
    for trial_id, rows in history.groupby(schema.TRIAL_ID):
        reason = reasons.get(trial_id, "unfinished")
        fig.add_scatter(
            x=rows["epoch"], y=rows[metric], mode="lines+markers", marker={"size": 4},
            line={"width": 1.5, "color": STOP_COLOURS.get(reason, UNFINISHED_COLOUR)},
            opacity=0.8, name=reason, legendgroup=reason, showlegend=reason not in shown,
            hovertemplate=(f"<b>{html.escape(str(trial_id))}</b> ({reason})"
                           f"{settings.get(trial_id, '')}<br>epoch %{{x}}: "
                           f"{metric} %{{y:.4~g}}<extra></extra>"))
        shown.add(reason)
    rungs = asha_rungs(spec)
    for rung in rungs:
        fig.add_vline(x=rung, line={"dash": "dash", "color": "#495057", "width": 1})
    if rungs:  # a legend entry for the dashed lines
        fig.add_scatter(x=[None], y=[None], mode="lines", name="ASHA rung",
                        line={"dash": "dash", "color": "#495057", "width": 1})
    title = f"{metric} of every trial, by how it ended"
    if metric != spec["metric"]:
        title += f" (no epoch reported {spec['metric']})"
    fig.update_layout(**LOOK, title=title, height=460, hovermode="closest",
                      xaxis_title="epoch", yaxis_title=metric, legend_title="stop_reason")
    return fig


def signals(trials: pd.DataFrame, history: pd.DataFrame,
            spec: dict[str, Any]) -> go.Figure | None:
    """The loss and, beside it, a small panel per training signal (log axes), every
    trial a line coloured by how it ended; the update ratio's 1e-3 yardstick dotted."""
    panels = signal_panels(history)
    loss = loss_column(history)
    if not panels or loss is None:
        return None
    columns = [(loss, loss), *panels]
    fig = make_subplots(1, len(columns), horizontal_spacing=0.05,
                        subplot_titles=[title for _, title in columns])
    reasons = trials.set_index(schema.TRIAL_ID)[schema.STOP_REASON].fillna("unfinished")
    shown: set[str] = set()
    for trial_id, rows in history.groupby(schema.TRIAL_ID):
        reason = reasons.get(trial_id, "unfinished")
        for i, (column, _) in enumerate(columns):
            values = rows[column] if i == 0 else on_log_axis(rows[column])
            fig.add_scatter(
                x=rows["epoch"], y=values, mode="lines+markers", marker={"size": 3},
                line={"width": 1.2, "color": STOP_COLOURS.get(reason, UNFINISHED_COLOUR)},
                opacity=0.8, name=reason, legendgroup=reason,
                showlegend=i == 0 and reason not in shown, row=1, col=i + 1,
                hovertemplate=(f"<b>{html.escape(str(trial_id))}</b> ({reason})<br>epoch "
                               f"%{{x}}: {column} %{{y:.3~g}}<extra></extra>"))
        shown.add(reason)
    for i, (column, _) in enumerate(columns[1:], start=2):
        fig.update_yaxes(type="log", row=1, col=i)
        if column == "update_ratio":
            fig.add_hline(y=UPDATE_YARDSTICK, line={"dash": "dot", "color": "#495057",
                                                    "width": 1}, row=1, col=i)
    fig.update_xaxes(title="epoch")
    fig.update_layout(**LOOK, title="the training's own signals beside the loss",
                      height=340, hovermode="closest", legend_title="stop_reason")
    return fig


def _settings_axis(axis: Axis) -> dict[str, Any]:
    pad = 0.05 * (axis.high - axis.low)
    return {"title": axis.label, "tickvals": axis.tickvals, "ticktext": axis.ticktext,
            "range": [axis.low - pad, axis.high + pad]}


def metric_vs_settings(trials: pd.DataFrame, spec: dict[str, Any]) -> go.Figure | None:
    best = schema.best_column(spec["metric"])
    scored = trials[trials[best].notna()].reset_index(drop=True)
    axes = setting_axes(scored, spec)
    if not axes or scored.empty:
        return None
    cols = min(3, len(axes))
    rows = -(-len(axes) // cols)
    fig = make_subplots(rows, cols, horizontal_spacing=0.08, vertical_spacing=0.18)
    settings = _hover_settings(scored, spec)
    hover = [f"<b>{html.escape(str(t))}</b>{settings[t]}" for t in scored[schema.TRIAL_ID]]
    for i, axis in enumerate(axes):
        row, col = i // cols + 1, i % cols + 1
        # categories side by side would hide each other: spread them a little
        jitter = (np.random.default_rng(0).uniform(-0.12, 0.12, len(axis.values))
                  if axis.categorical else 0.0)
        fig.add_scatter(x=axis.values + jitter, y=scored[best], mode="markers",
                        marker={"size": 7, "color": "#1971c2", "opacity": 0.8},
                        customdata=hover, showlegend=False, row=row, col=col,
                        hovertemplate=f"%{{customdata}}<br>{best} %{{y:.4~g}}<extra></extra>")
        fig.update_xaxes(**_settings_axis(axis), row=row, col=col)
        fig.update_yaxes(title=best if col == 1 else None, row=row, col=col)
    fig.update_layout(**LOOK, title=f"{best} against each searched setting",
                      height=320 * rows + 60)
    return fig


def parallel_coordinates(trials: pd.DataFrame, spec: dict[str, Any]) -> go.Figure | None:
    """The searched settings of every scored trial and its metric, one line each, the
    axes at the settings' real values; drag along an axis to keep a range of it."""
    best = schema.best_column(spec["metric"])
    scored = trials[trials[best].notna()].reset_index(drop=True)
    settings = setting_axes(scored, spec)
    if not settings or scored.empty:
        return None
    dimensions = [{"label": a.label, "values": a.values, "range": [a.low, a.high],
                   "tickvals": a.tickvals, "ticktext": a.ticktext}
                  for a in [*settings, metric_axis(best, scored[best])]]
    fig = go.Figure(go.Parcoords(
        dimensions=dimensions, labelangle=-12 if len(dimensions) > 7 else 0,
        domain={"x": [0, 0.94]},  # room for the colour bar beside the metric's ticks
        line={"color": scored[best], "colorscale": "Viridis",
              "reversescale": spec["mode"] == "min", "showscale": True,
              "colorbar": {"title": {"text": best}}}))
    fig.update_layout(**{**LOOK, "margin": {"l": 70, "r": 40, "t": 90, "b": 30}},
                      title=f"searched settings of every trial, coloured by {best}",
                      height=480)
    return fig


def lr_curves(trials: pd.DataFrame, history: pd.DataFrame, spec: dict[str, Any],
              top: int = 5) -> go.Figure | None:
    best = schema.best_column(spec["metric"])
    ranked = trials.dropna(subset=[best]).sort_values(best, ascending=spec["mode"] == "min")
    chosen = ranked[schema.TRIAL_ID].head(top).tolist()
    if not chosen:
        return None
    settings = _hover_settings(ranked, spec)
    fig = go.Figure()
    for trial_id in chosen:
        rows = history[history[schema.TRIAL_ID] == trial_id]
        fig.add_scatter(x=rows["epoch"], y=rows["lr"], mode="lines+markers", name=trial_id,
                        hovertemplate=(f"<b>{html.escape(str(trial_id))}</b>{settings[trial_id]}"
                                       "<br>epoch %{x}: lr %{y:.3~g}<extra></extra>"))
    fig.update_layout(**LOOK, title=f"learning-rate schedules of the top {len(chosen)} trials",
                      height=400, xaxis_title="epoch",
                      yaxis_title="learning rate (first step of the epoch)")
    if (history["lr"] > 0).all():
        fig.update_yaxes(type="log")
    return fig


def importance(scores: pd.DataFrame, spec: dict[str, Any]) -> go.Figure | None:
    """The permutation importances of `importance.importance`, as bars."""
    if scores.empty:
        return None
    scores = scores.sort_values("mean")
    fig = go.Figure(go.Bar(x=scores["mean"], y=scores.index, orientation="h",
                           error_x={"array": scores["std"]}, marker_color="#1971c2",
                           hovertemplate="%{y}: %{x:.3~f}<extra></extra>"))
    fig.update_layout(**LOOK, title="hyperparameter importance (random forest, permutation)",
                      height=40 * len(scores) + 160,
                      xaxis_title=f"drop in R² of {schema.best_column(spec['metric'])} "
                      "when the setting is shuffled")
    return fig
