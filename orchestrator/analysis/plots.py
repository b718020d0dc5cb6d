"""The report's figures, as PNG files, from the two tables and the resolved spec.

matplotlib only (Agg, no display); every function takes the tables and returns the
path it wrote, or None when the sweep has nothing to show for it (each says why in
`SKIPPED`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from orchestrator.results import schema  # noqa: E402

DPI = 110
STOP_COLOURS = {"completed": "#2b8a3e", "early_stopping": "#1971c2", "scheduler": "#e8590c",
                "diverged": "#c92a2a", "error": "#862e9c", "budget": "#868e96"}
LOG_KINDS = ("loguniform", "lograndint")


def searched(spec: dict[str, Any]) -> dict[str, str]:
    """Searched keys -> their distribution kind, from the resolved spec."""
    return {key: next(iter(dist)) for key, dist in spec.get("search_space", {}).items()}


def asha_rungs(spec: dict[str, Any]) -> list[int]:
    """The epochs at which ASHA judged trials (none for other schedulers)."""
    options = spec.get("scheduler", {})
    if options.get("name") != "asha":
        return []
    grace, factor = options.get("grace_period", 1), options.get("reduction_factor", 3)
    max_t = options.get("max_t") or spec["train"]["epochs"]
    rungs, k = [], 0
    while grace * factor**k < max_t:
        rungs.append(int(grace * factor**k))
        k += 1
    return rungs


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _values(column: pd.Series) -> pd.Series:
    """Config values as plottable values (lists are JSON text in the table)."""
    return column.map(lambda v: json.loads(v) if isinstance(v, str) and v.startswith("[")
                      else v)


def _categories(x: pd.Series) -> list[str]:
    """The distinct values as labels, in numeric order when they are numbers."""
    def key(label: str):
        try:
            return (0, float(label), label)
        except ValueError:
            return (1, 0.0, label)
    return sorted(x.astype(str).unique(), key=key)


def learning_curves(trials: pd.DataFrame, history: pd.DataFrame, spec: dict, out: Path) -> Path:
    metric = spec["metric"]
    reasons = trials.set_index(schema.TRIAL_ID)[schema.STOP_REASON].fillna("unfinished")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    seen = set()
    for trial_id, rows in history.groupby(schema.TRIAL_ID):
        reason = reasons.get(trial_id, "unfinished")
        label = None if reason in seen else reason
        seen.add(reason)
        ax.plot(rows["epoch"], rows[metric], color=STOP_COLOURS.get(reason, "#adb5bd"),
                alpha=0.75, linewidth=1.2, label=label)
    for rung in asha_rungs(spec):
        ax.axvline(rung, color="#495057", linestyle="--", linewidth=0.8)
    if asha_rungs(spec):
        ax.plot([], [], color="#495057", linestyle="--", linewidth=0.8, label="ASHA rung")
    ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} of every trial, by how it ended")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return _save(fig, out / "learning_curves.png")


def metric_vs_settings(trials: pd.DataFrame, spec: dict, out: Path) -> Path | None:
    keys = searched(spec)
    best = schema.best_column(spec["metric"])
    if not keys or trials[best].notna().sum() == 0:
        return None
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, (key, kind) in zip(axes.flat, keys.items()):
        x = _values(trials[schema.CONFIG_PREFIX + key])
        if pd.api.types.is_numeric_dtype(x) and kind not in ("choice", "grid"):
            ax.scatter(x, trials[best], s=18, color="#1971c2", alpha=0.8)
            if kind in LOG_KINDS:
                ax.set_xscale("log")
        else:
            labels = _categories(x)
            codes = x.astype(str).map({v: i for i, v in enumerate(labels)})
            jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(codes))
            ax.scatter(codes + jitter, trials[best], s=18, color="#1971c2", alpha=0.8)
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
        ax.set(xlabel=key, ylabel=best)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.suptitle(f"{best} against each searched setting")
    return _save(fig, out / "metric_vs_settings.png")


def _encoded(trials: pd.DataFrame, keys: dict[str, str]) -> pd.DataFrame:
    """Each searched setting as a number in [0, 1] (log scale where searched so,
    categories in sorted order)."""
    encoded = {}
    for key, kind in keys.items():
        x = _values(trials[schema.CONFIG_PREFIX + key])
        if pd.api.types.is_numeric_dtype(x) and kind not in ("choice", "grid"):
            x = np.log10(x.astype(float)) if kind in LOG_KINDS else x.astype(float)
        else:
            labels = _categories(x)
            x = x.astype(str).map({v: i for i, v in enumerate(labels)}).astype(float)
        span = x.max() - x.min()
        encoded[key] = (x - x.min()) / span if span else x * 0 + 0.5
    return pd.DataFrame(encoded)


def parallel_coordinates(trials: pd.DataFrame, spec: dict, out: Path) -> Path | None:
    keys = searched(spec)
    best = schema.best_column(spec["metric"])
    scored = trials[trials[best].notna()].reset_index(drop=True)
    if len(keys) < 2 or len(scored) < 2:
        return None
    encoded = _encoded(scored, keys)
    values = scored[best]
    norm = plt.Normalize(values.min(), values.max())
    cmap = plt.get_cmap("viridis" if spec["mode"] == "max" else "viridis_r")
    fig, ax = plt.subplots(figsize=(max(6, 1.8 * len(keys)), 4.5))
    for i in values.sort_values(ascending=spec["mode"] == "max").index:
        ax.plot(range(len(keys)), encoded.loc[i], color=cmap(norm(values[i])), alpha=0.8)
    ax.set_xticks(range(len(keys)), list(keys), rotation=15)
    ax.set_yticks([0, 1], ["low", "high"])
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


MIN_TRIALS_FOR_IMPORTANCE = 8


def importance(trials: pd.DataFrame, spec: dict, out: Path) -> tuple[Path | None, pd.Series]:
    """Permutation importance of each searched setting for a random forest that
    predicts the best metric from the settings (scikit-learn)."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    keys = searched(spec)
    best = schema.best_column(spec["metric"])
    scored = trials[trials[best].notna()].reset_index(drop=True)
    if not keys or len(scored) < MIN_TRIALS_FOR_IMPORTANCE:
        return None, pd.Series(dtype=float)
    x = _encoded(scored, keys).fillna(0.5)
    y = scored[best].astype(float)
    forest = RandomForestRegressor(n_estimators=200, random_state=0).fit(x, y)
    result = permutation_importance(forest, x, y, n_repeats=10, random_state=0)
    scores = pd.Series(result.importances_mean, index=list(keys)).sort_values()
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(keys) + 1.5))
    ax.barh(scores.index, scores.values, xerr=result.importances_std[
        [list(keys).index(k) for k in scores.index]], color="#1971c2")
    ax.set(xlabel=f"drop in R² of {best} when the setting is shuffled",
           title="hyperparameter importance (random forest, permutation)")
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, out / "importance.png"), scores.sort_values(ascending=False)


SKIPPED = {
    "metric_vs_settings.png": "no searched settings, or no trial with a score",
    "parallel_coordinates.png": "fewer than 2 searched settings or 2 scored trials",
    "lr_curves.png": "no trial with a score",
    "importance.png": f"fewer than {MIN_TRIALS_FOR_IMPORTANCE} scored trials, or nothing searched",
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
