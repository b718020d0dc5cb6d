"""How much each searched setting mattered: permutation importance of each setting for a
random forest that predicts the best metric from the settings (scikit-learn)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from orchestrator.analysis.axes import setting_axes
from orchestrator.results import schema

MIN_TRIALS_FOR_IMPORTANCE = 8
NOT_ENOUGH = f"fewer than {MIN_TRIALS_FOR_IMPORTANCE} scored trials, or nothing searched"


def importance(trials: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """Per searched setting, the mean and std of the drop in R² when it is shuffled, most
    important first; empty under MIN_TRIALS_FOR_IMPORTANCE scored trials."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    best = schema.best_column(spec["metric"])
    scored = trials[trials[best].notna()].reset_index(drop=True)
    axes = setting_axes(scored, spec)
    if not axes or len(scored) < MIN_TRIALS_FOR_IMPORTANCE:
        return pd.DataFrame(columns=["mean", "std"], dtype=float)
    # each setting in [0, 1] of its axis (log scale where searched so); unset: the middle
    x = pd.DataFrame({a.label: a.normalized() for a in axes}).fillna(0.5)
    y = scored[best].astype(float)
    forest = RandomForestRegressor(n_estimators=200, random_state=0).fit(x, y)
    result = permutation_importance(forest, x, y, n_repeats=10, random_state=0)
    return pd.DataFrame({"mean": result.importances_mean, "std": result.importances_std},
                        index=list(x.columns)).sort_values("mean", ascending=False)
