"""The report's figures as PNG files (`sweep report --format png`, and the docs), from
the two tables and the resolved spec.

matplotlib only (Agg, no display); every function takes the tables and returns the
path it wrote, or None when the sweep has nothing to show for it (each says why in
`SKIPPED`). Settings are drawn on the axes of `axes.py`: real values at the ticks.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from orchestrator.analysis.axes import metric_axis, setting_axes  # noqa: E402
from orchestrator.analysis.curve_marks import (  # noqa: E402
    SIGNALS_SKIPPED,
    STOP_COLOURS,
    UNFINISHED_COLOUR,
    UPDATE_YARDSTICK,
    asha_rungs,
    loss_column,
    on_log_axis,
    signal_panels,
)
from orchestrator.analysis.importance import NOT_ENOUGH  # noqa: E402
from orchestrator.results import schema  # noqa: E402

DPI = 110


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def learning_curves(trials: pd.DataFrame, history: pd.DataFrame, spec: dict, out: Path) -> Path:
    metric = spec["metric"]
    reasons = trials.set_index(schema.TRIAL_ID)[schema.STOP_REASON].fillna("unfinished")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    seen = set()
    for trial_id, rows in history.groupby(schema.TRIAL_ID):
        reason = reasons.get(trial_id, "unfinished")
        label = None if reason in seen else reason
        seen.add(reason)
        ax.plot(rows["epoch"], rows[metric], color=STOP_COLOURS.get(reason, UNFINISHED_COLOUR),
                alpha=0.75, linewidth=1.2, label=label)
    for rung in asha_rungs(spec):
        ax.axvline(rung, color="#495057", linestyle="--", linewidth=0.8)
    if asha_rungs(spec):
        ax.plot([], [], color="#495057", linestyle="--", linewidth=0.8, label="ASHA rung")
    ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} of every trial, by how it ended")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return _save(fig, out / "learning_curves.png")


def signals(trials: pd.DataFrame, history: pd.DataFrame, spec: dict, out: Path) -> Path | None:
    """The loss and a small panel per training signal beside it (log axes)."""
    panels = signal_panels(history)
    loss = loss_column(history)
    if not panels or loss is None:
        return None
    columns = [(loss, loss), *panels]
    fig, axes = plt.subplots(1, len(columns), figsize=(3 * len(columns), 3), squeeze=False)
    reasons = trials.set_index(schema.TRIAL_ID)[schema.STOP_REASON].fillna("unfinished")
    seen = set()
    for trial_id, rows in history.groupby(schema.TRIAL_ID):
        reason = reasons.get(trial_id, "unfinished")
        colour = STOP_COLOURS.get(reason, UNFINISHED_COLOUR)
        for i, (ax, (column, _)) in enumerate(zip(axes.flat, columns)):
            values = rows[column] if i == 0 else on_log_axis(rows[column])
            ax.plot(rows["epoch"], values, color=colour, alpha=0.75, linewidth=1,
                    label=None if i or reason in seen else reason)
        seen.add(reason)
    for i, (ax, (column, title)) in enumerate(zip(axes.flat, columns)):
        if i:
            ax.set_yscale("log")
        if column == "update_ratio":
            ax.axhline(UPDATE_YARDSTICK, color="#495057", linestyle=":", linewidth=0.8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7, loc="best")
    fig.suptitle("the training's own signals beside the loss", fontsize=10)
    return _save(fig, out / "signals.png")


def metric_vs_settings(trials: pd.DataFrame, spec: dict, out: Path) -> Path | None:
    best = schema.best_column(spec["metric"])
    axes = setting_axes(trials, spec)
    if not axes or trials[best].notna().sum() == 0:
        return None
    cols = min(3, len(axes))
    rows = -(-len(axes) // cols)
    fig, subplots = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, axis in zip(subplots.flat, axes):
        # categories side by side would hide each other: spread them a little
        jitter = (np.random.default_rng(0).uniform(-0.12, 0.12, len(axis.values))
                  if axis.categorical else 0.0)
        ax.scatter(axis.values + jitter, trials[best], s=18, color="#1971c2", alpha=0.8)
        ax.set_xticks(axis.tickvals, axis.ticktext, rotation=30 if axis.categorical else 0,
                      fontsize=8)
        ax.set_xlim(axis.low - 0.05 * (axis.high - axis.low),
                    axis.high + 0.05 * (axis.high - axis.low))
        ax.set(xlabel=axis.label, ylabel=best)
        ax.grid(alpha=0.3)
    for ax in list(subplots.flat)[len(axes):]:
        ax.axis("off")
    fig.suptitle(f"{best} against each searched setting")
    return _save(fig, out / "metric_vs_settings.png")


def parallel_coordinates(trials: pd.DataFrame, spec: dict, out: Path) -> Path | None:
    best = schema.best_column(spec["metric"])
    scored = trials[trials[best].notna()].reset_index(drop=True)
    settings = setting_axes(scored, spec)
    if len(settings) < 2 or len(scored) < 2:
        return None
    axes = [*settings, metric_axis(best, scored[best])]
    values = scored[best]
    norm = plt.Normalize(values.min(), values.max())
    cmap = plt.get_cmap("viridis" if spec["mode"] == "max" else "viridis_r")
    fig, ax = plt.subplots(figsize=(max(6, 1.8 * len(axes)), 4.5))
    lines = np.column_stack([a.normalized() for a in axes])
    for i in values.sort_values(ascending=spec["mode"] == "max").index:
        ax.plot(range(len(axes)), lines[i], color=cmap(norm(values[i])), alpha=0.8)
    # every axis its own scale: its real values written beside it
    for x, axis in enumerate(axes):
        ax.axvline(x, color="#495057", linewidth=0.8)
        for tick, text in zip(axis.tickvals, axis.ticktext):
            y = (tick - axis.low) / (axis.high - axis.low)
            ax.text(x + 0.03, y, text, fontsize=7, va="center", color="#343a40")
    ax.set_xticks(range(len(axes)), [a.label for a in axes], rotation=15)
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"searched settings of every trial, coloured by {best}")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=best)
    return _save(fig, out / "parallel_coordinates.png")


def lr_curves(trials: pd.DataFrame, history: pd.DataFrame, spec: dict, out: Path,
              top: int = 5) -> Path | None:
    best = schema.best_column(spec["metric"])
    ranked = trials.dropna(subset=[best]).sort_values(best, ascending=spec["mode"] == "min")
    chosen = ranked[schema.TRIAL_ID].head(top).tolist()
    if not chosen:
        return None
    fig, ax = plt.subplots(figsize=(8, 4))
    for trial_id in chosen:
        rows = history[history[schema.TRIAL_ID] == trial_id]
        ax.plot(rows["epoch"], rows["lr"], marker=".", label=trial_id)
    ax.set(xlabel="epoch", ylabel="learning rate (first step of the epoch)",
           title=f"learning-rate schedules of the top {len(chosen)} trials")
    if (history["lr"] > 0).all():
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, out / "lr_curves.png")


def importance(scores: pd.DataFrame, spec: dict, out: Path) -> Path | None:
    """The permutation importances of `importance.importance`, as bars."""
    if scores.empty:
        return None
    scores = scores.sort_values("mean")
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(scores) + 1.5))
    ax.barh(scores.index, scores["mean"], xerr=scores["std"], color="#1971c2")
    ax.set(xlabel=f"drop in R² of {schema.best_column(spec['metric'])} when the setting is "
           "shuffled", title="hyperparameter importance (random forest, permutation)")
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, out / "importance.png")


SKIPPED = {  # by file stem: why a figure was not drawn
    "metric_vs_settings": "no searched settings, or no trial with a score",
    "parallel_coordinates": "fewer than 2 searched settings or 2 scored trials",
    "lr_curves": "no trial with a score",
    "importance": NOT_ENOUGH,
    "signals": SIGNALS_SKIPPED,
}


def lr_find_plot(lrs, losses, suggested: float, low: float, high: float, out: Path) -> Path:
    """The range test's smoothed loss against the rate, the suggestion and range marked."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(lrs, losses, color="#1971c2")
    ax.axvspan(low, high, color="#74c0fc", alpha=0.25, label="search range")
    ax.axvline(suggested, color="#e8590c", linestyle="--",
               label=f"suggested {suggested:.3g}")
    ax.set_xscale("log")
    finite = np.asarray(losses)[np.isfinite(losses)]
    if len(finite):
        ax.set_ylim(finite.min() * 0.9, min(finite.max(), finite[0] * 1.5) * 1.05)
    ax.set(xlabel="learning rate (the optimiser's, after batch scaling)",
           ylabel="training loss (smoothed)", title="learning-rate range test")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, out / "lr_find.png")
