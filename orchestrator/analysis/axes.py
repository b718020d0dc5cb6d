"""A sweep's searched settings as chart axes that carry their real values.

A log-scale setting (loguniform, lograndint) is plotted as log10 of its value and ticked
at round values of the setting itself (0.0001, 0.001, ...); a choice or grid setting is
plotted as the index of its value and ticked with the values' names; any other setting
as itself. The PNG figures and the interactive charts draw from the same `Axis`, so the
two renderings label a setting the same way. No plotting library here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from orchestrator.results import schema

LOG_KINDS = ("loguniform", "lograndint")
CATEGORY_KINDS = ("choice", "grid")
INTEGER_KINDS = ("randint", "lograndint")


def searched(spec: dict[str, Any]) -> dict[str, dict[str, list]]:
    """Searched keys -> their distribution as the resolved spec writes it ({kind: args})."""
    return dict(spec.get("search_space", {}))


def kind_of(distribution: dict[str, list]) -> str:
    return next(iter(distribution))


def config_values(column: pd.Series) -> pd.Series:
    """Config values as plottable values (lists are JSON text in the table)."""
    return column.map(lambda v: json.loads(v) if isinstance(v, str) and v.startswith("[")
                      else v)


def name_of(value: Any) -> str:
    """A setting's value as its tick label; 32 and 32.0 (an int column that holds a
    null reads as floats) are one name."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def categories(names: pd.Series) -> list[str]:
    """The distinct names, in numeric order when they are numbers."""
    def key(label: str):
        try:
            return (0, float(label), label)
        except ValueError:
            return (1, 0.0, label)
    return sorted(names.dropna().unique(), key=key)


def tick_label(value: float) -> str:
    return f"{value:.4g}".replace("e-0", "e-").replace("e+0", "e+")


def log_ticks(low: float, high: float) -> list[float]:
    """Round values in [low, high] for a log axis: the powers of ten, with 2 and 5 (then
    every digit) between them when that gives fewer than three."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    ticks: list[float] = []
    for mantissas in ((1,), (1, 2, 5), tuple(range(1, 10))):
        # from text, so that 1e-4 is the literal 1e-4, not 10.0 ** -4
        ticks = [t for e in range(first, last + 1) for m in mantissas
                 if low * (1 - 1e-9) <= (t := float(f"{m}e{e}")) <= high * (1 + 1e-9)]
        if len(ticks) >= 3:
            break
    return ticks if len(ticks) >= 2 else [low, high]


def linear_ticks(low: float, high: float, integer: bool = False, most: int = 6) -> list[float]:
    """At most `most` round values in [low, high] (whole numbers only when `integer`)."""
    if high <= low:
        return [low]
    raw = (high - low) / (most - 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    step = max(step, 1.0) if integer else step
    start = math.ceil(low / step - 1e-9) * step
    count = math.floor((high - start) / step + 1e-9) + 1
    return [float(f"{start + i * step:.12g}") for i in range(count)]


@dataclass(frozen=True)
class Axis:
    label: str
    values: np.ndarray  # what is plotted: log10 of a log-scale setting, a category's index
    low: float  # the plotted range
    high: float
    tickvals: list[float]  # in plotted units
    ticktext: list[str]  # the real values they stand for
    categorical: bool = False

    def normalized(self) -> np.ndarray:
        """The values in [0, 1] across the axis' range."""
        return (self.values - self.low) / (self.high - self.low)


def _padded(low: float, high: float) -> tuple[float, float]:
    """A range that is not a point (one trial, or every trial alike)."""
    if high > low:
        return low, high
    pad = abs(low) * 0.05 or 0.5
    return low - pad, high + pad


def _category_axis(key: str, names: pd.Series, declared: list) -> Axis:
    labels = [name_of(v) for v in declared]
    labels += [n for n in categories(names) if n not in labels]
    index = names.map({name: i for i, name in enumerate(labels)}).astype(float)
    return Axis(key, index.to_numpy(), *_padded(0.0, len(labels) - 1.0),
                tickvals=[float(i) for i in range(len(labels))], ticktext=labels,
                categorical=True)


def setting_axis(key: str, values: pd.Series, distribution: dict[str, list]) -> Axis:
    """The axis of one searched setting, from its column and its declared distribution.

    Args:
        key: the setting as the spec names it (`optimizer.lr`).
        values: its column of the trials table.
        distribution: `{kind: args}`, as in the resolved spec's `search_space`.
    """
    kind, args = kind_of(distribution), list(distribution[kind_of(distribution)])
    x = config_values(values)
    numeric = pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x)
    if kind in CATEGORY_KINDS or not numeric:
        return _category_axis(key, x.map(name_of, na_action="ignore"),
                              args if kind in CATEGORY_KINDS else [])
    x = x.astype(float)
    # the declared range, widened to any value outside it (a spec edited on resume)
    low, high = float(np.nanmin([args[0], x.min()])), float(np.nanmax([args[1], x.max()]))
    if kind in LOG_KINDS:
        ticks = log_ticks(low, high)
        return Axis(key, np.log10(x.to_numpy()), *_padded(math.log10(low), math.log10(high)),
                    tickvals=[math.log10(t) for t in ticks],
                    ticktext=[tick_label(t) for t in ticks])
    ticks = linear_ticks(low, high, integer=kind in INTEGER_KINDS)
    return Axis(key, x.to_numpy(), *_padded(low, high), tickvals=ticks,
                ticktext=[tick_label(t) for t in ticks])


def metric_axis(label: str, values: pd.Series) -> Axis:
    values = values.astype(float)
    low, high = _padded(float(values.min()), float(values.max()))
    ticks = linear_ticks(low, high)
    return Axis(label, values.to_numpy(), low, high, tickvals=ticks,
                ticktext=[tick_label(t) for t in ticks])


def setting_axes(trials: pd.DataFrame, spec: dict[str, Any]) -> list[Axis]:
    """One axis per searched setting of `trials`, in the spec's order."""
    return [setting_axis(key, trials[schema.CONFIG_PREFIX + key], distribution)
            for key, distribution in searched(spec).items()]
