"""What went wrong in a trial, read from its own curves (../shared/TUNING.md).

A pure function of the trial's history rows (per-epoch `train_loss`, `val_loss`,
`val_acc`, `lr`) and its trial row (`stop_reason`, the untrained model's
`initial_val_loss`/`initial_val_acc`, the chance level `chance_val_loss`/`chance_val_acc`,
`config.epochs`): no torch, no Ray, so `sweep report` diagnoses old sweeps again.

Labels, the first rule that fits wins:
  diverged      a loss is not finite, or the steps threw the loss above the untrained
                model's and validation accuracy never beat chance
  lr_too_high   the same with some learning; or a fall then a rise of the train loss that
                lasts to the end; or a validation loss that swings wildly at the end;
                in each case while the scheduled rate was not rising
  overfitting   the objective worsened beyond its noise for good, training loss falling
  too_short     stopped by the scheduler or the budget before a curve can be judged
  lr_too_low    it stalled high once the schedule had decayed the rate to almost nothing
  underfitting  the loss fell, then levelled off far above zero at a rate that still moves
                weights (a capacity limit)
  lr_too_low    the loss barely left its initial value; or a completed run still falling
                (or its objective still improving) far from converged
  healthy       none of the above

Every threshold is a named constant with the reason for its value. Train-loss rises are
compared with the *fall* the trial achieved (untrained loss minus its best), not with
their own level: a converged tail at 0.01 that jitters to 0.015 has risen 50% but undone
0.2% of the training, which is noise, not a rebound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median

LABELS = ("healthy", "diverged", "lr_too_high", "lr_too_low", "overfitting",
          "underfitting", "too_short")

# A first epoch's mean train loss this far above the untrained model's is a blow-up,
# unless the model at the end of that epoch is already below its start (a spike in the
# first steps that training recovered from within the epoch).
BLOWUP = 3.0
# After the first epoch, a train loss above the untrained model's by this much: the steps
# threw the weights somewhere worse than random (a healthy run never gets back there).
ABOVE_START = 1.05
# "Beat chance": best accuracy above max(chance, untrained) by this share of the headroom
# (1 - chance): 0.31 on ten balanced classes. Less is a broken model, not a weak one.
CHANCE_MARGIN = 0.25
# A rise is measured against the noise the curve itself shows: NOISE_K times a robust
# scale of its residuals from a 3-epoch running median (0 for a monotone curve) ...
NOISE_K = 3.0
# ... and must undo at least this share of the fall achieved so far (TUNING.md's example
# rises 0.7 after a fall of 1.4: half of it) ...
RISE_OF_FALL = 0.10
# ... and last to the end, for at least this many epochs (one bad epoch is noise) or
# for the last epoch alone when it undoes at least BIG_RISE of the fall.
PERSIST = 2
BIG_RISE = 0.30
# Unstable: over the last third of the epochs, the validation loss (one fixed data set,
# no dropout: it moves only when the weights do) goes back and forth by this much per
# epoch, in log terms, beyond its net trend (sum of |changes| - |net change|, per epoch:
# 0 for a curve that only falls or only rises). Here converged runs: 0-0.16; runs whose
# rate is too high: 0.27-0.67.
UNSTABLE = 0.2
# Overfitting: the objective's last PERSIST+1 epochs all worse than its (3-epoch median)
# best by this much: accuracy, absolute (2 points: 7 of 360 digits images) ...
OVERFIT_ACC_DROP = 0.02
# ... or a loss, by this share of its best (a sustained 10% is the model growing
# confident on what it gets wrong, not a wobble).
OVERFIT_LOSS_RISE = 0.10
# Fewer epochs cannot show a fall followed by a lasting rise or a levelling.
MIN_JUDGE = 5
# A trial the scheduler stopped before this share of its planned epochs is too short to
# judge unless something is already wrong (ASHA's rungs cut at 2, 6, 18 of 20 here).
JUDGE_SHARE = 0.5
# "Barely leaves its initial value": the best train loss is less than 5% below it.
BARELY_MOVED = 0.05
# Levelled off / still falling: the last third of the epochs brought less / at least this
# share of the whole fall (healthy runs here: 0-5%; slow ones 20-50%).
STILL_FALLING = 0.15
# Far from converged: a train loss above this share of the chance loss (runs that train
# well end near 0.1-3% of it).
FAR_FROM_ZERO = 0.05
# Far above what the data allows, for a loss that levelled off: above this share of the
# chance loss. Assumes labels that can be learned: with many wrong labels even a perfect
# model stays high (see README).
FAR_ABOVE = 0.25
# A schedule that decayed the rate by this factor has stopped training: a stall after it
# is the rate's doing, not the model's capacity.
DECAYED = 100.0


@dataclass(frozen=True)
class Diagnosis:
    label: str
    reason: str


def _g(value: float) -> str:
    return f"{value:.3g}"


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


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


@dataclass(frozen=True)
class _Curves:
    epochs: list[int]
    train: list[float]
    val: list[float]
    acc: list[float]
    lr: list[float]
    start: float  # the untrained model's loss
    chance_loss: float
    chance_acc: float | None
    initial_acc: float | None
    planned: int | None  # config.epochs

    @property
    def n(self) -> int:
        return len(self.train)

    @property
    def third(self) -> int:
        return max(2, self.n // 3)

    def lr_rose(self, a: int, b: int) -> bool:
        """Did the scheduled rate rise anywhere from index a to b (warmup, restarts,
        onecycle's ramp)? A rise of the loss then is not evidence against the rate."""
        lrs = [v for v in self.lr[max(a, 0):b + 1] if math.isfinite(v)]
        return any(later > earlier * 1.01 for earlier, later in zip(lrs, lrs[1:]))

    def lr_text(self, a: int, b: int) -> str:
        lrs = [v for v in self.lr[a:b + 1] if math.isfinite(v)]
        if not lrs:
            return "an unknown lr"
        return f"lr {_g(lrs[0])}" if max(lrs) <= min(lrs) * 1.01 else \
            f"lr {_g(lrs[0])}->{_g(lrs[-1])}"

    def learned(self) -> bool | None:
        """Did validation accuracy ever beat chance (None: not known)?"""
        accs = [a for a in self.acc if math.isfinite(a)]
        if not accs or self.chance_acc is None:
            return None
        floor = max(self.chance_acc, self.initial_acc or 0.0)
        return max(accs) > floor + CHANCE_MARGIN * (1 - self.chance_acc)

    def objective(self, metric: str) -> tuple[bool, list[float], str]:
        """(is it accuracy, its values, its name): val_acc, or the val loss for a loss
        metric (the train loss can neither overfit nor tell generalisation apart)."""
        if metric == "val_acc":
            return True, self.acc, "val_acc"
        return False, self.val, "val loss"

    def fall(self) -> float:
        return self.start - min(self.train)

    def late_fall(self) -> float:
        """How much the train loss fell over the last third of the epochs."""
        return max(self.train[-self.third - 1:]) - self.train[-1]


def _curves(history: Sequence[Mapping], trial: Mapping) -> _Curves:
    history = sorted(history, key=lambda r: r["epoch"])
    train, val = _column(history, "train_loss"), _column(history, "val_loss")
    start = _known(trial.get("initial_val_loss"))
    if start is None:  # sweeps from before the untrained model was evaluated
        start = next((v for v in val + train if math.isfinite(v)), 1.0)
    chance = _known(trial.get("chance_val_loss")) or start
    planned = _known(trial.get("config.epochs"))
    return _Curves([int(r["epoch"]) for r in history], train, val, _column(history, "val_acc"),
                   _column(history, "lr"), start, chance, _known(trial.get("chance_val_acc")),
                   _known(trial.get("initial_val_acc")), int(planned) if planned else None)


# -- the rules, in order ------------------------------------------------------------

def _not_finite(c: _Curves) -> Diagnosis | None:
    for name, values in (("train loss", c.train), ("val loss", c.val)):
        for i, value in enumerate(values):
            if not math.isfinite(value):
                return Diagnosis("diverged", f"{name} is {value} at epoch {c.epochs[i]} "
                                             f"({c.lr_text(i, i)})")
    return None


def _thrown_above_start(c: _Curves) -> Diagnosis | None:
    """The steps threw the loss above the untrained model's: diverged when the model
    never beat chance, else a rate too high that training partly recovered from."""
    found = None
    if c.train[0] > BLOWUP * c.start and c.val[0] >= c.start:
        found = (0, f"train loss {_g(c.train[0])} in epoch {c.epochs[0]}, "
                    f"{c.train[0] / c.start:.3g}x the untrained model's {_g(c.start)}")
    for i in range(1, c.n):
        if found:
            break
        if c.train[i] > ABOVE_START * c.start and not c.lr_rose(0, i):
            found = (i, f"train loss {_g(c.train[i])} at epoch {c.epochs[i]}, above the "
                        f"untrained model's {_g(c.start)}")
    if not found:
        return None
    i, what = found
    what += f" at {c.lr_text(i, i)}"
    if c.learned() is False:
        return Diagnosis("diverged", f"{what}; val_acc never beat chance (best "
                                     f"{_g(max(c.acc))}, chance {_g(c.chance_acc)})")
    return Diagnosis("lr_too_high", f"{what}; it recovered to {_g(min(c.train))}")


def _lasting_rise(c: _Curves) -> Diagnosis | None:
    """A fall, then a rise of the train loss beyond its noise that lasts to the end,
    while the rate did not rise."""
    # the last epochs above (best so far + tolerance), counted back from the end
    noise = noise_scale(c.train)
    run, top = 0, 0.0
    for i in range(c.n - 1, -1, -1):
        before = min(c.train[:i]) if i else c.train[0]
        tolerance = max(NOISE_K * noise, RISE_OF_FALL * (c.start - before))
        if i == 0 or c.train[i] <= before + tolerance:
            break
        run, top = run + 1, max(top, c.train[i])
    if not run:
        return None
    first = c.n - run
    best_i = min(range(first), key=c.train.__getitem__)
    best = c.train[best_i]
    undone = (top - best) / max(c.start - best, 1e-12)
    if (run < PERSIST and undone < BIG_RISE) or c.lr_rose(best_i, c.n - 1):
        return None
    return Diagnosis("lr_too_high", (
        f"train loss rose from {_g(best)} (epoch {c.epochs[best_i]}) to {_g(top)} and stayed "
        f"up to the end (epochs {c.epochs[first]}-{c.epochs[-1]}), undoing {_pct(undone)} of "
        f"its fall, at {c.lr_text(best_i, c.n - 1)}"))


def _unstable(c: _Curves) -> Diagnosis | None:
    """The validation loss swings from epoch to epoch over the last third of the run
    while the rate is not rising: steps too large to settle."""
    window = c.val[-max(3, c.third) - 1:]  # three changes at least
    if c.n < MIN_JUDGE or c.lr_rose(c.n - len(window), c.n - 1) or min(window) <= 0:
        return None
    changes = [math.log(b / a) for a, b in zip(window, window[1:])]
    back_and_forth = (sum(map(abs, changes)) - abs(sum(changes))) / len(changes)
    if back_and_forth <= UNSTABLE:
        return None
    return Diagnosis("lr_too_high", (
        f"val loss goes back and forth between {_g(min(window))} and {_g(max(window))} over "
        f"the last {len(changes)} epochs ({_pct(math.exp(back_and_forth) - 1)} per epoch "
        f"beyond its trend) at "
        f"{c.lr_text(c.n - len(window), c.n - 1)}"))


def _overfitting(c: _Curves, metric: str) -> Diagnosis | None:
    use_acc, values, name = c.objective(metric)
    if c.n < MIN_JUDGE or not all(math.isfinite(v) for v in values) or c.learned() is False:
        return None  # a model that never beat chance has nothing to overfit with
    badness = [-v for v in values] if use_acc else list(values)
    smooth = running_median(badness)  # a one-epoch lucky dip is not the best
    best_i = min(range(c.n), key=smooth.__getitem__)
    tail = PERSIST + 1
    if c.n - 1 - best_i < tail:
        return None
    best = smooth[best_i]
    floor = OVERFIT_ACC_DROP if use_acc else OVERFIT_LOSS_RISE * abs(best)
    tolerance = max(NOISE_K * noise_scale(values), floor)
    if not all(b - best > tolerance for b in badness[-tail:]):
        return None
    if not min(c.train[-tail:]) < c.train[best_i] or c.lr_rose(best_i, c.n - 1):
        return None
    worse = sum(badness[-tail:]) / tail - best
    size = (f"{_g(worse)} below" if use_acc else f"{_pct(worse / max(abs(best), 1e-12))} above")
    return Diagnosis("overfitting", (
        f"{name} {size} its best {_g(abs(best))} (epoch {c.epochs[best_i]}) over the last "
        f"{tail} epochs while train loss fell from {_g(c.train[best_i])} to {_g(c.train[-1])}"))


def _too_short(c: _Curves, stop_reason: str | None) -> Diagnosis | None:
    if stop_reason in ("completed", "early_stopping", "diverged"):
        return None
    enough = max(MIN_JUDGE, JUDGE_SHARE * c.planned if c.planned else MIN_JUDGE)
    if c.n >= enough:
        return None
    by = {"scheduler": "stopped by the scheduler", "budget": "stopped by the time budget",
          "error": "ended by an error"}.get(stop_reason or "", "not finished")
    of = f" of {c.planned}" if c.planned else ""
    return Diagnosis("too_short", (
        f"{by} after {c.n}{of} epochs, too few to judge (train loss {_g(c.start)} -> "
        f"{_g(c.train[-1])}, val_acc {_g(c.acc[-1])})"))


def _levelled_high(c: _Curves) -> bool:
    fall = c.fall()
    return (c.n >= MIN_JUDGE and fall > 0 and c.late_fall() < STILL_FALLING * fall
            and c.train[-1] > FAR_ABOVE * c.chance_loss)


def _decayed_stall(c: _Curves) -> Diagnosis | None:
    lrs = [v for v in c.lr if math.isfinite(v)]
    if not lrs or not _levelled_high(c) or lrs[-1] * DECAYED > max(lrs):
        return None
    return Diagnosis("lr_too_low", (
        f"train loss stalled at {_g(c.train[-1])} ({_pct(c.train[-1] / c.chance_loss)} of the "
        f"chance loss) once the schedule had decayed the rate "
        f"{max(lrs) / max(lrs[-1], 1e-300):.2g}x, to {_g(lrs[-1])}"))


def _underfitting(c: _Curves) -> Diagnosis | None:
    if not _levelled_high(c):
        return None
    return Diagnosis("underfitting", (
        f"train loss fell from {_g(c.start)} and levelled off at {_g(c.train[-1])} "
        f"({_pct(c.train[-1] / c.chance_loss)} of the chance loss; the last {c.third} epochs "
        f"brought {_pct(c.late_fall() / c.fall())} of its fall) at {c.lr_text(c.n - 1, c.n - 1)}"
        f": too little capacity for this data"))


def _lr_too_low(c: _Curves, completed: bool, metric: str) -> Diagnosis | None:
    fall = c.fall()
    if fall < BARELY_MOVED * c.start and c.n >= 2:
        return Diagnosis("lr_too_low", (
            f"train loss barely left the untrained model's {_g(c.start)}: best "
            f"{_g(min(c.train))} ({_pct(fall / c.start)} lower) in {c.n} epochs at "
            f"{c.lr_text(0, c.n - 1)}"))
    if not completed or c.n < MIN_JUDGE or c.train[-1] <= FAR_FROM_ZERO * c.chance_loss:
        return None
    total = c.start - c.train[-1]
    if total > 0 and c.late_fall() >= STILL_FALLING * total:
        return Diagnosis("lr_too_low", (
            f"train loss still falling steadily at the end: the last {c.third} epochs brought "
            f"{_pct(c.late_fall() / total)} of its fall, to {_g(c.train[-1])} "
            f"({_pct(c.train[-1] / c.chance_loss)} of the chance loss), at "
            f"{c.lr_text(c.n - 1, c.n - 1)}"))
    return _objective_still_improving(c, metric)


def _objective_still_improving(c: _Curves, metric: str) -> Diagnosis | None:
    """The objective's best is its last epoch (or the one before) and the last third of
    the run improved it beyond what counts as overfitting the other way."""
    use_acc, values, name = c.objective(metric)
    goodness = list(values) if use_acc else [-v for v in values]
    if not all(math.isfinite(v) for v in goodness):
        return None
    best_i = max(range(c.n), key=goodness.__getitem__)
    before = goodness[-c.third - 1]
    gain = goodness[best_i] - before
    needed = OVERFIT_ACC_DROP if use_acc else OVERFIT_LOSS_RISE * abs(before)
    if best_i < c.n - 2 or gain <= max(needed, NOISE_K * noise_scale(values)):
        return None
    return Diagnosis("lr_too_low", (
        f"{name} still improving at the end: {_g(values[-c.third - 1])} -> "
        f"{_g(values[best_i])} over the last {c.third} epochs, best at epoch "
        f"{c.epochs[best_i]}, train loss still {_g(c.train[-1])}, at "
        f"{c.lr_text(c.n - 1, c.n - 1)}"))


def _healthy(c: _Curves, metric: str, mode: str) -> Diagnosis:
    values = {"val_acc": c.acc, "val_loss": c.val, "train_loss": c.train}[metric]
    best = max(values) if mode == "max" else min(values)
    return Diagnosis("healthy", (
        f"{metric} best {_g(best)} at epoch {c.epochs[values.index(best)]}; train loss "
        f"{_g(c.start)} -> {_g(c.train[-1])}, levelled with no lasting rise"))


def diagnose(history: Sequence[Mapping], trial: Mapping, metric: str = "val_acc",
             mode: str = "max") -> Diagnosis:
    """The label of one trial (see the module docstring) and the numbers that decided it.

    `history`: the trial's rows (`epoch`, `train_loss`, `val_loss`, `val_acc`, `lr`);
    `trial`: its row (`stop_reason`, the baselines, `config.epochs`); `metric`/`mode`:
    the sweep's objective."""
    if not history:
        return Diagnosis("too_short", "no epoch finished")
    c = _curves(history, trial)
    stop_reason = trial.get("stop_reason")
    rules = (
        lambda: _not_finite(c),
        lambda: _thrown_above_start(c),
        lambda: _lasting_rise(c),
        lambda: _unstable(c),
        lambda: _overfitting(c, metric),
        lambda: _too_short(c, stop_reason),
        lambda: _decayed_stall(c),
        lambda: _underfitting(c),
        lambda: _lr_too_low(c, stop_reason == "completed", metric),
    )
    for rule in rules:
        found = rule()
        if found:
            return found
    return _healthy(c, metric, mode)
