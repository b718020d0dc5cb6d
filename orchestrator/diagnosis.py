"""What went wrong in a trial, read from its own curves (docs/tuning.md, docs/diagnosis.md).

A pure function of the trial's history rows (per-epoch `train_loss`, `val_loss`,
`val_acc`, or a regression's `val_r2`/`val_mae`, `lr`) and its trial row (`stop_reason`,
the untrained model's `initial_val_loss`/`initial_val_acc`, the chance level
`chance_val_loss`/`chance_val_acc`, `config.epochs`): no torch, no Ray, so `sweep report`
diagnoses old sweeps again.

Like is compared with like: a validation loss with the untrained model's validation loss
or the chance loss (both measured on the validation split), a train loss with the train
loss of earlier epochs. A train loss is a mean over an epoch of moving weights, with
dropout and batch statistics on; it may sit well above the validation loss of the same
model, so it is never read against a validation baseline.

Labels, the first rule that fits wins:
  diverged      a loss is not finite; or the steps threw the loss above where the run
                started (the first epoch's train loss 3x the untrained model's loss, or
                a validation loss above the untrained model's before the train loss had
                fallen below the chance loss, or a train loss above its own start, the
                curve staying up there) and validation never beat chance; or, for a model
                that never beat chance, a validation loss 3x the untrained model's over
                its last epochs
  lr_too_high   the same after some learning, or a spike above the start out of a loss
                that sits below it; or it learned, then collapsed to chance
                (whatever the schedule did then); or a train loss blown up 3x its start
                while the rate rose (a peak too high); or a fall then a lasting rise of
                the train loss; or a validation loss that swings at the end, with the
                train loss swinging too or by a good share of the chance loss, while the
                rate was not rising
  overfitting   the objective or the validation loss worse than its best beyond its noise
                for good, while the train loss keeps falling (also for a model that never
                beat chance on validation but fitted its training set below the chance loss)
  too_short     stopped by the scheduler or the budget before a curve can be judged
  lr_too_low    it stalled once the schedule had cut the rate tenfold or more
  lr_too_low /  never beat chance, the loss at the chance level or above: smooth curves
  lr_too_high   are a rate too small to move the weights; train and validation losses
                that both jump, or a fast move of either, a rate too large to learn (never
                a capacity limit: nothing shows one)
  underfitting  the validation loss fell well below chance, then train and validation
                levelled off together (over 3 epochs at least), both far above zero, at
                the same level, at a rate that still moves weights (its fall counted
                from the chance loss: the way down to it is the class frequencies,
                learnt by an output bias at any rate)
  lr_too_low    the loss barely left its start; or a run that completed (or was early
                stopped) still improving at its end (train and validation still falling,
                or the objective still rising), unless its schedule had cut the rate
                tenfold and its loss is low: that last gain is the annealing
  healthy       none of the above

Every threshold is a named constant with the reason for its value. Train-loss rises are
compared with the *fall* the trial achieved (its start minus its best), not with their
own level: a converged tail at 0.01 that jitters to 0.015 has risen 50% but undone 0.2%
of the training, which is noise, not a rebound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import median

LABELS = ("healthy", "diverged", "lr_too_high", "lr_too_low", "overfitting",
          "underfitting", "too_short")

# A first epoch's mean train loss this far above the untrained model's validation loss is
# a blow-up. The factor is large because the two are measured differently (a mean over
# moving weights with dropout on, against one model in eval mode): here a train loss up
# to 1.4x the untrained validation loss is an ordinary first epoch (unscaled features,
# dropout, batch norm). Past the first epoch a train loss is compared with train losses.
BLOWUP = 3.0
# ... unless the model at the end of that epoch learned something (a spike in the first
# steps that training recovered from within the epoch): its accuracy beats chance, or
# its validation loss is below the chance band (WELL_BELOW times the lower of the
# untrained model's and the chance loss), the same test as everywhere else. Predicting
# roughly the class frequencies, all a net killed by a blow-up still does, lands inside
# that band on either side of the chance loss (here 5% below it at val_acc 0.35 on three
# classes, chance 0.33), not on it.
# "Barely moved": less than 5% below where it started.
BARELY_MOVED = 0.05
# Thrown above the start: a train loss above its own start (its first epoch's, or the
# untrained model's validation loss when that is higher) by this much (5%: more than the
# epoch-to-epoch wobble of a model that is not learning), or for a model that never beat
# chance a validation loss above the untrained model's by as much, while the rate was not
# rising ...
ABOVE_START = 1.05
# ... and the train loss is not a smooth descent: some epoch rose by more than this share
# over the one before. Batch-norm statistics can lift the validation loss of a net whose
# rate is far too small to move it (here 2.31 -> 2.6 at Adam 1e-5 while the train loss
# fell 2.52 -> 2.49 without a single rise); thrown weights make the train loss jump.
SMOOTH_RISE = 0.005
# "Beat chance": accuracy above the chance accuracy (the majority class's share) by this
# share of the headroom (1 - chance): 0.33 on ten balanced classes, 0.5 on three. Less is
# a broken model, not a weak one. The untrained model's accuracy is no floor: it is
# chance plus luck (an untrained net at 0.45 on three classes would make a run that rose
# 0.41 -> 0.59 "never beat chance").
CHANCE_MARGIN = 0.25
# A regression beats chance (predicting the training mean: R² 0) with an R² above 0 by
# more than a constant prediction's wobble around the validation mean (within +-0.02
# here: the split means differ).
R2_MARGIN = 0.02
# At the chance level: a validation loss no more than this share below the chance loss
# (the loss of predicting the class frequencies, or the mean for a regression; an
# untrained model's sits at or above it). A model there that never beat chance is
# not learning; one below this band has learned something, which underfitting needs as
# evidence before it can blame capacity.
NEAR_CHANCE = 0.10
WELL_BELOW = 1 - NEAR_CHANCE
# Collapsed to chance: a model that beat chance back at the chance level, having lost at
# least this share of its best score's gain over chance (a weak model that hovers around
# the line between "beats chance" and not loses a few points, not half).
COLLAPSE = 0.5
# A rise is measured against the noise the curve itself shows: NOISE_K times a robust
# scale of its residuals from a 3-epoch running median (0 for a monotone curve) ...
NOISE_K = 3.0
# ... and must undo at least this share of the fall achieved so far (docs/tuning.md's example
# rises 0.7 after a fall of 1.4: half of it) ...
RISE_OF_FALL = 0.10
# ... and last to the end, for at least this many epochs (one bad epoch is noise) or
# for the last epoch alone when it undoes at least BIG_RISE of the fall.
PERSIST = 2
BIG_RISE = 0.30
# Unstable: over the last third of the epochs, the validation loss (one fixed data set,
# no dropout: it moves only when the weights do) goes back and forth by this much per
# epoch, in log terms, beyond its net trend (sum of |changes| - |net change|, per epoch:
# 0 for a curve that only falls or only rises). Here converged runs: 0-0.165; runs whose
# rate is too high: 0.195-0.67; the threshold sits between.
UNSTABLE = 0.18
# ... and the steps are what throws it: the train loss goes back and forth over the same
# epochs by UNSTABLE too (steps too large throw the weights, and so both curves: 0.19-1.05
# here), or the validation loss swings by this share of the chance loss per epoch beyond
# its trend (the size of the problem: 0.2 and more here at rates too large). A validation
# loss alone that bounces at a low level while the train loss falls smoothly is a sharp
# minimum seen through a small split, or batch-norm statistics: runs ending at val_acc 0.91-
# 0.98 with a smooth train loss bounce 0.07 <-> 0.18, which is 1-6% of the chance loss.
BOUNCE = 0.10
# Overfitting: the objective's last PERSIST+1 epochs all worse than its (3-epoch median)
# best by this much: accuracy, absolute (2 points: 7 of 360 digits images) ...
OVERFIT_ACC_DROP = 0.02
# ... or the validation loss, by this share of the chance loss. The validation loss is
# judged so even when the objective is accuracy: accuracy on a small split moves in steps
# and hides it. The chance loss, not the best loss, is the yardstick: the best loss sits
# wherever the task and its label noise put it, so a share of it is too eager at tiny
# losses (the quickstart's best trial, 0.0476 -> 0.053, is a 13% rise and 0.2% of the
# chance loss 2.30: 3 of 360 examples) and too lax at large ones. A rise of the mean loss
# by this share of the chance loss is what this share of the examples going back from
# sure to chance-level confidence adds (for a regression, R² lost); more than the
# OVERFIT_ACC_DROP of examples that must flip for accuracy, as a loss moves with
# confidence before any prediction flips. Here healthy runs rise at most 2.1% of it (a
# binary task, 0.138 -> 0.153), overfitting ones 3.6% and more.
OVERFIT_LOSS_FLOOR = 0.03
# A validation error with no chance level (val_mae) overfits by this share of its best
# (a sustained 10% is the model growing confident on what it gets wrong, not a wobble);
# a loss or error still improving at the end gained this share of its level (tiny losses
# are not judged so: FAR_FROM_ZERO).
OVERFIT_LOSS_RISE = 0.10
# Fewer epochs cannot show a fall followed by a lasting rise or a levelling.
MIN_JUDGE = 5
# A trial the scheduler stopped before this share of its planned epochs is too short to
# judge unless something is already wrong (ASHA's rungs cut at 2, 6, 18 of 20 here).
JUDGE_SHARE = 0.5
# Not learning at a rate too large: at the chance level, the train loss (after the first
# epoch) and the validation loss both jump back and forth by more than this per epoch, in
# log terms beyond their trend. Either can jitter at any rate for a reason of its own:
# the train loss is a mean over an epoch of fresh dropout masks (0.0013 at dropout 0.5
# and lr 3e-4 here, while its validation loss fell without a single rise), the validation
# loss moves with batch-norm statistics (0.002 at a rate far too small, its train loss
# smooth). Steps too large throw the weights, and so both curves: the smaller of the two
# is 0.0016-0.6 here at rates too large, 0-0.00001 at rates too small.
JUMPY = 0.001
# ... or, for a validation loss that ended at the chance level, some epoch moved it by
# this share or more on its way (a rate that moves the loss that far in one epoch is
# not too small to learn: it found the class frequencies and nothing else; the runs here
# that do not learn at a tiny rate move it at most 6%, batch norm included; too large
# ones 20-100%). A loss still far above chance that falls fast is a slow start, not this.
FAST_MOVE = 0.25
# ... or the train loss moved by this share in one epoch (its first epoch's mean against
# its second's, mostly: steps that threw the weights within the first epoch, then the
# output bias found the class frequencies). A rate too small to learn moves its train
# loss as little as its weights: at most 5% per epoch here (dropout and batch norm
# included, no batch-norm lag as in the validation loss); rates too large 10-31%.
FAST_TRAIN_MOVE = 0.08
# Levelled off / still falling: the last third of the epochs brought less / at least this
# share of the whole fall (healthy runs here: 0-5%; slow ones 20-50%). A run planned for
# fewer than MIN_JUDGE epochs is judged by its last epoch alone.
STILL_FALLING = 0.15
# A stall is claimed (underfitting, a rate decayed too far) only over at least this many
# epochs, as a lasting rise is (PERSIST + 1): the last third of a run of 6-8 epochs is
# two epochs, whose 3-epoch medians lie one epoch apart, and one epoch that fell less
# than 15% of the fall is no plateau (an 8-epoch CNN still falling 0.05-0.07 an epoch,
# read as a capacity limit).
PLATEAU = PERSIST + 1
# The validation loss falls *with* the train loss over the last third when it falls by
# at least this share of the train loss's fall. A capacity limit levels both together; a
# model whose train loss keeps falling while validation stays put is fitting its training
# set beyond what generalises (it has capacity to spare, and more epochs would not help).
TRACKS = 0.5
# ... or when the train loss gained less than this share of the validation loss's level
# on it: two flat curves move together within the noise of their 3-epoch medians; a
# train loss pulling away from a flat validation loss gained 6-8% of it in the runs here.
FLAT = 0.02
# A capacity limit leaves the model unable to fit its own training set any better than
# the validation set: the two losses level off together. A train loss levelled below the
# validation loss by more than this share of the chance loss fits the training set beyond
# what generalises, which takes capacity to spare (here capacity limits end 0-5% of the
# chance loss apart; a regression with outliers whose train loss levels at half its
# validation loss, 16-33%; a table net still gaining, 9%).
UNDERFIT_GAP = 0.07
# Far from converged: a train loss above this share of the chance loss (runs that train
# well end near 0.1-3% of it).
FAR_FROM_ZERO = 0.05
# Far above what the data allows, for a loss that levelled off: above this share of the
# chance loss. Assumes labels that can be learned: with many wrong labels even a perfect
# model stays high (see docs/diagnosis.md). The chance loss depends only on the class
# frequencies (or the target's spread), which the splits share: a fair yardstick for a
# train loss too, unlike the untrained model's validation loss. A capacity limit needs
# both losses up there: a validation loss (the model in eval mode) below it shows the
# capacity was there and dropout or noise holds the train loss up (here a CNN at val_acc
# 0.94, its validation loss at 14% of the chance loss, its train loss at 31%; capacity
# limits end with the validation loss at 34-85%). An absolute-error loss is squared
# first (`_Curves.share`).
FAR_ABOVE = 0.25
# A schedule that decayed the rate by this factor has slowed the weights as much: a stall
# after it is the rate's doing, not evidence of the model's capacity. Tenfold, one step of
# docs/tuning.md's step decay: a steady fall slowed ten times brings its last third under
# STILL_FALLING of the fall, so it looks "levelled" whatever the capacity (here a ResNet
# at peak lr 1e-3 stalls at 87% of the chance loss as cosine takes the rate 33x down).
# The other way round, a run whose schedule decayed the rate as much and whose validation
# loss got within FAR_ABOVE of zero is not too slow for still gaining at its end: that is
# the annealing (a one-cycle ResNet at 5.5% of the chance loss gaining 0.29 -> 0.13 as the
# rate falls 8x in its last two epochs; the runs here too slow under a decayed schedule
# end at 67-88% of the chance loss).
DECAYED = 10.0


@dataclass(frozen=True)
class Diagnosis:
    label: str
    reason: str


def _g(value: float) -> str:
    return f"{value:.3g}"


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _share(value: float) -> str:
    """A ratio as a percentage, or as a multiple when it is large."""
    return _pct(value) if value < 10 else f"{value:.3g}x"


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
class _Curves:
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

    @property
    def n(self) -> int:
        return len(self.train)

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

    def lr_text(self, a: int, b: int) -> str:
        lrs = [v for v in self.lr[a:b + 1] if math.isfinite(v)]
        if not lrs:
            return "an unknown lr"
        return f"lr {_g(lrs[0])}" if max(lrs) <= min(lrs) * 1.01 else \
            f"lr {_g(lrs[0])}->{_g(lrs[-1])}"

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
            return f"val_acc {_g(self.acc[i])}"
        return f"val_r2 {_g(self.r2[i])}"

    def chance_text(self) -> str:
        if self.regression:
            return "chance: R² 0"
        return f"chance {_g(self.chance_acc)}" if self.chance_acc is not None else "chance"

    def never_beat_chance_text(self) -> str:
        scores = [v for v in (self.r2 if self.regression else self.acc) if math.isfinite(v)]
        best = _g(max(scores)) if scores else "unknown"
        if not self.regression:
            return f"val_acc never beat chance (best {best}, chance {_g(self.chance_acc)})"
        return (f"val_r2 never above 0 (by {_g(R2_MARGIN)}), no better than predicting the "
                f"training mean (best {best})")

    def objective(self, metric: str) -> tuple[bool, list[float], str]:
        """(is it a score, its values, its name): val_acc/val_r2, or a validation loss
        or error (the train loss can neither overfit nor tell generalisation apart)."""
        if metric == "val_acc":
            return True, self.acc, "val_acc"
        if metric == "val_r2":
            return True, self.r2, "val_r2"
        if metric == "val_mae":
            return False, self.mae, "val_mae"
        return False, self.val, "val loss"

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


def _curves(history: Sequence[Mapping], trial: Mapping) -> _Curves:
    history = sorted(history, key=lambda r: r["epoch"])
    train, val = _column(history, "train_loss"), _column(history, "val_loss")
    start = _known(trial.get("initial_val_loss"))
    if start is None:
        # not measured (a user's own loop, sweeps from before the untrained model was
        # evaluated): the higher of the first epoch's losses stands in for it; the first
        # val loss alone sits below the first epoch's mean train loss of any run that
        # learned within that epoch, and would read that fall as a blow-up
        firsts = [c[0] for c in (train, val) if c and math.isfinite(c[0])]
        start = max(firsts) if firsts else 1.0
    chance = _known(trial.get("chance_val_loss")) or start
    planned = _known(trial.get("config.epochs"))
    return _Curves([int(r["epoch"]) for r in history], train, val, _column(history, "val_acc"),
                   _column(history, "lr"), start, chance, _known(trial.get("chance_val_acc")),
                   _known(trial.get("initial_val_acc")), int(planned) if planned else None,
                   _column(history, "val_r2"), _column(history, "val_mae"),
                   trial.get("config.loss") if isinstance(trial.get("config.loss"), str) else None)


# -- the rules, in order ------------------------------------------------------------

def _not_finite(c: _Curves) -> Diagnosis | None:
    for name, values in (("train loss", c.train), ("val loss", c.val)):
        for i, value in enumerate(values):
            if not math.isfinite(value):
                return Diagnosis("diverged", f"{name} is {value} at epoch {c.epochs[i]} "
                                             f"({c.lr_text(i, i)})")
    return None


def _thrown(c: _Curves, i: int, what: str, stayed: Sequence[float] | None = None,
            above: float = 0.0) -> Diagnosis:
    """Thrown above where it started at epoch i: diverged for a model that never beat
    chance, unless the curve that was thrown (`stayed`, from epoch i on) then sat below
    `above` for most of the run: a one-epoch spike out of a loss bouncing around a lower
    level is a rate too large to learn, not a divergence."""
    what += f" at {c.lr_text(i, i)}"
    if c.learned() is False:
        if stayed is not None and median(stayed[i:]) < above:
            return Diagnosis("lr_too_high", (
                f"{what}, but mostly back below it (median {_g(median(stayed[i:]))} from "
                f"then on); {c.never_beat_chance_text()}: steps too large to learn"))
        return Diagnosis("diverged", f"{what}; {c.never_beat_chance_text()}")
    best = min(c.val)
    return Diagnosis("lr_too_high", f"{what}; it recovered to a val loss of {_g(best)}")


def _blown_up(c: _Curves) -> Diagnosis | None:
    """The first epoch's train loss far above the untrained model's loss, and the model
    at the end of that epoch no better than untrained."""
    if not c.train[0] > BLOWUP * c.start:
        return None
    if c.val[0] < WELL_BELOW * min(c.start, c.chance_loss) or c.beat_chance_at(0):
        return None  # a spike in the first steps, recovered within the epoch
    return _thrown(c, 0, f"train loss {_g(c.train[0])} in epoch {c.epochs[0]}, "
                         f"{c.train[0] / c.start:.3g}x the untrained model's {_g(c.start)}")


def _thrown_above_start(c: _Curves) -> Diagnosis | None:
    """The steps threw the model above where it started: a train loss above its own
    start, or (for a model that never beat chance) a validation loss above the untrained
    model's, while the rate was not rising, and a train loss that jumps (not a smooth
    descent)."""
    if not any(b > a * (1 + SMOOTH_RISE) for a, b in zip(c.train, c.train[1:])):
        return None
    for i in range(c.n):
        if c.lr_rose(0, i):
            return None
        # a model that learned also lifts its validation loss above the start when it
        # overfits (or, in its first epoch, when batch-norm statistics lag): then only its
        # train loss tells; so does one that never beat chance on validation but had
        # fitted its training set below the chance loss by then (it overfits from the start)
        if c.val[i] > ABOVE_START * c.start and c.learned() is False and not c.fit_train(i):
            return _thrown(c, i, f"val loss {_g(c.val[i])} at epoch {c.epochs[i]}, above "
                                 f"the untrained model's {_g(c.start)}", c.val, c.start)
        if i and c.train[i] > ABOVE_START * c.train_start:
            return _thrown(c, i, f"train loss {_g(c.train[i])} at epoch {c.epochs[i]}, "
                                 f"above its start {_g(c.train_start)}", c.train, c.train_start)
    return None


def _blown_up_at_a_peak(c: _Curves) -> Diagnosis | None:
    """While the schedule raised the rate (warmup, a one-cycle peak, a warm restart), the
    train loss thrown BLOWUP times above where the run started: a rising rate excuses a
    rise, not a blow-up; the peak is too high, whatever the run recovered to afterwards.
    The train loss, not the validation loss: batch-norm statistics that lag behind a
    rising rate lift a validation loss 3x for an epoch while the train loss falls."""
    for i in range(1, c.n):
        if c.lr_rose(i - 1, i) and c.train[i] > BLOWUP * c.train_start:
            return _thrown(c, i, f"train loss {_g(c.train[i])} at epoch {c.epochs[i]} as the "
                                 f"rate rose, {c.train[i] / c.train_start:.3g}x its start "
                                 f"{_g(c.train_start)}")
    return None


def _thrown_for_good(c: _Curves) -> Diagnosis | None:
    """A model that never beat chance whose validation loss sat BLOWUP times above the
    untrained model's for its last PERSIST epochs: the steps threw the weights, whatever
    the train loss (a mean over moving weights) and the rate did. Batch-norm statistics
    lagging behind a rising rate lift a validation loss for an epoch, not to the end."""
    if c.learned() is not False or c.n < PERSIST:
        return None
    top = BLOWUP * max(c.start, c.chance_loss)
    if not all(v > top for v in c.val[-PERSIST:]):
        return None
    i = c.n - PERSIST
    return _thrown(c, i, (
        f"val loss {_g(c.val[i])} at epoch {c.epochs[i]} and {_g(c.val[-1])} at the end, "
        f"{c.val[-1] / c.start:.3g}x the untrained model's {_g(c.start)}"))


def _collapsed(c: _Curves) -> Diagnosis | None:
    """It learned, then fell back to the chance level: the steps threw away what it had
    learned. Whatever the schedule did then (a one-cycle peak, a warm restart) and
    whatever follows (a flat loss at chance after it is no capacity limit)."""
    first = next((i for i in range(c.n) if c.beat_chance_at(i)), None)
    if first is None:
        return None
    score = c.r2 if c.regression else c.acc
    chance = 0.0 if c.regression else c.chance_acc
    best_i = first

    def down(j: int) -> bool:
        """Back at chance, having lost at least COLLAPSE of the best's gain over chance
        (a weak model that hovers around the chance line does not collapse)."""
        return c.at_chance_at(j) and \
            score[j] - chance <= (1 - COLLAPSE) * (score[best_i] - chance)

    for i in range(first + 1, c.n):
        run = 0
        while i + run < c.n and down(i + run):
            run += 1
        if run >= PERSIST or (run and i + run == c.n):
            j = i + run - 1
            return Diagnosis("lr_too_high", (
                f"learned to {c.score_text(best_i)} (epoch {c.epochs[best_i]}), then "
                f"collapsed to chance at epoch {c.epochs[i]}: {c.score_text(i)}, val loss "
                f"{_g(c.val[i])} (chance loss {_g(c.chance_loss)}; {c.chance_text()}), "
                f"still there at epoch {c.epochs[j]}, at {c.lr_text(i, i)}"))
        if math.isfinite(score[i]) and score[i] > score[best_i]:
            best_i = i
    return None


def _lasting_rise(c: _Curves) -> Diagnosis | None:
    """A fall, then a rise of the train loss beyond its noise that lasts to the end,
    while the rate did not rise."""
    # the last epochs above (best so far + tolerance), counted back from the end
    noise = noise_scale(c.train)
    top_start = c.train_start
    run, top = 0, 0.0
    for i in range(c.n - 1, -1, -1):
        before = min(c.train[:i]) if i else c.train[0]
        tolerance = max(NOISE_K * noise, RISE_OF_FALL * (top_start - before))
        if i == 0 or c.train[i] <= before + tolerance:
            break
        run, top = run + 1, max(top, c.train[i])
    if not run:
        return None
    first = c.n - run
    best_i = min(range(first), key=c.train.__getitem__)
    best = c.train[best_i]
    if best > (1 - BARELY_MOVED) * top_start:
        return None  # no fall to undo
    undone = (top - best) / max(top_start - best, 1e-12)
    if (run < PERSIST and undone < BIG_RISE) or c.lr_rose(best_i, c.n - 1):
        return None
    return Diagnosis("lr_too_high", (
        f"train loss rose from {_g(best)} (epoch {c.epochs[best_i]}) to {_g(top)} and stayed "
        f"up to the end (epochs {c.epochs[first]}-{c.epochs[-1]}), undoing {_pct(undone)} of "
        f"its fall, at {c.lr_text(best_i, c.n - 1)}"))


def _unstable(c: _Curves) -> Diagnosis | None:
    """The validation loss swings from epoch to epoch over the last third of the run
    while the rate is not rising: steps too large to settle."""
    window = c.val[-c.late - 1:]  # three changes at least
    if c.n < MIN_JUDGE or c.lr_rose(c.n - len(window), c.n - 1) or min(window) <= 0:
        return None
    swing = back_and_forth(window)
    if swing <= UNSTABLE:
        return None
    train_swing = back_and_forth(c.train[-len(window):])
    changes = [b - a for a, b in zip(window, window[1:])]
    bounce = (sum(map(abs, changes)) - abs(sum(changes))) / len(changes) / c.chance_loss
    if train_swing <= UNSTABLE and bounce <= BOUNCE:
        return None  # the train loss falls smoothly and the bounce is small for the task
    return Diagnosis("lr_too_high", (
        f"val loss goes back and forth between {_g(min(window))} and {_g(max(window))} over "
        f"the last {len(window) - 1} epochs ({_pct(math.exp(swing) - 1)} per epoch "
        f"beyond its trend, {_share(bounce)} of the chance loss {_g(c.chance_loss)}; the "
        f"train loss {_pct(math.exp(train_swing) - 1)}) at "
        f"{c.lr_text(c.n - len(window), c.n - 1)}"))


def _worse_for_good(c: _Curves, values: Sequence[float], use_score: bool, name: str
                    ) -> Diagnosis | None:
    """One curve worse than its best beyond its noise over the last PERSIST+1 epochs,
    while the train loss kept falling and the rate did not rise."""
    badness = [-v for v in values] if use_score else list(values)
    smooth = running_median(badness)  # a one-epoch lucky dip is not the best
    best_i = min(range(c.n), key=smooth.__getitem__)
    tail = PERSIST + 1
    if c.n - 1 - best_i < tail:
        return None
    best = smooth[best_i]
    if use_score:
        floor = OVERFIT_ACC_DROP
    elif values is c.val:
        floor = OVERFIT_LOSS_FLOOR * c.chance_loss
    else:  # a validation error with no chance level recorded (val_mae)
        floor = OVERFIT_LOSS_RISE * abs(best)
    if not all(b - best > floor for b in badness[-tail:]):
        return None
    # the mean of the tail against the noise of one epoch, shrunk by averaging
    worse = sum(badness[-tail:]) / tail - best
    if worse <= NOISE_K * noise_scale(values) / math.sqrt(tail):
        return None
    if not min(c.train[-tail:]) < c.train[best_i] or c.lr_rose(best_i, c.n - 1):
        return None
    size = (f"{_g(worse)} below" if use_score else f"{_pct(worse / max(abs(best), 1e-12))} above")
    where = f"epoch {c.epochs[best_i]}"
    if values is c.val:
        where += f"; the rise {_pct(worse / c.chance_loss)} of the chance loss {_g(c.chance_loss)}"
    return Diagnosis("overfitting", (
        f"{name} {size} its best {_g(abs(best))} ({where}) over the last "
        f"{tail} epochs, {_g(values[-1])} at the end, while train loss fell from "
        f"{_g(c.train[best_i])} to {_g(c.train[-1])}"))


def _overfitting(c: _Curves, metric: str) -> Diagnosis | None:
    if c.n < MIN_JUDGE or (c.learned() is False and not c.fit_train()):
        return None  # a model that learnt nothing, not even its training set, cannot overfit
    use_score, values, name = c.objective(metric)
    candidates = [(use_score, values, name)]
    if name != "val loss":
        candidates.append((False, c.val, "val loss"))
    for use_score, values, name in candidates:
        if all(math.isfinite(v) for v in values):
            found = _worse_for_good(c, values, use_score, name)
            if found:
                return found
    return None


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
        f"{by} after {c.n}{of} epochs, too few to judge (val loss {_g(c.start)} -> "
        f"{_g(c.val[-1])}, {c.score_text()})"))


def _levelled(c: _Curves) -> bool:
    fall = c.fall()
    return c.n >= MIN_JUDGE and fall > 0 and c.late_fall(c.train) < STILL_FALLING * fall


def _decayed_stall(c: _Curves) -> Diagnosis | None:
    if c.decay() < DECAYED:
        return None
    if not (_levelled(c) and c.share(c.train[-1]) > FAR_ABOVE):
        return None
    return Diagnosis("lr_too_low", (
        f"train loss stalled at {_g(c.train[-1])} (val loss {_pct(c.val[-1] / c.chance_loss)} "
        f"of the chance loss) once the schedule had decayed the rate {c.decay():.2g}x, to "
        f"{c.lr_text(c.n - 1, c.n - 1)}"))


def _not_learning(c: _Curves) -> Diagnosis | None:
    """Never beat chance, the validation loss never well below the chance loss: the rate
    is the suspect, never the capacity. Which way: a rate too small moves the losses
    smoothly and slowly; one too large moves them fast or makes them jump."""
    if c.n < 2 or c.learned() or min(c.val) < (1 - NEAR_CHANCE) * c.chance_loss:
        return None
    if c.learned() is None and min(c.val) < (1 - BARELY_MOVED) * c.start:
        return None  # no score to judge by and the loss moved: leave it to the others
    level = f"val loss {_g(c.val[-1])}, {_share(c.val[-1] / c.chance_loss)} of the chance loss"
    score = c.never_beat_chance_text() if c.learned() is False else "no score to judge by"
    # jumps at the chance level (the train loss after the first epoch's descent), in both
    # curves: dropout jitters the one and batch-norm statistics the other at any rate
    jumps = min(back_and_forth(c.train[1:]), back_and_forth(c.val))
    moves = [abs(math.log(b / a)) for a, b in zip([c.start, *c.val], c.val) if a > 0 and b > 0]
    fast = max(moves, default=0.0)
    if jumps > JUMPY:
        return Diagnosis("lr_too_high", (
            f"not learning: {level}, {score}; train and val losses jump back and forth "
            f"({100 * (math.exp(jumps) - 1):.2g}% per epoch or more beyond their trend) at "
            f"{c.lr_text(0, c.n - 1)}: steps too large to learn"))
    at_chance = abs(c.level(c.val, -1) / c.chance_loss - 1) <= NEAR_CHANCE
    if at_chance and fast >= -math.log(1 - FAST_MOVE):
        return Diagnosis("lr_too_high", (
            f"not learning: {level}, {score}; yet one epoch moved the val loss "
            f"{_pct(1 - math.exp(-fast))} at {c.lr_text(0, c.n - 1)}: steps too large to "
            f"learn, not too small"))
    # a fall from the untrained model's loss down to the chance loss is an output bias
    # learning the class frequencies, fast at any rate (0.605 -> 0.47 in one epoch at
    # Adam 1e-3 on an 89/11 table, chance 0.353): no evidence of steps too large
    train_moves = [0.0 if a <= 0 or b <= 0 or c.chance_loss <= b < a <= c.start
                   else abs(math.log(b / a)) for a, b in zip(c.train, c.train[1:])]
    i = max(range(len(train_moves)), key=train_moves.__getitem__, default=None)
    if at_chance and i is not None and train_moves[i] >= -math.log(1 - FAST_TRAIN_MOVE):
        return Diagnosis("lr_too_high", (
            f"not learning: {level}, {score}; yet the train loss moved "
            f"{_g(c.train[i])} -> {_g(c.train[i + 1])} in one epoch (epoch {c.epochs[i + 1]}) "
            f"at {c.lr_text(0, c.n - 1)}: steps too large to learn, not too small"))
    return Diagnosis("lr_too_low", (
        f"not learning: {level}, {score}; a smooth, slow curve (train loss "
        f"{_g(c.train[0])} -> {_g(c.train[-1])}) at {c.lr_text(0, c.n - 1)}"))


def _underfitting(c: _Curves) -> Diagnosis | None:
    """Evidence of a capacity limit: the model learned (validation well below chance),
    then train and validation levelled off together far above zero, at a rate that
    still moves weights (a decayed rate was caught before)."""
    if not _levelled(c) or c.share(c.level(c.train, -1)) <= FAR_ABOVE:
        return None
    val_end = c.level(c.val, -1)
    if val_end > WELL_BELOW * c.chance_loss or not c.val_tracks():
        return None
    if c.share(val_end) <= FAR_ABOVE:
        return None  # the model itself (eval mode) is near what the data allows: no limit
    if val_end - c.level(c.train, -1) > UNDERFIT_GAP * c.chance_loss:
        return None  # it fits its training set better than it generalises: not capacity
    return Diagnosis("underfitting", (
        f"train loss fell from {_g(c.train_start)} and levelled off at {_g(c.train[-1])} "
        f"({_pct(c.train[-1] / c.chance_loss)} of the chance loss; the last {c.late} epochs "
        f"brought {_pct(c.late_fall(c.train) / c.fall())} of {c.fall_text()}), val loss with "
        f"it at {_g(c.val[-1])} ({_pct(val_end / c.chance_loss)} of chance), at "
        f"{c.lr_text(c.n - 1, c.n - 1)}: too little capacity for this data"))


def _lr_too_low(c: _Curves, ran_its_course: bool, metric: str) -> Diagnosis | None:
    """Barely moved; or a run that ran its course (completed, or ended by early stopping:
    a stopper fooled by a noisy objective while both losses still fall, as in a deep tanh
    net whose train loss fell 2.21 -> 2.03 in its last 5 epochs, ended a run that had far
    to go; a
    scheduler's cut is too_short's to judge) still improving at its end, unless that is
    the annealing of a decayed schedule."""
    fall = c.train_start - min(c.train)
    if fall < BARELY_MOVED * c.train_start and c.start - min(c.val) < BARELY_MOVED * c.start \
            and c.n >= 2:
        return Diagnosis("lr_too_low", (
            f"train loss barely left its start {_g(c.train_start)}: best {_g(min(c.train))} "
            f"({_pct(fall / c.train_start)} lower; val loss {_g(c.start)} -> "
            f"{_g(min(c.val))}) in {c.n} epochs at {c.lr_text(0, c.n - 1)}"))
    if not ran_its_course or _annealed(c):
        return None
    if c.n < MIN_JUDGE:
        return _short_still_improving(c)
    if c.share(c.train[-1]) <= FAR_FROM_ZERO:
        return None
    total = c.fall()
    if total > 0 and c.late_fall(c.train) >= STILL_FALLING * total and c.val_tracks():
        return Diagnosis("lr_too_low", (
            f"train loss still falling steadily at the end: the last {c.late} epochs brought "
            f"{_pct(c.late_fall(c.train) / total)} of {c.fall_text()}, to {_g(c.train[-1])} "
            f"({_pct(c.train[-1] / c.chance_loss)} of the chance loss), val loss with it "
            f"{_g(c.level(c.val, -c.late - 1))} -> {_g(c.val[-1])}, at "
            f"{c.lr_text(c.n - 1, c.n - 1)}"))
    return _objective_still_improving(c, metric)


def _annealed(c: _Curves) -> bool:
    """A run whose schedule had cut the rate DECAYED-fold by its end, its validation loss
    within FAR_ABOVE of zero: a gain in its last epochs is the annealing (smaller steps
    settle into the minimum they found), not a rate too small to get there."""
    return c.decay() >= DECAYED and c.share(c.level(c.val, -1)) <= FAR_ABOVE


def _short_still_improving(c: _Curves) -> Diagnosis | None:
    """A run planned for fewer than MIN_JUDGE epochs whose last epoch still
    brought a good share of the validation loss's fall: it stopped mid-descent."""
    if c.n < 2:
        return None
    val_fall = c.start - c.val[-1]
    last = c.val[-2] - c.val[-1]
    if val_fall <= 0 or last < STILL_FALLING * val_fall or c.train[-1] >= c.train[-2]:
        return None
    return Diagnosis("lr_too_low", (
        f"still improving fast when its {c.n} planned epochs ran out: the last epoch "
        f"brought {_pct(last / val_fall)} of the val loss's fall ({_g(c.val[-2])} -> "
        f"{_g(c.val[-1])}, {c.score_text(-2)} -> {_g((c.r2 if c.regression else c.acc)[-1])}), "
        f"at {c.lr_text(c.n - 1, c.n - 1)}"))


