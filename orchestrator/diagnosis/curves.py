"""A trial's curves and what is read off them: levels, falls, noise, chance.

`read_curves` turns the history rows and the trial row into `Curves`; the rules
(rules.py) ask it the questions they share (did it beat chance, where does a curve level,
how far did the train loss fall, did the rate rise).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from statistics import median

from .reasons import num
from .thresholds import (
    CHANCE_MARGIN,
    FLAT,
    MIN_JUDGE,
    NEAR_CHANCE,
    PLATEAU,
    R2_MARGIN,
    RATE_CUT,
    TRACKS,
    WELL_BELOW,
)

# the training's own signals, as the history rows name them (trainable/signals.py records
# them; spec.settings.SIGNALS is this): the global gradient norm before clipping (mean,
# max), the update against the weights (median), the first weight layer's gradient norm
# against the last's (median)
SIGNALS = ("grad_norm", "grad_norm_max", "update_ratio", "grad_norm_ratio")


def _column(history: Sequence[Mapping], key: str) -> list[float]:
    """One column as floats: a missing value is NaN, NaN and inf stay what they are."""
    out = []
    for row in history:
        value = row.get(key)
        try:
            out.append(float("nan") if value is None else float(value))
        except (TypeError, ValueError):
            out.append(float("nan"))
    return out


def _known(value) -> float | None:
    """A finite number, or None (missing, NaN: a sweep from before it was recorded)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def running_median(values: Sequence[float]) -> list[float]:
    """Each value replaced by the median of itself and its neighbours (ends kept)."""
    if len(values) < 3:
        return list(values)
    return [values[0], *(median(values[i - 1:i + 2]) for i in range(1, len(values) - 1)),
            values[-1]]


def noise_scale(values: Sequence[float]) -> float:
    """Robust scale of a curve's epoch-to-epoch jitter: 1.48 x the median absolute
    residual from its 3-epoch running median (0 for a monotone curve)."""
    if len(values) < 3:
        return 0.0
    smooth = running_median(values)
    return 1.4826 * median(abs(v - m) for v, m in zip(values[1:-1], smooth[1:-1]))


def back_and_forth(values: Sequence[float]) -> float:
    """How far a positive curve goes back and forth per epoch, in log terms, beyond its
    net trend: (sum of |changes| - |net change|) / changes; 0 for a monotone curve."""
    if len(values) < 3 or min(values) <= 0:
        return 0.0
    changes = [math.log(b / a) for a, b in zip(values, values[1:])]
    return (sum(map(abs, changes)) - abs(sum(changes))) / len(changes)