def _objective_still_improving(c: _Curves, metric: str) -> Diagnosis | None:
    """The objective's best is its last epoch (or the one before) and the last third of
    the run improved it beyond what counts as overfitting the other way."""
    use_score, values, name = c.objective(metric)
    goodness = list(values) if use_score else [-v for v in values]
    if not all(math.isfinite(v) for v in goodness):
        return None
    best_i = max(range(c.n), key=goodness.__getitem__)
    before = goodness[-c.third - 1]
    gain = goodness[best_i] - before
    needed = OVERFIT_ACC_DROP if use_score else OVERFIT_LOSS_RISE * abs(before)
    if best_i < c.n - 2 or gain <= max(needed, NOISE_K * noise_scale(values)):
        return None
    return Diagnosis("lr_too_low", (
        f"{name} still improving at the end: {_g(values[-c.third - 1])} -> "
        f"{_g(values[best_i])} over the last {c.third} epochs, best at epoch "
        f"{c.epochs[best_i]}, train loss still {_g(c.train[-1])}, at "
        f"{c.lr_text(c.n - 1, c.n - 1)}"))


def _healthy(c: _Curves, metric: str, mode: str) -> Diagnosis:
    values = {"val_acc": c.acc, "val_loss": c.val, "train_loss": c.train, "val_r2": c.r2,
              "val_mae": c.mae}[metric]
    best = max(values) if mode == "max" else min(values)
    return Diagnosis("healthy", (
        f"{metric} best {_g(best)} at epoch {c.epochs[values.index(best)]}; train loss "
        f"{_g(c.train_start)} -> {_g(c.train[-1])}, val loss {_g(c.start)} -> "
        f"{_g(c.val[-1])}, levelled with no lasting rise"))


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
        lambda: _blown_up(c),
        lambda: _thrown_above_start(c),
        lambda: _collapsed(c),
        lambda: _thrown_for_good(c),
        lambda: _blown_up_at_a_peak(c),
        lambda: _lasting_rise(c),
        lambda: _unstable(c),
        lambda: _overfitting(c, metric),
        lambda: _too_short(c, stop_reason),
        lambda: _decayed_stall(c),
        lambda: _not_learning(c),
        lambda: _underfitting(c),
        lambda: _lr_too_low(c, stop_reason in ("completed", "early_stopping"), metric),
    )
    for rule in rules:
        found = rule()
        if found:
            return found
    return _healthy(c, metric, mode)