@dataclass(frozen=True)
class Curves:
    epochs: list[int]
    train: list[float]
    val: list[float]
    acc: list[float]
    lr: list[float]
    start: float  # the untrained model's validation loss
    chance_loss: float
    chance_acc: float | None
    initial_acc: float | None
    planned: int | None  # config.epochs
    # a regression's R² against the training mean (0: no better than predicting the
    # mean, the chance level) and mean absolute error; NaN for a classification
    r2: list[float] = field(default_factory=list)
    mae: list[float] = field(default_factory=list)
    loss: str | None = None  # config.loss: "l1" grows with the error, not its square
    # why the trial ended (completed, early_stopping, scheduler, budget, error, diverged)
    stop_reason: str | None = None
    metric: str = "val_acc"  # the sweep's objective
    # losses that were not finite at an epoch and finite again later, read as missing
    # (their epochs are left out of every curve): `(name, epoch, value)`
    missing: tuple[tuple[str, int, float], ...] = ()
    # the training's own signals per epoch (trainable/signals.py), NaN where not measured
    # (every epoch of a sweep from before them, or of a loop without `trial.watch`): the
    # global gradient norm before clipping (mean, max), the update against the weights
    # ||dw||/||w|| (median), the first weight layer's gradient norm against the last's
    grad_norm: list[float] = field(default_factory=list)
    grad_norm_max: list[float] = field(default_factory=list)
    update_ratio: list[float] = field(default_factory=list)
    grad_norm_ratio: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.train)

    def missing_text(self) -> str:
        """What was read as missing, for the reason: empty when nothing was."""
        if not self.missing:
            return ""
        seen = [f"{name} {num(value)} at epoch {epoch}" for name, epoch, value in self.missing]
        shown = ", ".join(seen[:3]) + (f" and {len(seen) - 3} more" if len(seen) > 3 else "")
        return (f"{shown} read as missing, not as a divergence: finite again after it "
                f"(those epochs left out)")

    @property
    def third(self) -> int:
        return max(2, self.n // 3)

    @property
    def train_start(self) -> float:
        """Where the train loss started: its first epoch, or the untrained model's loss
        when the first epoch already fell below it (the untrained model's *train* loss is
        not measured; a later train loss above both is above anywhere the run began)."""
        return max(self.start, self.train[0])

    def lr_rose(self, a: int, b: int) -> bool:
        """Did the scheduled rate rise anywhere from index a to b (warmup, restarts,
        onecycle's ramp)? A rise of the loss then is not evidence against the rate."""
        lrs = [v for v in self.lr[max(a, 0):b + 1] if math.isfinite(v)]
        return any(later > earlier * 1.01 for earlier, later in zip(lrs, lrs[1:]))

    def decay(self) -> float:
        """How far the schedule had cut the rate by the end: its peak over its last value
        (1 for a constant rate or an unknown one)."""
        lrs = [v for v in self.lr if math.isfinite(v)]
        return max(lrs) / max(lrs[-1], 1e-300) if lrs else 1.0

    def last_at_full_rate(self) -> int | None:
        """The last epoch whose scheduled rate was still within RATE_CUT of its peak:
        where the schedule had not yet slowed the steps (None: no rate recorded)."""
        known = [(i, v) for i, v in enumerate(self.lr) if math.isfinite(v)]
        if not known:
            return None
        peak = max(v for _, v in known)
        return max(i for i, v in known if v * RATE_CUT >= peak)

    def upto(self, i: int) -> Curves:
        """The same trial as it stood at the end of epoch index i."""
        cut = slice(0, i + 1)
        return replace(self, epochs=self.epochs[cut], train=self.train[cut],
                       val=self.val[cut], acc=self.acc[cut], lr=self.lr[cut],
                       r2=self.r2[cut], mae=self.mae[cut], grad_norm=self.grad_norm[cut],
                       grad_norm_max=self.grad_norm_max[cut],
                       update_ratio=self.update_ratio[cut],
                       grad_norm_ratio=self.grad_norm_ratio[cut])

    def lr_text(self, a: int, b: int) -> str:
        lrs = [v for v in self.lr[a:b + 1] if math.isfinite(v)]
        if not lrs:
            return "an unknown lr"
        return f"lr {num(lrs[0])}" if max(lrs) <= min(lrs) * 1.01 else \
            f"lr {num(lrs[0])}->{num(lrs[-1])}"

    # -- the training's own signals ---------------------------------------------------

    def signal(self, values: Sequence[float], a: int = 0, b: int | None = None,
               full_rate: bool = False) -> float | None:
        """The median of a signal's measured (finite, positive) values over the epochs
        [a:b] (slice indices), only those at a rate within RATE_CUT of its peak when
        `full_rate` (a decayed rate takes small steps whatever the rate was); None where
        none was measured: a sweep from before the signals, a loop without
        `trial.watch`, a net too shallow for a gradient ratio. Every rule that reads a
        signal then stands aside, and the curves decide as they did before the signals."""
        peak = max((v for v in self.lr if math.isfinite(v)), default=math.nan)
        picked = [values[i] for i in range(len(values))[a:b]
                  if math.isfinite(values[i]) and values[i] > 0 and not (
                      full_rate and math.isfinite(self.lr[i]) and self.lr[i] * RATE_CUT < peak)]
        return median(picked) if picked else None

    def steps_text(self, update: float) -> str:
        return f"update ratio ||dw||/||w|| {num(update)} a step (about 1e-3 is a healthy rate)"

    # -- chance ---------------------------------------------------------------------

    def _acc_floor(self) -> float | None:
        if self.chance_acc is None:
            return None
        return self.chance_acc + CHANCE_MARGIN * (1 - self.chance_acc)

    def beat_chance_at(self, i: int) -> bool | None:
        """Did epoch i's validation score beat chance (a regression: R² above 0)?
        None: not known."""
        if self.regression:
            return self.r2[i] > R2_MARGIN if math.isfinite(self.r2[i]) else None
        floor = self._acc_floor()
        if floor is None or not math.isfinite(self.acc[i]):
            return None
        return self.acc[i] > floor

    def learned(self) -> bool | None:
        """Did validation accuracy ever beat chance (a regression: did R² ever exceed
        0)? None: not known."""
        known = [self.beat_chance_at(i) for i in range(self.n)]
        if all(k is None for k in known):
            return None
        return any(known)

    def fit_train(self, upto: int | None = None) -> bool:
        """Did the train loss (up to index `upto`) fall below the chance band? A model
        whose validation never beat chance has then still learnt its training set: what
        it learnt does not generalise (overfitting), the steps did not throw it about."""
        train = [v for v in self.train[:None if upto is None else upto + 1] if math.isfinite(v)]
        return bool(train) and min(train) < WELL_BELOW * self.chance_loss

    def at_chance_at(self, i: int) -> bool:
        """Epoch i's model is at (or below) the chance level: its score does not beat
        chance and its validation loss is back at the chance loss or above."""
        return self.beat_chance_at(i) is False and \
            self.val[i] >= (1 - NEAR_CHANCE) * self.chance_loss

    def score_text(self, i: int = -1) -> str:
        """Epoch i's validation score, in the task's own terms."""
        if not self.regression:
            return f"val_acc {num(self.acc[i])}"
        return f"val_r2 {num(self.r2[i])}"

    def chance_text(self) -> str:
        if self.regression:
            return "chance: R² 0"
        return f"chance {num(self.chance_acc)}" if self.chance_acc is not None else "chance"

    def never_beat_chance_text(self) -> str:
        scores = [v for v in (self.r2 if self.regression else self.acc) if math.isfinite(v)]
        best = num(max(scores)) if scores else "unknown"
        if not self.regression:
            return f"val_acc never beat chance (best {best}, chance {num(self.chance_acc)})"
        return (f"val_r2 never above 0 (by {num(R2_MARGIN)}), no better than predicting the "
                f"training mean (best {best})")

    def objective(self) -> tuple[bool, list[float], str]:
        """(is it a score, its values, its name): val_acc/val_r2, or a validation loss
        or error (the train loss can neither overfit nor tell generalisation apart)."""
        if self.metric == "val_acc":
            return True, self.acc, "val_acc"
        if self.metric == "val_r2":
            return True, self.r2, "val_r2"
        if self.metric == "val_mae":
            return False, self.mae, "val_mae"
        return False, self.val, "val loss"

    def unsure_loss(self) -> float:
        """What one example adds to the mean validation loss going from sure to unsure:
        for a classification, undecided between two classes, ln 2 (or the chance loss
        when that is lower, a skewed binary task); for a regression, the chance loss
        (the variance: R² lost)."""
        if self.classification:
            return min(self.chance_loss, math.log(2))
        return self.chance_loss

    def in_unsure(self, high: float, low: float) -> float:
        """A loss's fall from `high` to `low` in units of `unsure_loss`, the yardstick of
        what a change of the loss means whatever its level: for a classification, the
        share of the examples that would go from a coin flip to sure; for a regression,
        the R² gained (on the FAR_* scale of `share`: squared for an absolute-error loss).
        Not a share of the loss itself: near zero, a large share is a tiny change."""
        if self.classification:
            return (high - low) / self.unsure_loss()
        return self.share(high) - self.share(low)

    def gain_ahead(self, values: Sequence[float], pace: float) -> float:
        """What as many epochs again as the run had would take off a positive curve's
        level at its end at `pace` (per epoch, in log terms), in units of `unsure_loss`
        (`in_unsure`). Never more than the level itself: a loss already near zero has
        little left to gain however fast it still falls; a rising curve gains nothing
        (and a steep rise no overflow)."""
        end = self.level(values, -1)
        return self.in_unsure(end, end * math.exp(min(-pace * self.n, 0.0)))

    def unsure_text(self) -> str:
        if self.classification and math.log(2) < self.chance_loss:
            return "ln 2"
        return f"the chance loss {num(self.chance_loss)}"

    @property
    def classification(self) -> bool:
        return self.chance_acc is not None or any(math.isfinite(a) for a in self.acc)

    @property
    def regression(self) -> bool:
        return not any(math.isfinite(a) for a in self.acc) and \
            any(math.isfinite(r) for r in self.r2)

    # -- levels and falls -------------------------------------------------------------

    def level(self, values: Sequence[float], i: int) -> float:
        """A curve's level around index i: the median of it and its neighbours (the
        median of the last three at the end), so one noisy epoch does not move it."""
        i = i % len(values)
        if len(values) < MIN_JUDGE:
            return values[i]
        lo = min(max(i - 1, 0), len(values) - 3)
        return median(values[lo:lo + 3])

    @property
    def late(self) -> int:
        """The epochs at the end that say whether a curve still falls or has levelled:
        the last third, and no fewer than PLATEAU."""
        return max(self.third, PLATEAU)

    def late_fall(self, values: Sequence[float]) -> float:
        """How much a curve fell over the `late` epochs at the end (levels, not raw)."""
        return self.level(values, -self.late - 1) - self.level(values, -1)

    def new_ground(self, values: Sequence[float]) -> float:
        """How far the `late` epochs took a curve below the lowest it had been before them:
        a fall that only wins back a rise (the loss thrown up at a warm restart, coming
        down again) is no progress, and no sign that the run had further to go."""
        if len(values) <= self.late:
            return self.late_fall(values)
        return min(self.late_fall(values),
                   min(values[:-self.late]) - self.level(values, -1))

    def pace(self, values: Sequence[float]) -> float:
        """How fast a positive curve fell per epoch over the `late` epochs at the end, in
        log terms, between levels (0.01: 1% lower each epoch; negative when it rose)."""
        a, b = self.level(values, -self.late - 1), self.level(values, -1)
        return math.log(a / b) / self.late if a > 0 and b > 0 else 0.0

    @property
    def fall_top(self) -> float:
        """Where the train loss's fall is counted from: its start, or the chance loss
        when it started above it and ended below it. The way down to the chance loss is
        the class frequencies (a regression: the target's mean), which an output bias
        learns in a few steps at any rate, from far above on unscaled targets (an untrained
        regression here at 9x the chance loss); the task itself is learnt below it.
        Counted from above, a steady fall below the chance loss looks small (levelled)
        beside that first plunge."""
        if self.level(self.train, -1) < self.chance_loss:
            return min(self.train_start, self.chance_loss)
        return self.train_start

    def share(self, loss: float) -> float:
        """A loss as a share of the chance loss, on the scale the FAR_* thresholds are
        set in: squared for an absolute-error loss (l1). A squared error or a log loss
        measures how far a model is from perfect on that scale (1 - R² for the mean
        squared error); an absolute error is the square root of it in kind (for errors of
        one shape, the mean absolute error scales with their root mean square). Here two
        regressions of one quality, R² 0.81-0.82: the squared loss at 18% of its chance
        loss, the absolute one at 37% (0.37² = 14%)."""
        ratio = loss / self.chance_loss
        return ratio * abs(ratio) if self.loss == "l1" else ratio

    def fall_text(self) -> str:
        return "its fall" if self.fall_top == self.train_start else \
            "its fall below the chance loss"

    def fall(self) -> float:
        """How far the train loss fell from `fall_top` to its level at the end."""
        return self.fall_top - self.level(self.train, -1)

    def val_tracks(self) -> bool:
        """Over the last third, did the validation loss fall with the train loss? Yes
        also when the train loss gained less than FLAT on it (two flat curves), or did
        not fall at all (a train loss that stays put pulls away from nothing: here one
        stuck at 1.62-1.71 under a validation loss bouncing 1.1-1.27)."""
        train, val = self.late_fall(self.train), self.late_fall(self.val)
        return train <= 0 or val >= TRACKS * train or \
            train - val <= FLAT * self.level(self.val, -1)


def _positive(value) -> float | None:
    known = _known(value)
    return known if known is not None and known > 0 else None


def _recovered(history: Sequence[Mapping]) -> tuple[list[Mapping], tuple]:
    """The rows without the epochs whose train or validation loss was not finite (or
    missing) while a later epoch's was finite again, and what was left out. A NaN that
    recovers is no divergence: a loss a user's loop or a framework's callback could not
    compute at that epoch (Lightning reports a NaN train loss for an epoch it did not
    average). A loss that stays not finite to the end is what `_not_finite` reads."""
    columns = {"train loss": _column(history, "train_loss"),
               "val loss": _column(history, "val_loss")}
    dropped, missing = set(), []
    for name, values in columns.items():
        last_finite = max((i for i, v in enumerate(values) if math.isfinite(v)), default=-1)
        for i in range(last_finite):
            if not math.isfinite(values[i]):
                dropped.add(i)
                missing.append((name, int(history[i]["epoch"]), values[i]))
    missing.sort(key=lambda m: (m[1], m[0] != "train loss"))
    return [r for i, r in enumerate(history) if i not in dropped], tuple(missing)


def read_curves(history: Sequence[Mapping], trial: Mapping, metric: str = "val_acc") -> Curves:
    history, missing = _recovered(sorted(history, key=lambda r: r["epoch"]))
    train, val = _column(history, "train_loss"), _column(history, "val_loss")
    # the baselines are divisors: a loss of 0 (a constant target fitted exactly) is no
    # yardstick, as if it had not been measured
    start = _positive(trial.get("initial_val_loss"))
    if start is None:
        # not measured (a user's own loop, sweeps from before the untrained model was
        # evaluated): the higher of the first epoch's losses stands in for it; the first
        # val loss alone sits below the first epoch's mean train loss of any run that
        # learned within that epoch, and would read that fall as a blow-up
        firsts = [c[0] for c in (train, val) if c and math.isfinite(c[0]) and c[0] > 0]
        start = max(firsts) if firsts else 1.0
    chance = _positive(trial.get("chance_val_loss")) or start
    planned = _known(trial.get("config.epochs"))
    return Curves([int(r["epoch"]) for r in history], train, val, _column(history, "val_acc"),
                   _column(history, "lr"), start, chance, _known(trial.get("chance_val_acc")),
                   _known(trial.get("initial_val_acc")), int(planned) if planned else None,
                   _column(history, "val_r2"), _column(history, "val_mae"),
                   trial.get("config.loss") if isinstance(trial.get("config.loss"), str) else None,
                   trial.get("stop_reason"), metric, missing,
                   *(_column(history, name) for name in SIGNALS))
